"""Closed-set identification: rank-k accuracy of probes searched against a gallery with faiss.

Split: the first ``per_identity`` images (in the given order) of every identity form the gallery; the rest
of the images are probes. Identities with too few images for a probe still enter the gallery as
distractors. A probe is a rank-k hit when its identity is among the ``k`` most similar distinct gallery
identities (inner product of L2-normalised vectors = cosine). Probes whose image could not be embedded
(NaN vector) count as misses; such gallery images are left out.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass

import faiss
import numpy as np

logger = logging.getLogger(__name__)


@dataclass
class IdentificationResult:
    """Rank-k accuracies and the sizes they were measured on."""

    rank: dict[str, float]  # "rank1", "rank5", ...
    n_gallery: int
    n_probes: int
    n_identities: int

    def to_dict(self) -> dict[str, float | int]:
        """JSON-ready figures."""
        return {
            **self.rank,
            "n_gallery": self.n_gallery,
            "n_probes": self.n_probes,
            "n_identities": self.n_identities,
        }


def gallery_probe_split(identities: list[str], per_identity: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(gallery indices, probe indices): the first ``per_identity`` images of each identity are gallery."""
    seen: Counter[str] = Counter()
    gallery, probes = [], []
    for index, identity in enumerate(identities):
        (gallery if seen[identity] < per_identity else probes).append(index)
        seen[identity] += 1
    return np.array(gallery, dtype=np.int64), np.array(probes, dtype=np.int64)


def _index(dim: int) -> faiss.Index:
    """A flat inner-product index, moved to the GPU when faiss has one."""
    index = faiss.IndexFlatIP(dim)
    if hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0:
        index = faiss.index_cpu_to_all_gpus(index)
    return index


def identify(
    vectors: np.ndarray,
    identities: list[str],
    gallery: np.ndarray,
    probes: np.ndarray,
    ks: tuple[int, ...] = (1, 5),
) -> IdentificationResult:
    """Rank-k accuracy of ``probes`` against ``gallery`` (row indices into ``vectors``/``identities``)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    labels = np.asarray(identities)
    gallery = gallery[np.isfinite(vectors[gallery]).all(1)]
    if len(gallery) == 0 or len(probes) == 0:
        raise ValueError("identification needs at least one gallery image and one probe")
    index = _index(vectors.shape[1])
    index.add(np.ascontiguousarray(vectors[gallery]))
    per_identity = max(Counter(labels[gallery].tolist()).values())
    depth = min(len(gallery), max(ks) * per_identity)  # enough neighbours for max(ks) distinct identities
    readable = np.isfinite(vectors[probes]).all(1)
    _, neighbours = index.search(np.ascontiguousarray(np.nan_to_num(vectors[probes])), depth)
    hits = {k: 0 for k in ks}
    for row, probe in enumerate(probes):
        if not readable[row]:
            continue
        ranked = list(dict.fromkeys(labels[gallery[neighbours[row][neighbours[row] >= 0]]].tolist()))
        for k in ks:
            hits[k] += labels[probe] in ranked[:k]
    rank = {f"rank{k}": hits[k] / len(probes) for k in ks}
    return IdentificationResult(rank, len(gallery), len(probes), len(set(labels[gallery].tolist())))
