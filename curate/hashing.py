"""Perceptual hashes (imagehash's 64-bit pHash / dHash / aHash / wHash) and their packed codes.

pHash and dHash are computed here in batches with numpy, bit for bit as imagehash computes them (tests
compare), so a worker never imports scipy (0.8 s per process) and a batch costs little; aHash and wHash
call imagehash. For describe's batch of same-sized squares (:func:`hashes_and_thumbnails`) the grey
conversion and the Lanczos resizes run in numpy too (:mod:`curate.resample`, Pillow's values exactly).

Bit order of a packed code: the 8x8 boolean hash is flattened row-major and the hex string (as imagehash
writes it) puts the first element in the most significant bit. The ``*_code`` int64 is that same 64-bit
number read as a two's-complement signed integer, so bit 63 (the sign bit) is ``hash[0, 0]`` and bit 0 is
``hash[7, 7]``. :func:`codes_to_bytes` turns codes into the 8-byte big-endian rows a faiss binary index
takes (byte 0 holds bits 63..56); Hamming distance is the same in any bit order used consistently.

Before hashing, :func:`trim_uniform_border` removes a flat-coloured frame (a border added to a copy) so that
a framed copy hashes like its original. :func:`describe_square` makes the one 64x64 RGB square the hashes,
the thumbnails and the handcrafted embedder read; ``collect`` can store it (``squares``) so that
``describe`` on collect's output need not decode the image a second time. Both decode the image for it with
:func:`decode_for_square`: a JPEG at the reduced DCT scale (libjpeg's 1/2, 1/4 or 1/8) that keeps both
sides at least the square's side, or at least twice that when the four corners share a colour, where a
frame may be (see the function for why). The square is then resampled with ``reducing_gap``
:data:`SQUARE_REDUCING_GAP`: an integer box reduction to under twice the square's side, then the
antialiased bilinear filter (see the constant for what it saves and costs).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import imagehash
import numpy as np
from PIL import Image

from curate.constants import DEFAULT_MAX_PIXELS, SQUARE_MAX_SIDE
from curate.constants import HASH_BITS as HASH_BITS  # re-exported
from curate.constants import HASH_KINDS as HASH_KINDS  # re-exported
from curate.decode import Decoded, decode_bytes, load_with
from curate.resample import grey_batch, lanczos_batch

logger = logging.getLogger(__name__)


SQUARE_SIDE = 64  # the describe square's side in pixels
SQUARE_BYTES = SQUARE_SIDE * SQUARE_SIDE * 3  # RGB, row-major
# A JPEG is decoded for the square at the coarsest DCT scale keeping both sides >= SQUARE_DECODE_SIDE, or
# >= FRAME_DECODE_SIDE when its corners share a colour (:func:`decode_for_square`).
SQUARE_DECODE_SIDE = SQUARE_SIDE
FRAME_DECODE_SIDE = 2 * SQUARE_SIDE
SQUARE_COLUMN = "square"  # the manifest column collect stores squares in
# Pillow's ``reducing_gap`` for the square: a box reduction by the largest integer factor that leaves more
# than 1.01x the square's side, then bilinear. With 2.0 a 180 px crop went through the bilinear filter whole
# (0.17 ms of the 0.5 ms collect spends on it); a 2x2 box first costs a third less, the bilinear step
# still antialiases, and near-duplicate recall and precision at 10k and 50k were unchanged (RESULTS.md).
SQUARE_REDUCING_GAP = 1.01

_BORDER_TOLERANCE = 12  # grey levels a frame pixel may differ from the frame colour (JPEG noise)
_BORDER_INLIER_FRACTION = 0.95  # a line belongs to the frame when this share of its pixels match
_BORDER_MAX_FRACTION = 0.25  # never trim more than this share of a side
# JPEG's chroma subsampling tints the frame's last line or two with the picture's colour while their
# brightness stays the frame's: up to this many lines past a side's run are judged by luma alone. Without
# them, 9 of 10 framed CFP copies kept 1-2 lines of their frame (bench/trim_frames.py).
_BORDER_EDGE_LINES = 2
_LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R BT.601, as JPEG's YCbCr


def _dct_rows(size: int, keep: int) -> np.ndarray:
    """First ``keep`` rows of the unnormalised DCT-II that imagehash uses (scipy.fftpack.dct's default)."""
    k = np.arange(keep)[:, None]
    n = np.arange(size)[None, :]
    return 2.0 * np.cos(np.pi * k * (2 * n + 1) / (2 * size))


_PHASH_DCT = _dct_rows(32, 8)


def resized(image: Image.Image, side: int, reducing_gap: float = 2.0) -> Image.Image:
    """``image`` resampled to a ``side`` x ``side`` square (antialiased bilinear; aspect is not kept).

    ``reducing_gap`` is Pillow's: an integer box reduction first, down to this many times ``side``.
    """
    if image.size == (side, side):
        return image
    return image.resize((side, side), Image.Resampling.BILINEAR, reducing_gap=reducing_gap)


def shrink(image: Image.Image, max_side: int) -> Image.Image:
    """Reduce ``image`` by the integer factor that brings its longer side to at most about ``max_side``."""
    factor = max(image.size) // max_side if max_side else 0
    return image.reduce(factor) if factor >= 2 else image


def describe_square(shrunk: Image.Image, *, trim: bool = True) -> Image.Image:
    """The 64x64 RGB square describe works on: ``shrunk`` (already :func:`shrink`-ed), frame trimmed."""
    image = trim_uniform_border(shrunk) if trim else shrunk
    return resized(image, SQUARE_SIDE, reducing_gap=SQUARE_REDUCING_GAP)


def square_bytes(image: Image.Image, *, max_side: int = SQUARE_MAX_SIDE, trim: bool = True) -> bytes:
    """:func:`describe_square` of a decoded RGB image as ``SQUARE_BYTES`` raw bytes (what collect stores)."""
    return describe_square(shrink(image, max_side), trim=trim).tobytes()


def square_from_bytes(data: bytes) -> Image.Image:
    """The RGB square stored by :func:`square_bytes`."""
    return Image.fromarray(square_array(data))


def square_array(data: bytes) -> np.ndarray:
    """The square stored by :func:`square_bytes` as a read-only (side, side, 3) uint8 array (no copy)."""
    if len(data) != SQUARE_BYTES:
        raise ValueError(f"a stored square has {SQUARE_BYTES} bytes, not {len(data)}")
    return np.frombuffer(data, dtype=np.uint8).reshape(SQUARE_SIDE, SQUARE_SIDE, 3)


def _grey(images: list[Image.Image], size: tuple[int, int]) -> np.ndarray:
    """Grey versions resized with Lanczos (as imagehash does), stacked: (n, height, width) uint8."""
    greys = (im if im.mode == "L" else im.convert("L") for im in images)
    return np.stack([np.asarray(grey.resize(size, Image.Resampling.LANCZOS)) for grey in greys])


def thumbnails(images: list[Image.Image]) -> np.ndarray:
    """32x32 grey thumbnails (pHash's own input), stacked: (n, 32, 32) uint8; for pair verification."""
    if not images:
        return np.zeros((0, 32, 32), dtype=np.uint8)
    return _grey(images, (32, 32))


def _phash_bits(grey32: np.ndarray) -> np.ndarray:
    """pHash of (n, 32, 32) grey thumbnails: 2-D DCT, the 8x8 lowest frequencies above their median."""
    low = (_PHASH_DCT @ grey32.astype(np.float64) @ _PHASH_DCT.T).reshape(len(grey32), -1)
    return low > np.median(low, axis=1, keepdims=True)


def _dhash_bits(grey98: np.ndarray) -> np.ndarray:
    """dHash of (n, 8, 9) grey images: is each pixel brighter than its left neighbour."""
    return (grey98[:, :, 1:] > grey98[:, :, :-1]).reshape(len(grey98), -1)


def hash_bits(images: list[Image.Image], kind: str) -> np.ndarray:
    """(n, 64) booleans of ``kind`` for each image, row-major over imagehash's 8x8 hash."""
    if kind == "phash":
        return _phash_bits(_grey(images, (32, 32)))
    if kind == "dhash":
        return _dhash_bits(_grey(images, (9, 8)))
    function = {"ahash": imagehash.average_hash, "whash": imagehash.whash}[kind]
    return np.stack([np.asarray(function(im).hash, dtype=bool).reshape(-1) for im in images])


def hash_images(images: list[Image.Image], kind: str) -> tuple[list[str], list[int]]:
    """Hash images: 16-digit hex strings (as imagehash writes them) and signed int64 packed codes."""
    if not images:
        return [], []
    return _packed(hash_bits(images, kind))


def _packed(bits: np.ndarray) -> tuple[list[str], list[int]]:
    codes = np.packbits(bits, axis=1).view(">i8").reshape(-1).astype(np.int64)
    return [format(code & 0xFFFFFFFFFFFFFFFF, "016x") for code in codes.tolist()], codes.tolist()


def hashes_and_thumbnails(
    squares: np.ndarray | Sequence[Image.Image], kinds: Sequence[str], with_thumbnails: bool
) -> tuple[dict[str, tuple[list[str], list[int]]], np.ndarray | None]:
    """:func:`hash_images` for every kind and :func:`thumbnails` of a batch of same-sized RGB squares.

    ``squares``: (n, side, side, 3) uint8, or RGB images of one size. The grey conversion and the Lanczos
    resizes of pHash, dHash and the thumbnails run for the whole batch at once in numpy
    (:mod:`curate.resample`), with the very values Pillow gives one image at a time; pHash reads the very
    32x32 thumbnail that is stored. aHash and wHash go through imagehash per image.
    """
    if not len(squares):
        empty = np.zeros((0, 32, 32), dtype=np.uint8) if with_thumbnails else None
        return {kind: ([], []) for kind in kinds}, empty
    if not isinstance(squares, np.ndarray):
        squares = np.stack([np.asarray(im) for im in squares])
    greys = grey_batch(squares)
    grey32 = lanczos_batch(greys, (32, 32)) if "phash" in kinds or with_thumbnails else None
    hashes = {}
    for kind in kinds:
        if kind == "phash" and grey32 is not None:
            hashes[kind] = _packed(_phash_bits(grey32))
        elif kind == "dhash":
            hashes[kind] = _packed(_dhash_bits(lanczos_batch(greys, (9, 8))))
        else:
            hashes[kind] = _packed(hash_bits([Image.fromarray(grey) for grey in greys], kind))
    return hashes, grey32 if with_thumbnails else None


def hex_to_code(hex_string: str) -> int:
    """The signed int64 of a 16-digit hash hex string (bit 63 = first hash bit)."""
    unsigned = int(hex_string, 16)
    return unsigned - (1 << 64) if unsigned >= (1 << 63) else unsigned


def codes_to_bytes(codes: np.ndarray) -> np.ndarray:
    """Packed int64 codes (n,) -> uint8 (n, 8) big-endian rows for a faiss binary index."""
    codes = np.ascontiguousarray(codes, dtype=np.int64)
    return codes.astype(">i8").view(np.uint8).reshape(len(codes), 8)


def hamming_bits(a: np.ndarray | int, b: np.ndarray | int) -> np.ndarray:
    """Hamming distance in bits between packed int64 codes (element-wise for arrays).

    The XOR is counted as uint64: numpy's ``bitwise_count`` of a signed integer counts its absolute value.
    """
    xor = np.bitwise_xor(np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64))
    return np.bitwise_count(xor.view(np.uint64)).astype(np.int64)


def _frame_lines(band: np.ndarray, colour: np.ndarray) -> int:
    """How many leading lines of ``band`` (lines x pixels x RGB) are of the frame colour."""
    diff = np.abs(band.astype(np.int16) - colour)
    close = np.maximum(np.maximum(diff[:, :, 0], diff[:, :, 1]), diff[:, :, 2]) <= _BORDER_TOLERANCE
    return _leading(close.mean(axis=1) >= _BORDER_INLIER_FRACTION)


def _frame_edge_lines(band: np.ndarray, colour: np.ndarray) -> int:
    """How many leading lines of ``band`` have the frame colour's brightness (chroma may be smeared)."""
    luma = band.astype(np.float32) @ _LUMA_WEIGHTS
    close = np.abs(luma - float(colour.astype(np.float32) @ _LUMA_WEIGHTS)) <= _BORDER_TOLERANCE
    return _leading(close.mean(axis=1) >= _BORDER_INLIER_FRACTION)


def _leading(flags: np.ndarray) -> int:
    """The number of leading ``True`` values."""
    return len(flags) if flags.all() else int(np.argmin(flags))


def _side_run(side: Callable[[int], np.ndarray], colour: np.ndarray, limit: int) -> int:
    """The frame run of one side, reading a band 4 lines deep and deepening it only while all match, plus
    the lines at its inner edge that match by brightness (at most :data:`_BORDER_EDGE_LINES`)."""
    depth = 4
    while True:
        depth = min(depth, limit)
        run = _frame_lines(side(depth), colour)
        if run < depth or depth == limit:
            break
        depth *= 4
    if run == 0:
        return 0
    return run + _frame_edge_lines(side(min(run + _BORDER_EDGE_LINES, limit))[run:], colour)


def corners_share_a_colour(image: Image.Image) -> bool:
    """Do the four corner pixels of an RGB image (at least 8x8) agree, as a frame's would? Four reads."""
    width, height = image.size
    if width < 8 or height < 8:
        return False
    corners = [
        image.getpixel(xy) for xy in ((0, 0), (width - 1, 0), (0, height - 1), (width - 1, height - 1))
    ]
    return max(max(channel) - min(channel) for channel in zip(*corners, strict=True)) <= 2 * _BORDER_TOLERANCE


def decode_for_square(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS, trim: bool = True) -> Decoded:
    """``data`` decoded (:func:`curate.decode.decode_bytes`: every byte checked) at the square's scale.

    A JPEG comes at the coarsest DCT scale that keeps both sides at least :data:`SQUARE_DECODE_SIDE`: the
    square is resampled from it anyway, and libjpeg skips most of the pixel work (a 200 px crop decodes
    at half scale, a fifth cheaper with its square). When the image may have a frame to trim (``trim``
    and its corners share a colour: about 6% of CFP crops and photos), it is decoded again at the scale
    keeping :data:`FRAME_DECODE_SIDE`: at half scale a frame's inner edge blurs into the picture over a DCT
    block, so the trim left part of it, and at 10k planted copies 5 of 925 framed copies were missed
    (``bench/neardup.py``; none at the finer scale). Width and height are always the full image's.
    """
    decoded = decode_bytes(data, max_pixels=max_pixels, reduce_to=SQUARE_DECODE_SIDE)
    image = decoded.image
    if trim and image is not None and is_reduced(decoded) and corners_share_a_colour(image):
        image.close()
        return decode_bytes(data, max_pixels=max_pixels, reduce_to=FRAME_DECODE_SIDE)
    return decoded


def load_for_square(path: str, *, trim: bool = True) -> Decoded:
    """:func:`decode_for_square` of the file at ``path`` (read with :func:`curate.safe_read.read_file`)."""
    return load_with(path, lambda data: decode_for_square(data, trim=trim))


def is_reduced(decoded: Decoded) -> bool:
    """Was ``decoded`` (ok) decoded at a reduced DCT scale, smaller than the full image?"""
    assert decoded.image is not None
    return decoded.image.size not in ((decoded.width, decoded.height), (decoded.height, decoded.width))


def trim_uniform_border(image: Image.Image) -> Image.Image:
    """Crop away a flat-coloured frame around an RGB image (the input itself when there is none).

    A frame counts only when all four sides start with lines of one flat colour (so a plain studio
    background behind a face, which rarely surrounds it on all four sides, is left alone). The same
    width, the narrowest of the four runs, is trimmed from every side: an added frame is usually even,
    and trimming less never cuts into the photo when the background beside the frame has its colour.
    The corners are checked first, so a photo without a frame costs four pixel reads. The frame colour is
    the median of the outermost lines (a corner pixel alone can be off by JPEG's colour smearing), and a
    run includes the lines at its inner edge that JPEG tinted but left at the frame's brightness.
    """
    width, height = image.size
    if not corners_share_a_colour(image):
        return image  # the four corners of a frame share its colour
    pixels = np.asarray(image)
    outer = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    colour = np.median(outer, axis=0).astype(np.int16)
    sides: list[tuple[Callable[[int], np.ndarray], int]] = [
        (lambda d: pixels[:d], int(height * _BORDER_MAX_FRACTION)),
        (lambda d: pixels[::-1][:d], int(height * _BORDER_MAX_FRACTION)),
        (lambda d: pixels[:, :d].transpose(1, 0, 2), int(width * _BORDER_MAX_FRACTION)),
        (lambda d: pixels[:, ::-1][:, :d].transpose(1, 0, 2), int(width * _BORDER_MAX_FRACTION)),
    ]
    trim = min(limit for _, limit in sides)
    for side, limit in sides:
        trim = min(trim, _side_run(side, colour, limit))
        if trim == 0:
            return image
    return image.crop((trim, trim, width - trim, height - trim))
