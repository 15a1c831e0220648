"""A descriptor that needs no model: gradient orientation histograms, low-frequency DCT and colour.

Every image is resized to a 64x64 square and described by three blocks, each centred and L2-normalised so
that cosine similarity compares their shapes, not their overall levels:

* **gradients** (shape and pose): a HOG-like histogram of unsigned gradient orientations (6 bins, linear
  interpolation between bins) of the 32x32 image on an 8x8 grid of cells, square-rooted (Hellinger);
* **DCT** (layout of light and dark): the 8x8 lowest frequencies of the 32x32 grey image, DC removed, the
  continuous counterpart of pHash; brightness and contrast changes drop out;
* **colour**: a 4x4 histogram of the two chroma axes (r-g, b-y) of pixels with enough saturation; small
  weight, so a greyscale copy stays close to its original.

The blocks are weighted, concatenated and L2-normalised. Resizing, trimming and JPEG noise move the
vector little, while other photos of the same face move it more: good for near-duplicates and a usable
(weak) identity signal on the synthetic faces.
"""

from __future__ import annotations

import functools
import logging

import numpy as np
from PIL import Image

logger = logging.getLogger(__name__)

_SIZE = 64
_GRADIENT_SIZE = 32  # gradients on the 2x downsampled image: less JPEG and resampling noise
_CELL = 4  # 8x8 grid of 4x4-pixel cells on the 32x32 image
_BINS = 6
_DCT_SIZE = 32
_DCT_KEEP = 8
_CHROMA_BINS = 4
_WEIGHTS = {"gradients": 1.0, "dct": 1.0, "colour": 0.2}


def _dct_matrix(size: int) -> np.ndarray:
    """Orthonormal DCT-II matrix: ``coefficients = D @ x @ D.T`` for a square block ``x``."""
    k = np.arange(size)[:, None]
    n = np.arange(size)[None, :]
    matrix = np.cos(np.pi * (2 * n + 1) * k / (2 * size)) * np.sqrt(2.0 / size)
    matrix[0] /= np.sqrt(2.0)
    return matrix.astype(np.float32)


_DCT = _dct_matrix(_DCT_SIZE)[:_DCT_KEEP]


def _normalise(block: np.ndarray) -> np.ndarray:
    """Centre each row and scale it to unit length (rows of zeros stay zero)."""
    block = block - block.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(block, axis=1, keepdims=True)
    return block / np.maximum(norms, 1e-12)


def _half(grey: np.ndarray) -> np.ndarray:
    """(n, 64, 64) -> (n, 32, 32) by 2x2 averaging."""
    return (grey[:, 0::2, 0::2] + grey[:, 1::2, 0::2] + grey[:, 0::2, 1::2] + grey[:, 1::2, 1::2]) * 0.25


def _unsigned(angle: np.ndarray) -> np.ndarray:
    """``angle % pi`` for float32 angles in [-pi, pi] (arctan2's), the same values without a float modulo.

    numpy's remainder keeps ``a`` in [0, pi), adds pi to ``a`` in (-pi, 0) (one float32 addition) and gives
    +0 for -pi and pi; ``np.where`` does exactly that, several times faster.
    """
    pi = np.float32(np.pi)  # what ``% np.pi`` divides a float32 array by
    return np.where(angle < 0, angle + pi, np.where(angle >= pi, np.float32(0), angle))


@functools.lru_cache(maxsize=4)  # a full batch and a shard's last, smaller one
def _cell_bases(n: int, size: int) -> np.ndarray:
    """(n, size, size) flat index of bin 0 of each pixel's (image, cell) in the (n, cells, bins) histogram."""
    grid = size // _CELL
    cell_of = (np.arange(size)[:, None] // _CELL) * grid + np.arange(size)[None, :] // _CELL
    bases = (np.arange(n)[:, None, None] * grid * grid + cell_of[None]) * _BINS
    bases.flags.writeable = False  # cached and shared
    return bases


def _gradient_block(small: np.ndarray) -> np.ndarray:
    """HOG-like orientation histograms of the (n, 32, 32) half-size image on an 8x8 cell grid: (n, 8*8*bins).

    Orientation is unsigned and split linearly between the two nearest bins. Each cell is divided by
    its own gradient energy plus the image's mean cell energy, so flat cells (where JPEG noise is all
    there is) stay small instead of being blown up to a full histogram; then square-rooted (Hellinger).
    """
    n, size = small.shape[0], small.shape[1]
    gx = np.zeros_like(small)
    gy = np.zeros_like(small)
    gx[:, :, 1:-1] = small[:, :, 2:] - small[:, :, :-2]
    gy[:, 1:-1, :] = small[:, 2:, :] - small[:, :-2, :]
    magnitude = np.sqrt(gx * gx + gy * gy)
    position = _unsigned(np.arctan2(gy, gx)) * (_BINS / np.pi)
    floor = np.floor(position)
    high = magnitude * (position - floor)  # the share of the upper bin
    lower = floor.astype(np.intp)
    lower[lower == _BINS] = 0  # a position rounded up to _BINS is bin 0: orientations wrap around
    upper = lower + 1
    upper[upper == _BINS] = 0
    # flat index of (image, cell, bin) for every pixel's two bins, accumulated with bincount
    grid = size // _CELL
    base = _cell_bases(n, size)
    lower += base
    upper += base
    length = n * grid * grid * _BINS
    cells = np.bincount(lower.ravel(), (magnitude - high).ravel(), minlength=length)
    cells += np.bincount(upper.ravel(), high.ravel(), minlength=length)
    cells = cells.reshape(n, grid, grid, _BINS)
    energy = cells.sum(axis=3, keepdims=True)
    cells = cells / (energy + energy.mean(axis=(1, 2, 3), keepdims=True) + 1e-6)
    return np.sqrt(cells).reshape(n, -1)


def _dct_block(small: np.ndarray) -> np.ndarray:
    """Low-frequency DCT of the (n, 32, 32) half-size grey image without the DC term: (n, 63)."""
    coefficients = _DCT @ small @ _DCT.T
    return coefficients.reshape(len(small), -1)[:, 1:]


_CHROMA_EDGES = [np.float32(edge) for edge in np.linspace(-0.5, 0.5, _CHROMA_BINS + 1)[1:-1]]  # exact


def _chroma_bin(value: np.ndarray) -> np.ndarray:
    """``np.digitize(value, edges)`` (how many inner edges are <= value), by comparisons: (-0.25, 0, 0.25)."""
    index = (value >= _CHROMA_EDGES[0]).astype(np.intp)
    for edge in _CHROMA_EDGES[1:]:
        index += value >= edge
    return index


def _colour_block(rgb: np.ndarray) -> np.ndarray:
    """Histogram of (r-g, b-y) chroma for saturated pixels: (n, bins*bins)."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    rg = r - g
    by = b - (r + g) / 2.0
    saturated = (rg * rg + by * by > 0.04**2).astype(np.float32)
    cell = _chroma_bin(rg) * _CHROMA_BINS + _chroma_bin(by)
    n = rgb.shape[0]
    index = np.arange(n)[:, None, None] * _CHROMA_BINS**2 + cell
    hist = np.bincount(index.ravel(), saturated.ravel(), minlength=n * _CHROMA_BINS**2)
    hist = hist.reshape(n, -1)
    return hist / (rgb.shape[1] * rgb.shape[2])


def _resize(image: np.ndarray) -> np.ndarray:
    """RGB uint8 of any size -> 64x64 float32 in [0, 1]."""
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    image = image[:, :, :3]
    if image.shape[:2] != (_SIZE, _SIZE):
        pil = Image.fromarray(np.ascontiguousarray(image))
        image = np.asarray(pil.resize((_SIZE, _SIZE), Image.Resampling.BILINEAR, reducing_gap=2.0))
    return image.astype(np.float32) / 255.0


class HandcraftedEmbedder:
    """Model-free descriptor (gradients + DCT + colour); see the module docstring."""

    name = "handcrafted"
    input_size = _SIZE

    def __init__(self) -> None:
        cells = (_GRADIENT_SIZE // _CELL) ** 2
        self.dim = cells * _BINS + _DCT_KEEP * _DCT_KEEP - 1 + _CHROMA_BINS**2

    def embed(self, images: list[np.ndarray] | np.ndarray) -> np.ndarray:
        """RGB uint8 images (any size) -> (n, dim) float32 L2-normalised rows.

        ``images`` may also be one (n, 64, 64, 3) uint8 array of squares (describe's batch): the same
        values, without a Python step per image.
        """
        if not len(images):
            return np.zeros((0, self.dim), dtype=np.float32)
        squares = isinstance(images, np.ndarray) and images.dtype == np.uint8
        if squares and images.shape[1:] == (_SIZE, _SIZE, 3):
            rgb = images.astype(np.float32)
            rgb /= np.float32(255.0)  # what _resize gives each square
        else:
            rgb = np.stack([_resize(image) for image in images])
        every_other = rgb[:, ::2, ::2]
        small = _half(rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32))
        parts = [
            _WEIGHTS["gradients"] * _normalise(_gradient_block(small)),
            _WEIGHTS["dct"] * _normalise(_dct_block(small)),
            _WEIGHTS["colour"] * _normalise(_colour_block(every_other)),
        ]
        vectors = np.concatenate(parts, axis=1).astype(np.float32)
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
