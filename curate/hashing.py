"""Perceptual hashes (64-bit pHash / dHash / aHash / wHash via imagehash) and their packed codes.

Bit order of a packed code: imagehash flattens its 8x8 boolean hash row-major, and the hex string writes
the first element as the most significant bit. The ``*_code`` int64 is that same 64-bit number read as a
two's-complement signed integer, so bit 63 (the sign bit) is ``hash[0, 0]`` and bit 0 is ``hash[7, 7]``.
:func:`codes_to_bytes` turns codes into the 8-byte big-endian rows a faiss binary index takes (byte 0 holds
bits 63..56); Hamming distance does not depend on the order as long as every code uses the same one.

Before hashing, :func:`trim_uniform_border` removes a flat-coloured frame (a border added to a copy, or
letterboxing) so that a framed copy hashes like its original.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import imagehash
import numpy as np
from PIL import Image

from curate.errors import ConfigError

logger = logging.getLogger(__name__)

HASHES: dict[str, Callable[[Image.Image], imagehash.ImageHash]] = {
    "phash": imagehash.phash,
    "dhash": imagehash.dhash,
    "ahash": imagehash.average_hash,
    "whash": imagehash.whash,
}
"""Hash kind -> imagehash function; every one gives 64 bits at its default size."""

HASH_BITS = 64

_BORDER_TOLERANCE = 12  # grey levels a frame pixel may differ from the frame colour (JPEG noise)
_BORDER_INLIER_FRACTION = 0.95  # a line belongs to the frame when this share of its pixels match
_BORDER_MAX_FRACTION = 0.25  # never trim more than this share of a side


def check_hash_names(names: Sequence[str], key: str = "hashes") -> None:
    """Raise ConfigError unless every name is a known hash kind."""
    for name in names:
        if name not in HASHES:
            raise ConfigError(key, list(names), f"unknown hash {name!r}; choose from {sorted(HASHES)}")


def hash_image(image: Image.Image, kind: str) -> tuple[str, int]:
    """Hash a PIL image: ``(hex string of 16 digits, signed int64 packed code)``."""
    value = HASHES[kind](image)
    hex_string = str(value)
    return hex_string, hex_to_code(hex_string)


def hex_to_code(hex_string: str) -> int:
    """The signed int64 of a 16-digit hash hex string (bit 63 = first hash bit)."""
    unsigned = int(hex_string, 16)
    return unsigned - (1 << 64) if unsigned >= (1 << 63) else unsigned


def codes_to_bytes(codes: np.ndarray) -> np.ndarray:
    """Packed int64 codes (n,) -> uint8 (n, 8) big-endian rows for a faiss binary index."""
    codes = np.ascontiguousarray(codes, dtype=np.int64)
    return codes.astype(">i8").view(np.uint8).reshape(len(codes), 8)


def hamming_bits(a: int, b: int) -> int:
    """Hamming distance in bits between two packed codes."""
    return ((a ^ b) & ((1 << 64) - 1)).bit_count()


def _frame_run(lines: np.ndarray, limit: int) -> int:
    """How many leading lines (rows of ``lines``, RGB) match the colour of the first one, at most ``limit``."""
    colour = np.median(lines[0], axis=0)
    close = np.abs(lines[:limit].astype(np.int16) - colour).max(axis=2) <= _BORDER_TOLERANCE
    is_frame = close.mean(axis=1) >= _BORDER_INLIER_FRACTION
    return limit if is_frame.all() else int(np.argmin(is_frame))


def trim_uniform_border(image: np.ndarray) -> np.ndarray:
    """Crop away a flat-coloured frame around an RGB uint8 array; returns a view (or the input).

    A frame counts only when all four sides start with lines of one flat colour each (so a plain studio
    background behind a face, which rarely surrounds it on all four sides, is left alone). The same
    width, the narrowest of the four runs, is trimmed from every side: an added frame is usually even,
    and trimming less never cuts into the photo when the background beside the frame has its colour.
    """
    height, width = image.shape[:2]
    if height < 8 or width < 8:
        return image
    max_rows, max_cols = int(height * _BORDER_MAX_FRACTION), int(width * _BORDER_MAX_FRACTION)
    runs = (
        _frame_run(image, max_rows),
        _frame_run(image[::-1], max_rows),
        _frame_run(image.transpose(1, 0, 2), max_cols),
        _frame_run(image.transpose(1, 0, 2)[::-1], max_cols),
    )
    trim = min(runs)
    if trim == 0:
        return image
    return image[trim : height - trim, trim : width - trim]
