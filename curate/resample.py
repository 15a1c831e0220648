"""Pillow's grey conversion and Lanczos resize of a batch of same-sized 8-bit images in numpy, exactly.

describe hashes 64x64 squares: pHash reads each square converted to grey (``convert("L")``) and resized to
32x32 with Lanczos (the stored thumbnail), dHash the same grey resized to 9x8, as imagehash does. One image
at a time through Pillow, the calls cost more than the arithmetic at this size; here a whole batch takes
two matrix products per resize and gives the very values Pillow gives.

How Pillow computes them (``libImaging/Convert.c`` and ``libImaging/Resample.c``):

* grey: ``L = (19595 R + 38470 G + 7471 B + 2**15) >> 16`` (ITU-R 601-2 luma in 16-bit fixed point);
* resize: two passes, one per axis, each of 8-bit output. Per output pixel, the filter's weights over its
  input span are computed in double precision, divided by their sum and rounded to integers at 22
  fractional bits (half away from zero); the pass adds ``pixel * weight`` to ``2**21`` in an integer,
  shifts right by 22 and clips to 0..255.

The weights are computed here with the same double operations in the same order (``math.sin`` is the C
library's ``sin``), and each pass is a float64 matrix product with those integer weights: every product
and partial sum is an integer far below 2**53, so the result is exact whatever order BLAS adds in.

Since this mirrors Pillow's C code rather than calling it, the first use of each (input, output) shape
compares the two on test images (noise, flat, stripes, extremes that clip): with the horizontal pass first
(as Pillow 12 always does) and, failing that, the vertical pass first (Pillow 13.0 resizes some tall
images that way; squares, as describe's, it resizes horizontally first). If neither order gives Pillow's
values, that shape goes through Pillow one image at a time, with a warning; the grey conversion likewise.
"""

from __future__ import annotations

import functools
import logging
import math

import numpy as np
from PIL import Image

logger = logging.getLogger(__name__)

_PRECISION_BITS = 22  # Pillow's fixed point for 8-bit resampling: 32 - 8 - 2 bits


def grey(rgb: np.ndarray) -> np.ndarray:
    """Pillow's ``convert("L")`` of RGB uint8 pixels: (..., 3) -> (...) uint8."""
    red, green, blue = (rgb[..., channel].astype(np.uint32) for channel in range(3))
    return ((red * 19595 + green * 38470 + blue * 7471 + 32768) >> 16).astype(np.uint8)


def _sinc(x: float) -> float:
    if x == 0.0:
        return 1.0
    x = x * math.pi
    return math.sin(x) / x


def _lanczos(x: float) -> float:
    """Pillow's Lanczos filter: sinc(x) sinc(x/3) on [-3, 3)."""
    if -3.0 <= x < 3.0:
        return _sinc(x) * _sinc(x / 3)
    return 0.0


@functools.cache
def lanczos_weights(in_size: int, out_size: int) -> np.ndarray:
    """(out_size, in_size) float64: Pillow's integer Lanczos weights (22 fractional bits), 0 off the span."""
    scale = float(in_size) / out_size
    filterscale = max(scale, 1.0)
    support = 3.0 * filterscale
    inverse = 1.0 / filterscale
    matrix = np.zeros((out_size, in_size))
    for out in range(out_size):
        centre = 0.0 + (out + 0.5) * scale
        first = max(int(centre - support + 0.5), 0)
        count = min(int(centre + support + 0.5), in_size) - first
        weights = [_lanczos((x + first - centre + 0.5) * inverse) for x in range(count)]
        total = 0.0
        for weight in weights:  # summed in order, as the C loop does
            total += weight
        if total != 0.0:
            weights = [weight / total for weight in weights]
        one = float(1 << _PRECISION_BITS)
        matrix[out, first : first + count] = [int(w * one + (-0.5 if w < 0 else 0.5)) for w in weights]
    matrix.flags.writeable = False  # cached and shared
    return matrix


def _clip8(sums: np.ndarray) -> np.ndarray:
    """Pillow's rounding of fixed-point sums: add half, shift right by the precision, clip to 0..255."""
    shifted = np.floor((sums + float(1 << (_PRECISION_BITS - 1))) * (1.0 / (1 << _PRECISION_BITS)))
    return np.clip(shifted, 0.0, 255.0)


def _numpy_lanczos(images: np.ndarray, size: tuple[int, int], vertical_first: bool = False) -> np.ndarray:
    """Both passes in numpy, each skipped when its axis keeps its size (as Pillow skips it).

    Each pass is a matrix product per image (numpy loops over the batch in C): products this small stay
    on one BLAS thread, where one product over the whole batch would wake BLAS's threads to spin.
    """
    width, height = size
    values = images.astype(np.float64)
    for axis in (1, 2) if vertical_first else (2, 1):
        if axis == 2 and width != images.shape[2]:
            values = _clip8(values @ lanczos_weights(images.shape[2], width).T)
        elif axis == 1 and height != images.shape[1]:
            values = _clip8(lanczos_weights(images.shape[1], height) @ values)
    return values.astype(np.uint8)


def _pillow_lanczos(images: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The reference: Pillow's Lanczos resize of each (height, width) uint8 image."""
    out = [np.asarray(Image.fromarray(image).resize(size, Image.Resampling.LANCZOS)) for image in images]
    return np.stack(out) if out else np.zeros((0, size[1], size[0]), dtype=np.uint8)


def _test_images(height: int, width: int) -> np.ndarray:
    """Grey images that exercise every weight and both clips: noise, flat, stripes, a checkerboard."""
    noise = np.random.default_rng(0).integers(0, 256, (4, height, width), dtype=np.uint8)
    rows, cols = np.indices((height, width))
    patterns = [
        np.zeros((height, width)),
        np.full((height, width), 255),
        ((rows + cols) % 2) * 255,
        (cols % 3 == 0) * 255,
        (rows % 5 < 2) * 255,
        (rows * 7 + cols * 13) % 256,
    ]
    return np.concatenate([noise, np.stack(patterns).astype(np.uint8)])


@functools.cache
def pass_order(height: int, width: int, size: tuple[int, int]) -> bool | None:
    """For (height, width) images resized to ``size``: False when the numpy resize with the horizontal pass
    first gives Pillow's values on the test images, True when the vertical first does, None when neither."""
    images = _test_images(height, width)
    expected = _pillow_lanczos(images, size)
    for vertical_first in (False, True):
        if np.array_equal(_numpy_lanczos(images, size, vertical_first), expected):
            return vertical_first
    logger.warning(
        "this Pillow resamples %dx%d -> %dx%d differently from curate.resample; using Pillow per image",
        width,
        height,
        *size,
    )
    return None


@functools.cache
def _grey_agrees() -> bool:
    """Whether :func:`grey` gives this Pillow's values on a test image (noise and extremes)."""
    rgb = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    rgb[0, :6] = [[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 255, 0], [0, 0, 255], [1, 1, 1]]
    same = np.array_equal(grey(rgb), np.asarray(Image.fromarray(rgb).convert("L")))
    if not same:
        logger.warning("this Pillow converts RGB to grey differently from curate.resample; using Pillow")
    return same


def grey_batch(rgb: np.ndarray) -> np.ndarray:
    """(n, height, width, 3) uint8 RGB -> (n, height, width) uint8, as Pillow's ``convert("L")``."""
    if _grey_agrees():
        return grey(rgb)
    greys = [np.asarray(Image.fromarray(image).convert("L")) for image in rgb]
    return np.stack(greys).reshape(rgb.shape[:-1])


def lanczos_batch(images: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(n, height, width) uint8 grey images resized to ``size`` = (width, height) as Pillow's Lanczos resize.

    Returns (n, size[1], size[0]) uint8.
    """
    if images.shape[1:] == (size[1], size[0]):
        return images.copy()
    order = pass_order(images.shape[1], images.shape[2], size) if len(images) else None
    if order is None:
        return _pillow_lanczos(images, size)
    return _numpy_lanczos(images, size, order)
