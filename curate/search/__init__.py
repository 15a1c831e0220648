"""Near-neighbour search for deduplication: all pairs within a threshold (faiss) and their clusters."""

from curate.search.clusters import choose_keepers, cluster_labels
from curate.search.range_search import Pairs, gpu_available, hamming_pairs, similar_pairs

__all__ = ["Pairs", "choose_keepers", "cluster_labels", "gpu_available", "hamming_pairs", "similar_pairs"]
