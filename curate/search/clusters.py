"""Union-find over duplicate pairs, and the order-independent choice of the member each cluster keeps.

Cluster membership does not depend on the order pairs or rows come in (it is the connected components of
the pair graph). The kept member is the best by an explicit total order on row *values* (rank score, then
resolution, then ``image_id``, then any further tie-breakers), never by position, so shuffling the input
rows keeps the same images.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

logger = logging.getLogger(__name__)


class UnionFind:
    """Disjoint sets over ``0..n-1`` with union by size and path halving."""

    def __init__(self, n: int) -> None:
        self.parent = list(range(n))  # plain lists: much faster than numpy for one element at a time
        self.size = [1] * n

    def find(self, item: int) -> int:
        """The representative of ``item``'s set."""
        parent = self.parent
        while parent[item] != item:
            parent[item] = parent[parent[item]]
            item = parent[item]
        return item

    def union(self, a: int, b: int) -> None:
        """Merge the sets holding ``a`` and ``b``."""
        root_a, root_b = self.find(a), self.find(b)
        if root_a == root_b:
            return
        if self.size[root_a] < self.size[root_b]:
            root_a, root_b = root_b, root_a
        self.parent[root_b] = root_a
        self.size[root_a] += self.size[root_b]

    def labels(self) -> np.ndarray:
        """Per item, the representative of its set (an arbitrary member: use it to group, not to name)."""
        return np.array([self.find(item) for item in range(len(self.parent))], dtype=np.int64)


def cluster_labels(n: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Connected components of the pairs ``(i[k], j[k])`` over ``n`` items: a group label per item."""
    sets = UnionFind(n)
    for a, b in zip(i.tolist(), j.tolist(), strict=True):
        sets.union(a, b)
    return sets.labels()


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
) -> np.ndarray:
    """Per item, the index of the member its cluster keeps (itself for the kept one and for singletons).

    Best = highest ``rank_score`` (NaN counts as lowest), then highest ``resolution``, then smallest
    ``image_id``, then smallest value of each ``tie_breakers`` column in turn.
    """
    n = len(labels)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    score = np.where(np.isnan(rank_score), -np.inf, rank_score.astype(np.float64))
    keys = [_ordinal(column) for column in reversed(list(tie_breakers))]
    keys += [_ordinal(image_id), -resolution.astype(np.float64), -score, labels]
    order = np.lexsort(keys)  # the last key sorts first: by cluster, then best member first
    first = np.ones(n, dtype=bool)
    first[1:] = labels[order][1:] != labels[order][:-1]
    best_of_cluster = dict(zip(labels[order][first].tolist(), order[first].tolist(), strict=True))
    return np.array([best_of_cluster[label] for label in labels.tolist()], dtype=np.int64)
