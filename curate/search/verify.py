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

import functools
import logging
from dataclasses import dataclass

import numpy as np

logger = logging.getLogger(__name__)

SIDE = 32  # the thumbnails' side; other square sides work too (warps are made per side)
SCALES = (0.90, 0.92, 0.94, 0.96, 0.98, 1.0)
ROUNDS = 2
CHUNK = 1024  # pairs per batch


def _taps(side: int, scale: float, offset: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Linear resampling of a row at x = offset*side + scale*(u + 0.5) - 0.5, u = 0..side-1.

    Returned as two taps per output pixel: (left index, right index, weight of the right one).
    """
    x = offset * side + scale * (np.arange(side) + 0.5) - 0.5
    left = np.floor(x).astype(np.int64)
    weight = (x - left).astype(np.float32)
    return np.clip(left, 0, side - 1), np.clip(left + 1, 0, side - 1), weight


@dataclass(frozen=True)
class Warps:
    """Every per-axis crop warp of a ``side``-pixel row as taps (K, side), and the identity warp's index."""

    side: int
    left: np.ndarray
    right: np.ndarray
    weight: np.ndarray
    identity: int


@functools.cache
def warps(side: int) -> Warps:
    """The crop warps of a square image of ``side`` pixels (offsets in half-pixel steps)."""
    taps, identity = [], 0
    for scale in SCALES:
        for offset in np.arange(0.0, 1.0 - scale + 1e-9, 0.5 / side):
            if scale == 1.0 and offset == 0.0:
                identity = len(taps)
            taps.append(_taps(side, scale, float(offset)))
    left, right, weight = (np.stack(parts) for parts in zip(*taps, strict=True))
    return Warps(side, left, right, weight, identity)


def _warp_columns(images: np.ndarray, warp: np.ndarray) -> np.ndarray:
    """Resample the columns of each image (n, y, x) with its own warp index (n,)."""
    w = warps(images.shape[2])
    left, right, weight = w.left[warp][:, None, :], w.right[warp][:, None, :], w.weight[warp][:, None, :]
    rows = np.arange(len(images))[:, None, None]
    ys = np.arange(images.shape[1])[None, :, None]
    return (1 - weight) * images[rows, ys, left] + weight * images[rows, ys, right]


def _scores(images: np.ndarray, target: np.ndarray) -> np.ndarray:
    """NCC of every column warp of ``images`` (n, y, x) against the centred unit ``target``: (n, K).

    Computed without forming the warped images: with W = images resampled along x by taps (l, r, w),
    W . target, sum(W) and |W|^2 only need images^T target, the column sums and images^T images.
    """
    wp = warps(images.shape[2])
    left, right = wp.left, wp.right
    a, w = 1 - wp.weight[None], wp.weight[None]
    pixels = images.shape[1] * images.shape[2]
    gram = np.einsum("nyx,nyz->nxz", images, images)  # (n, x, x)
    cross = np.einsum("nyx,nyz->nxz", images, target)  # (n, x, z)
    sums = images.sum(axis=1)  # (n, x)
    z = np.arange(images.shape[2])[None, :]
    dot = (a * cross[:, left, z] + w * cross[:, right, z]).sum(axis=2)
    mean = (a * sums[:, left] + w * sums[:, right]).sum(axis=2) / pixels
    square = a * a * gram[:, left, left] + 2 * a * w * gram[:, left, right] + w * w * gram[:, right, right]
    variance = square.sum(axis=2) - pixels * mean * mean
    return dot / np.sqrt(np.maximum(variance, 1e-6))


def _centred(images: np.ndarray) -> np.ndarray:
    """Mean-removed images scaled to unit length (a flat image stays zero)."""
    centred = images - images.mean(axis=(1, 2), keepdims=True)
    return centred / np.maximum(np.sqrt((centred * centred).sum(axis=(1, 2), keepdims=True)), 1e-6)


def _one_way(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Best NCC of crops of ``a`` (resampled into ``b``'s frame) against ``b``, and its (x, y) warps."""
    n = len(a)
    target = _centred(b)
    rows = np.arange(n)
    identity = warps(a.shape[2]).identity
    x_warp = np.full(n, identity)
    y_warp = np.full(n, identity)
    best = np.full(n, -1.0, dtype=np.float32)
    best_x, best_y = x_warp.copy(), y_warp.copy()
    for _ in range(ROUNDS):
        rows_fixed = _warp_columns(a.transpose(0, 2, 1), y_warp).transpose(0, 2, 1)  # y warp applied
        x_warp = _scores(rows_fixed, target).argmax(axis=1)
        cols_fixed = _warp_columns(a, x_warp)  # x warp applied
        scores = _scores(cols_fixed.transpose(0, 2, 1), target.transpose(0, 2, 1))
        y_warp = scores.argmax(axis=1)
        better = scores[rows, y_warp] > best
        best = np.where(better, scores[rows, y_warp], best)
        best_x, best_y = np.where(better, x_warp, best_x), np.where(better, y_warp, best_y)
    return best, best_x, best_y


def _square(images: np.ndarray) -> np.ndarray:
    """Images given as (n, side, side) or flattened (n, side * side), as float32 (n, side, side)."""
    images = np.asarray(images, dtype=np.float32)
    side = images.shape[1] if images.ndim == 3 else round(np.sqrt(images.shape[1]))
    return images.reshape(-1, side, side)


def aligned_ncc(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Per pair of square grey images (n, s, s) or (n, s * s), any dtype: the best NCC over crop alignments.

    Thumbnails are 32x32 (1024 values); any square side works.
    """
    out = np.zeros(len(first), dtype=np.float32)
    for start in range(0, len(first), CHUNK):
        a, b = _square(first[start : start + CHUNK]), _square(second[start : start + CHUNK])
        out[start : start + CHUNK] = np.maximum(_one_way(a, b)[0], _one_way(b, a)[0])
    return out
