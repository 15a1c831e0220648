"""Connected components of duplicate pairs, and the order-independent choice of the member each cluster keeps.

Cluster membership does not depend on the order pairs or rows come in (it is the connected components of
the pair graph). The kept member is the best by an explicit total order on row *values* (rank score, then
resolution, then ``image_id``, then any further tie-breakers), never by position, so shuffling the input
rows keeps the same images. Rank scores within :data:`SCORE_TIE` of the cluster's best count as equal:
copies of one photo score nearly alike (0.9997 against 0.9998), and then the larger copy, usually the
undegraded original, is the one to keep. Members marked ``preferred`` (dedup: the ``ok`` rows, against
rank's ``low_score`` ones) come before all others: the order above chooses among them, and only a cluster
without any chooses among the rest.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

logger = logging.getLogger(__name__)

SCORE_TIE = 0.01  # rank scores this close to the cluster's best tie; resolution decides among them


def cluster_labels(n: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Connected components of the pairs ``(i[k], j[k])`` over ``n`` items: a group label per item.

    scipy's ``connected_components`` on the sparse pair graph; about 10x faster than a union-find in
    Python at a million pairs (``bench/components.py``, figures in ``bench/results/dedup.md``).
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    i = np.asarray(i, dtype=np.int64)
    j = np.asarray(j, dtype=np.int64)
    graph = coo_matrix((np.ones(len(i), dtype=np.int32), (i, j)), shape=(n, n)).tocsr()
    _, labels = connected_components(graph, directed=False)
    return labels.astype(np.int64)


def _ordinal(values: Sequence[object]) -> np.ndarray:
    """Each value's rank in sorted order (nulls first), so string keys can join a numeric lexsort."""
    keyed = [("" if v is None else str(v)) for v in values]
    _, inverse = np.unique(np.array(keyed, dtype=object), return_inverse=True)
    return inverse.astype(np.int64)


def choose_keepers(
    labels: np.ndarray,
    rank_score: np.ndarray,
    resolution: np.ndarray,
    image_id: Sequence[str | None],
    tie_breakers: Sequence[Sequence[object]] = (),
    preferred: np.ndarray | None = None,
) -> np.ndarray:
    """Per item, the index of the member its cluster keeps (itself for the kept one and for singletons).

    Best = ``preferred`` (all, when None) if the cluster has such a member, then a ``rank_score`` within
    :data:`SCORE_TIE` of the highest among those (NaN counts as lowest), then highest ``resolution``, then
    highest ``rank_score``, then smallest ``image_id``, then smallest value of each ``tie_breakers`` column
    in turn.
    """
    n = len(labels)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    score = np.where(np.isnan(rank_score), -np.inf, rank_score.astype(np.float64))
    _, cluster = np.unique(labels, return_inverse=True)
    chosen_from = np.ones(n, dtype=bool) if preferred is None else np.asarray(preferred, dtype=bool)
    has_preferred = np.zeros(cluster.max() + 1, dtype=bool)
    np.logical_or.at(has_preferred, cluster, chosen_from)
    chosen_from |= ~has_preferred[cluster]  # a cluster without a preferred member chooses among all
    best = np.full(cluster.max() + 1, -np.inf)
    np.maximum.at(best, cluster[chosen_from], score[chosen_from])
    # -inf >= -inf: a NaN-only cluster
    near_best = (chosen_from & (score >= best[cluster] - SCORE_TIE)).astype(np.int64)
    keys = [_ordinal(column) for column in reversed(list(tie_breakers))]
    keys += [_ordinal(image_id), -score, -resolution.astype(np.float64), -near_best, labels]
    order = np.lexsort(keys)  # the last key sorts first: by cluster, then best member first
    first = np.ones(n, dtype=bool)
    first[1:] = labels[order][1:] != labels[order][:-1]
    best_of_cluster = dict(zip(labels[order][first].tolist(), order[first].tolist(), strict=True))
    return np.array([best_of_cluster[label] for label in labels.tolist()], dtype=np.int64)
