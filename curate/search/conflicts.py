"""Confirming a cross-identity duplicate with the face before it becomes an ``identity_conflict``.

One photo filed under two names is rare (its prior is far lower than a duplicate within an identity), and
whole-image descriptors cannot tell it from two different people photographed in one layout: two team
cards of one design, two ID photos on one backdrop, two speakers at one lectern share the pHash and the
handcrafted descriptor of everything but the face. So a cross-identity candidate that the descriptors
call a duplicate is confirmed on the faces alone: both aligned face crops (the faces stage's
``crop_path`` where it detected a face, else a face detected here with the faces stage's defaults) are

* embedded with a face model (``dlib`` by default): a copy of one photo gives nearly the same vector,
  two people do not (``min_face_cosine``), and
* compared pixel by pixel: the inner face of both crops (the padding around it left out), 32x32 grey,
  aligned under the crop model of :mod:`curate.search.verify` (``min_face_ncc``).

Both must pass, so the cheap comparison goes first and only the pairs that pass it are embedded; where
the descriptor stage stored the same model's vectors of the faces stage's crops, those are read instead
of embedding the crops again. The NCC bar is lower (``min_face_ncc``) where the whole-image descriptors
already call the pair a duplicate (a heavily recompressed copy blurs the face) than where they only put
it in review (``borderline_min_face_ncc``). A pair without a face on either side, or failing either test,
is not a conflict; dedup sends it to review with the face scores in its reason.

When the descriptor stage also wrote that face model's vectors, cross-identity pairs whose face vectors
reach ``min_face_cosine`` join the candidates (:func:`add_face_pairs`) and are verified like any
borderline pair: a resized, cropped copy can fall outside the hash and cosine bands while its face and
its aligned thumbnail stay the same.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from curate.hashing import HASH_BITS, hamming_bits
from curate.search.face_crops import face_crops, inner_thumbnail
from curate.search.pairs import Candidates
from curate.search.range_search import similar_pairs
from curate.search.verify import SIDE, aligned_ncc

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FaceCheck:
    """How a cross-identity candidate is confirmed; ``embedder`` "" turns the check off."""

    embedder: str = "dlib"
    min_face_cosine: float = 0.95
    min_face_ncc: float = 0.88  # for pairs the whole-image descriptors call duplicates
    borderline_min_face_ncc: float = 0.92  # for pairs they only put in review: less outside evidence
    face_only_min_face_ncc: float = 0.95  # for pairs only the face vectors found: none

    def ncc_bars(self, duplicate: np.ndarray, review: np.ndarray) -> np.ndarray:
        """The face NCC each pair needs: the less the whole images agree, the higher the bar."""
        return np.where(
            duplicate,
            self.min_face_ncc,
            np.where(review, self.borderline_min_face_ncc, self.face_only_min_face_ncc),
        )


@dataclass
class FaceEvidence:
    """Per candidate pair (NaN where not checked or no face): face-embedding cosine and inner-face NCC."""

    cosine: np.ndarray
    ncc: np.ndarray
    confirmed: np.ndarray  # bool
    embedded: int = 0  # faces embedded by the check
    reused: int = 0  # faces whose vectors the descriptor stage had stored

    def describe(self, k: int) -> str:
        """``face cosine 0.991, face NCC 0.973`` or ``no face to compare``."""
        if np.isnan(self.ncc[k]):
            return "no face to compare"
        if np.isnan(self.cosine[k]):
            return f"face NCC {self.ncc[k]:.3f} (too low to compare the face vectors)"
        return f"face cosine {self.cosine[k]:.3f}, face NCC {self.ncc[k]:.3f}"


def _rows(tables: dict[int, pa.Table], shards: np.ndarray, rows: np.ndarray) -> list[dict[str, Any]]:
    """``path``, ``crop_path`` and ``face_source`` of the given (shard, row) positions."""
    out = []
    for shard, row in zip(shards.tolist(), rows.tolist(), strict=True):
        table = tables[shard]
        out.append(
            {
                name: table.column(name)[row].as_py()
                for name in ("path", "crop_path", "face_source")
                if name in table.column_names
            }
        )
    return out


StoredVectors = Callable[[np.ndarray, np.ndarray], "tuple[np.ndarray, np.ndarray]"]
"""(shards, rows) -> (face vectors, usable mask): the descriptor stage's vectors of those rows, where they
are the check's own embedding of the faces stage's crop."""


def confirm(
    pairs: tuple[np.ndarray, np.ndarray],
    mask: np.ndarray,
    support: tuple[np.ndarray, np.ndarray],
    positions: tuple[np.ndarray, np.ndarray],
    tables: dict[int, pa.Table],
    check: FaceCheck,
    ctx: Any,
    stored: StoredVectors | None = None,
) -> FaceEvidence:
    """Face evidence for the candidate pairs in ``mask`` (participant indices ``pairs``); NaN elsewhere.

    ``support`` holds the masks of the pairs the descriptors call duplicates and put in review; the others
    were found by the face vectors alone. Each kind needs its own face NCC (:meth:`FaceCheck.ncc_bars`).
    ``positions`` holds each participant's (shard, row) in ``tables``. Only the participants of the masked
    pairs are read and compared; the cheap inner-face NCC goes first and only the pairs that pass it are
    embedded (a pair failing it cannot be confirmed), with ``stored`` vectors used where they exist.
    """
    cosine = np.full(len(mask), np.nan, dtype=np.float32)
    ncc = np.full(len(mask), np.nan, dtype=np.float32)
    needed = check.ncc_bars(*support)
    chosen = np.nonzero(mask)[0]
    counts = (0, 0)
    if len(chosen):
        sides = (pairs[0][chosen], pairs[1][chosen])
        cosine[chosen], ncc[chosen], counts = _scores(
            sides, needed[chosen], positions, tables, check, ctx, stored
        )
    with np.errstate(invalid="ignore"):
        confirmed = mask & (cosine >= check.min_face_cosine) & (ncc >= needed)
    logger.info(
        "face check of %d cross-identity pairs: %d passed the face NCC (%d faces embedded, %d stored), "
        "%d confirmed",
        len(chosen),
        int(np.sum(~np.isnan(cosine))),
        *counts,
        int(confirmed.sum()),
    )
    return FaceEvidence(cosine, ncc, confirmed, *counts)


def _scores(
    sides: tuple[np.ndarray, np.ndarray],
    needed: np.ndarray,
    positions: tuple[np.ndarray, np.ndarray],
    tables: dict[int, pa.Table],
    check: FaceCheck,
    ctx: Any,
    stored: StoredVectors | None,
) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """Face cosine and inner-face NCC per pair, and how many faces were embedded and how many stored.

    NCC is NaN where either side has no face; the cosine is computed only for the pairs whose NCC reaches
    ``needed`` (NaN for the others).
    """
    n = len(sides[0])
    cosine = np.full(n, np.nan, dtype=np.float32)
    ncc = np.full(n, np.nan, dtype=np.float32)
    involved = np.unique(np.concatenate(sides))
    crops = face_crops(_rows(tables, positions[0][involved], positions[1][involved]))
    a, b = (np.searchsorted(involved, side) for side in sides)
    found = np.array([crop is not None for crop in crops], dtype=bool)
    both = found[a] & found[b]
    if not both.any():
        return cosine, ncc, (0, 0)
    thumbs = np.zeros((len(crops), SIDE, SIDE), dtype=np.uint8)
    for k in np.nonzero(found)[0]:
        thumbs[k] = inner_thumbnail(crops[k])
    ncc[both] = aligned_ncc(thumbs[a[both]], thumbs[b[both]])
    with np.errstate(invalid="ignore"):
        passed = both & (ncc >= needed)
    if passed.any():
        people = np.unique(np.concatenate([a[passed], b[passed]]))
        where = (positions[0][involved], positions[1][involved])
        vectors, reused = _face_vectors(people, crops, where, check, ctx, stored)
        cosine[passed] = np.einsum("kd,kd->k", vectors[a[passed]], vectors[b[passed]])
        return cosine, ncc, (len(people) - reused, reused)
    return cosine, ncc, (0, 0)


def _face_vectors(
    people: np.ndarray,
    crops: list[np.ndarray | None],
    positions: tuple[np.ndarray, np.ndarray],
    check: FaceCheck,
    ctx: Any,
    stored: StoredVectors | None,
) -> tuple[np.ndarray, int]:
    """Unit face vectors, one row per crop, filled for ``people`` (stored where usable, else embedded),
    and how many were stored."""
    from curate.embedders import get_embedder, resource_key

    embedder = ctx.resource(resource_key(check.embedder), lambda: get_embedder(check.embedder))
    vectors = np.full((len(crops), embedder.dim), np.nan, dtype=np.float32)
    todo, reused = people, 0
    if stored is not None:
        kept, usable = stored(positions[0][people], positions[1][people])
        vectors[people[usable]] = kept[usable]
        todo, reused = people[~usable], int(usable.sum())
    if len(todo):
        vectors[todo] = embedder.embed([crops[k] for k in todo.tolist()])
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12), reused


def add_face_pairs(
    found: Candidates,
    face_vectors: np.ndarray,
    identities: np.ndarray,
    min_face_cosine: float,
    codes: list[np.ndarray],
    vectors: np.ndarray | None,
    **search: Any,
) -> tuple[Candidates, np.ndarray]:
    """``found`` plus cross-identity pairs whose face vectors reach ``min_face_cosine``; a mask of all
    such pairs, the ones already in ``found`` included.

    The added pairs get every descriptor score computed exactly, like the others; pairs already in
    ``found`` are not repeated.
    """
    unit = face_vectors / np.maximum(np.linalg.norm(face_vectors, axis=1, keepdims=True), 1e-12)
    close = similar_pairs(unit, min_face_cosine, **search) if len(unit) >= 2 else None
    by_face = np.zeros(len(found), bool)
    if close is None or len(close.i) == 0:
        return found, by_face
    cross = identities[close.i] != identities[close.j]
    known = {pair: k for k, pair in enumerate(zip(found.i.tolist(), found.j.tolist(), strict=True))}
    new = []
    for pair in zip(close.i[cross].tolist(), close.j[cross].tolist(), strict=True):
        if pair in known:
            by_face[known[pair]] = True
        else:
            new.append(pair)
    if not new:
        return found, by_face
    i, j = (np.array(side, dtype=np.int64) for side in zip(*new, strict=True))
    cosine = np.full(len(i), np.nan, dtype=np.float32)
    if vectors is not None:
        cosine = np.einsum("kd,kd->k", vectors[i], vectors[j]).astype(np.float32)
    bits = np.full(len(i), HASH_BITS + 1, dtype=np.int64)
    for c in codes:
        bits = np.minimum(bits, hamming_bits(c[i], c[j]))
    merged = Candidates(
        np.concatenate([found.i, i]),
        np.concatenate([found.j, j]),
        np.concatenate([found.cosine, cosine]),
        np.concatenate([found.bits, bits]),
        np.concatenate([found.ncc, np.full(len(i), np.nan, dtype=np.float32)]),
    )
    logger.info("face vectors added %d cross-identity candidate pairs", len(i))
    return merged, np.concatenate([by_face, np.ones(len(i), bool)])
