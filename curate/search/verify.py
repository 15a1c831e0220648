"""Geometric verification of candidate pairs: the best normalised cross-correlation after aligning thumbnails.

Descriptors alone cannot tell a cropped copy of a photo from another photo of the same person taken a
second later: both sit at a cosine of about 0.85. Pixels can, once the two images are aligned: a copy then
matches almost exactly (NCC about 0.98), a different photo does not (about 0.88; the mouth, the eyes, the
hair have moved). Thumbnails are the 32x32 grey images :func:`curate.hashing.thumbnails` makes (the frame
already trimmed).

The alignment models "one image is a crop of the other, resized": per axis, a scale in [0.90, 1] and an
offset that keeps the crop inside the image (23 warps per axis, half-pixel steps). Both directions are
tried. The two axes are fitted by coordinate ascent (x, then y, twice), so a pair costs 4 x 23 warps
instead of 23 x 23, and the correlation of a warp is computed from Gram matrices without forming the
warped image, batched over pairs with numpy.
"""

from __future__ import annotations

import logging

import numpy as np

logger = logging.getLogger(__name__)

SIDE = 32
SCALES = (0.90, 0.92, 0.94, 0.96, 0.98, 1.0)
ROUNDS = 2
CHUNK = 1024  # pairs per batch


def _taps(scale: float, offset: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Linear resampling of a row at x = offset*SIDE + scale*(u + 0.5) - 0.5, u = 0..SIDE-1.

    Returned as two taps per output pixel: (left index, right index, weight of the right one).
    """
    x = offset * SIDE + scale * (np.arange(SIDE) + 0.5) - 0.5
    left = np.floor(x).astype(np.int64)
    weight = (x - left).astype(np.float32)
    return np.clip(left, 0, SIDE - 1), np.clip(left + 1, 0, SIDE - 1), weight


def _warps() -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Every per-axis crop warp as taps (K, SIDE) and the index of the identity warp."""
    taps, identity = [], 0
    for scale in SCALES:
        for offset in np.arange(0.0, 1.0 - scale + 1e-9, 0.5 / SIDE):
            if scale == 1.0 and offset == 0.0:
                identity = len(taps)
            taps.append(_taps(scale, float(offset)))
    left, right, weight = (np.stack(parts) for parts in zip(*taps, strict=True))
    return left, right, weight, identity


LEFT, RIGHT, WEIGHT, IDENTITY = _warps()


def _warp_columns(images: np.ndarray, warp: np.ndarray) -> np.ndarray:
    """Resample the columns of each image (n, y, x) with its own warp index (n,)."""
    left, right, weight = LEFT[warp][:, None, :], RIGHT[warp][:, None, :], WEIGHT[warp][:, None, :]
    rows = np.arange(len(images))[:, None, None]
    return (1 - weight) * images[rows, np.arange(SIDE)[None, :, None], left] + weight * images[
        rows, np.arange(SIDE)[None, :, None], right
    ]


def _scores(images: np.ndarray, target: np.ndarray) -> np.ndarray:
    """NCC of every column warp of ``images`` (n, y, x) against the centred unit ``target``: (n, K).

    Computed without forming the warped images: with W = images resampled along x by taps (l, r, w),
    W . target, sum(W) and |W|^2 only need images^T target, the column sums and images^T images.
    """
    a, w = 1 - WEIGHT[None], WEIGHT[None]
    gram = np.einsum("nyx,nyz->nxz", images, images)  # (n, x, x)
    cross = np.einsum("nyx,nyz->nxz", images, target)  # (n, x, z)
    sums = images.sum(axis=1)  # (n, x)
    z = np.arange(SIDE)[None, :]
    dot = (a * cross[:, LEFT, z] + w * cross[:, RIGHT, z]).sum(axis=2)
    mean = (a * sums[:, LEFT] + w * sums[:, RIGHT]).sum(axis=2) / (SIDE * SIDE)
    square = a * a * gram[:, LEFT, LEFT] + 2 * a * w * gram[:, LEFT, RIGHT] + w * w * gram[:, RIGHT, RIGHT]
    variance = square.sum(axis=2) - SIDE * SIDE * mean * mean
    return dot / np.sqrt(np.maximum(variance, 1e-6))


def _centred(images: np.ndarray) -> np.ndarray:
    """Mean-removed images scaled to unit length (a flat image stays zero)."""
    centred = images - images.mean(axis=(1, 2), keepdims=True)
    return centred / np.maximum(np.sqrt((centred * centred).sum(axis=(1, 2), keepdims=True)), 1e-6)


def _one_way(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Best NCC of crops of ``a`` (resampled into ``b``'s frame) against ``b``: (n,)."""
    n = len(a)
    target = _centred(b)
    rows = np.arange(n)
    x_warp = np.full(n, IDENTITY)
    y_warp = np.full(n, IDENTITY)
    best = np.full(n, -1.0, dtype=np.float32)
    for _ in range(ROUNDS):
        rows_fixed = _warp_columns(a.transpose(0, 2, 1), y_warp).transpose(0, 2, 1)  # y warp applied
        x_warp = _scores(rows_fixed, target).argmax(axis=1)
        cols_fixed = _warp_columns(a, x_warp)  # x warp applied
        scores = _scores(cols_fixed.transpose(0, 2, 1), target.transpose(0, 2, 1))
        y_warp = scores.argmax(axis=1)
        best = np.maximum(best, scores[rows, y_warp])
    return best


def aligned_ncc(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Per pair of 32x32 thumbnails (n, 32, 32) or (n, 1024), any dtype: the best NCC over crop alignments."""
    out = np.zeros(len(first), dtype=np.float32)
    for start in range(0, len(first), CHUNK):
        a = np.asarray(first[start : start + CHUNK], dtype=np.float32).reshape(-1, SIDE, SIDE)
        b = np.asarray(second[start : start + CHUNK], dtype=np.float32).reshape(-1, SIDE, SIDE)
        out[start : start + CHUNK] = np.maximum(_one_way(a, b), _one_way(b, a))
    return out
