"""Identity-level checks after ranking: overlapping identities and estimated purity.

* **Overlap**: two names for the same person (an alias the name lists missed, a misspelling) show up as
  identity centres that nearly coincide. Each identity's centre is the mean of the images it kept; the
  faiss all-pairs threshold search over the unit-length centres finds every pair whose cosine
  similarity reaches ``min_cosine``.
* **Purity**: the share of an identity's ok images whose final score reaches ``min_score``, i.e. the share
  the scorer believes show the person. With calibrated scores (0.5 = as likely the person as not) this is
  an estimate of how clean the identity's raw search results were; VGG-Face's annotators dropped names
  whose results were less than about 90% right, so such identities go to review.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from curate.rank.scorers import normalise, robust_centre
from curate.rank.selftrain import Identity, Ranking
from curate.search import similar_pairs

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Overlap:
    """Two identities (indices into the identity list, ``first < second``) whose centres nearly coincide."""

    first: int
    second: int
    cosine: float


def identity_centres(identities: list[Identity], rankings: list[Ranking]) -> np.ndarray:
    """(n_identities, d) float32 unit centres: the mean of each identity's kept images.

    The kept images are already cleaned by the scorer, so their plain mean is the least noisy centre; an
    identity that kept nothing falls back to the robust centre of all its images.
    """
    if not identities:
        return np.zeros((0, 0), dtype=np.float32)
    centres = []
    for identity, ranking in zip(identities, rankings, strict=True):
        if ranking.kept.any():
            centres.append(normalise(identity.vectors[ranking.kept].mean(axis=0, keepdims=True))[0])
        else:
            centres.append(robust_centre(identity.vectors))
    return np.ascontiguousarray(np.stack(centres), dtype=np.float32)


def find_overlaps(centres: np.ndarray, min_cosine: float) -> list[Overlap]:
    """Every pair of distinct centres with cosine similarity of at least ``min_cosine``, sorted by index.

    The search is the project's all-pairs threshold search (:func:`curate.search.similar_pairs`), so it
    runs on a GPU when faiss sees one and never builds the full similarity matrix.
    """
    if len(centres) < 2:
        return []
    pairs = similar_pairs(centres, min_cosine)
    found = [Overlap(int(i), int(j), float(c)) for i, j, c in zip(pairs.i, pairs.j, pairs.score, strict=True)]
    return sorted(found, key=lambda pair: (pair.first, pair.second))


def partners(overlaps: list[Overlap], count: int) -> list[list[int]]:
    """For each of ``count`` identities, the sorted indices of the identities it overlaps."""
    result: list[list[int]] = [[] for _ in range(count)]
    for pair in overlaps:
        result[pair.first].append(pair.second)
        result[pair.second].append(pair.first)
    return [sorted(found) for found in result]


def purity(ranking: Ranking, min_score: float) -> float:
    """Estimated share of the identity's ok images that show the person: scores reaching ``min_score``."""
    if len(ranking.scores) == 0:
        return 0.0
    return float(np.mean(ranking.scores >= min_score))
