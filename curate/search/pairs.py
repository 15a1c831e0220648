"""Candidate pairs from several descriptors, their exact scores, verification, and the per-pair decision.

A pair is a **candidate** when any descriptor puts it inside its review band: a hash within
``review_max_hamming_bits`` or an embedding cosine of at least ``review_min_cosine`` (each found by an
all-pairs faiss search). Every candidate then gets every score computed exactly, whichever search found it.

**Decision.** Strong evidence, ``bits <= max_hamming_bits`` or ``cosine >= min_cosine``: duplicate. A
candidate without strong evidence is borderline: with thumbnails it is verified by aligning them
(:func:`curate.search.verify.aligned_ncc`): ``ncc >= min_aligned_ncc`` is a duplicate, ``ncc >=
review_min_aligned_ncc`` goes to review, lower is a different photo. Without thumbnails every borderline
pair goes to review.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from curate.hashing import HASH_BITS, hamming_bits
from curate.search.range_search import IndexKind, hamming_pairs, similar_pairs
from curate.search.verify import aligned_ncc

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Thresholds:
    """Decision thresholds, each named with its unit."""

    max_hamming_bits: int
    review_max_hamming_bits: int
    min_cosine: float
    review_min_cosine: float
    min_aligned_ncc: float
    review_min_aligned_ncc: float


@dataclass
class Candidates:
    """Candidate pairs ``i < j`` with every score (NaN / HASH_BITS + 1 where a descriptor is not used)."""

    i: np.ndarray  # int64
    j: np.ndarray  # int64
    cosine: np.ndarray  # float32, NaN without an embedding
    bits: np.ndarray  # int64, smallest over the hash kinds; HASH_BITS + 1 without hashes
    ncc: np.ndarray  # float32 aligned NCC of the thumbnails, NaN where not verified

    def __len__(self) -> int:
        return len(self.i)


def find_candidates(
    codes: list[np.ndarray],
    vectors: np.ndarray | None,
    limits: Thresholds,
    *,
    index: IndexKind = "flat",
    use_gpu: bool | None = None,
    nprobe: int = 16,
) -> Candidates:
    """Pairs inside any descriptor's review band (faiss searches), with all scores computed exactly."""
    n = len(vectors) if vectors is not None else len(codes[0])
    found = []
    if n >= 2:
        options = {"index": index, "use_gpu": use_gpu, "nprobe": nprobe}
        found = [hamming_pairs(c, limits.review_max_hamming_bits, **options) for c in codes]
        if vectors is not None:
            found.append(similar_pairs(vectors, limits.review_min_cosine, **options))
    if found:
        stacked = np.stack([np.concatenate([p.i for p in found]), np.concatenate([p.j for p in found])], 1)
        pairs = np.unique(stacked, axis=0)
    else:
        pairs = np.zeros((0, 2), dtype=np.int64)
    i, j = pairs[:, 0].astype(np.int64), pairs[:, 1].astype(np.int64)
    cosine = np.full(len(i), np.nan, dtype=np.float32)
    if vectors is not None:
        cosine = np.einsum("kd,kd->k", vectors[i], vectors[j]).astype(np.float32)
    bits = np.full(len(i), HASH_BITS + 1, dtype=np.int64)
    for c in codes:
        bits = np.minimum(bits, hamming_bits(c[i], c[j]))
    return Candidates(i, j, cosine, bits, np.full(len(i), np.nan, dtype=np.float32))


def strong(found: Candidates, limits: Thresholds) -> np.ndarray:
    """Per pair: is a descriptor alone enough to call it a duplicate?"""
    with np.errstate(invalid="ignore"):
        return (found.bits <= limits.max_hamming_bits) | (found.cosine >= limits.min_cosine)


def verify(found: Candidates, thumbnails: np.ndarray, limits: Thresholds) -> int:
    """Fill ``found.ncc`` for the borderline pairs from 32x32 thumbnails (n, 1024); returns how many."""
    borderline = np.nonzero(~strong(found, limits))[0]
    if len(borderline):
        found.ncc[borderline] = aligned_ncc(thumbnails[found.i[borderline]], thumbnails[found.j[borderline]])
    return len(borderline)


def classify(found: Candidates, limits: Thresholds, verified: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per candidate pair: (duplicate, needs review); see the module docstring."""
    duplicate = strong(found, limits)
    if not verified:
        return duplicate, ~duplicate
    with np.errstate(invalid="ignore"):
        duplicate = duplicate | (found.ncc >= limits.min_aligned_ncc)
        review = ~duplicate & (found.ncc >= limits.review_min_aligned_ncc)
    return duplicate, review


def describe_scores(cosine: float, bits: int, ncc: float) -> str:
    """``cosine 0.871, 9 bits, aligned NCC 0.930`` (the scores that exist)."""
    parts = [] if np.isnan(cosine) else [f"cosine {cosine:.3f}"]
    if bits <= HASH_BITS:
        parts.append(f"{bits} bit{'' if bits == 1 else 's'}")
    if not np.isnan(ncc):
        parts.append(f"aligned NCC {ncc:.3f}")
    return ", ".join(parts)
