"""Defaults and choices shared by the stage configs and the code that applies them.

Kept here, with nothing heavy imported, so that the configs (and so ``curate --help``) load in
milliseconds; :mod:`curate.decode`, :mod:`curate.hashing`, :mod:`curate.faces` and
:mod:`curate.embedders` re-export them.
"""

from __future__ import annotations

from enum import StrEnum

DEFAULT_MAX_PIXELS = 40_000_000  # decompression-bomb guard: larger images are refused
DEFAULT_MAX_BYTES = 256 * 1024 * 1024  # larger files are refused, never read into memory


class HashKind(StrEnum):
    """A perceptual hash of 64 bits (imagehash's definitions)."""

    PHASH = "phash"  # DCT of a 32x32 grey image: survives resizing, recompression, small edits
    DHASH = "dhash"  # horizontal gradients of a 9x8 grey image
    AHASH = "ahash"  # 8x8 grey image against its mean
    WHASH = "whash"  # Haar wavelet of a grey image


HASH_KINDS = tuple(kind.value for kind in HashKind)
HASH_BITS = 64
SQUARE_MAX_SIDE = 512  # images are first shrunk to about this size (describe's default ``max_side``)

DEFAULT_MAX_SIDE = 1024  # faces: longer sides are shrunk to this before detection
DEFAULT_COARSE_SIDE = 640  # faces: a first look at this side; max_side only where it finds no face
DEFAULT_RETRY_MAX_SIDE = 400  # faces: the longest side the second detection pass sees

BUILTIN_EMBEDDERS = ("dlib", "handcrafted")


class DetectorKind(StrEnum):
    """Which face detector to run."""

    HOG = "hog"  # dlib HOG: frontal to about 45 degrees of yaw
    CNN = "cnn"  # dlib MMOD CNN: more poses, several times slower on a CPU
    CENTERFACE = "centerface"  # CenterFace (ONNX Runtime): frontal and profile, its own 5 landmarks

    @property
    def is_dlib(self) -> bool:
        """Whether dlib's 5-point predictor places this detector's landmarks."""
        return self is not DetectorKind.CENTERFACE
