"""Safe image decoding: untrusted bytes in, an RGB image or a status with a reason out, never an exception.

Guards, in order: empty input; a magic-byte allowlist (:func:`sniff_format`), so Pillow only ever runs the
parsers of common photo formats (never EPS, which would start Ghostscript, or a format guessed from noise);
a pixel-count check on the header before any pixel is decoded (decompression bombs); a full ``load()`` with
Pillow's default ``LOAD_TRUNCATED_IMAGES = False``, so truncated files fail instead of coming back grey.
Pillow's own bomb check stays on and counts as ``unsafe_input`` too: above ``Image.MAX_IMAGE_PIXELS`` (where
Pillow only warns) the header check refuses the image, above twice that Pillow raises
``DecompressionBombError``. No global state is touched (``Image.MAX_IMAGE_PIXELS``, warning filters), so
decoding is safe from several threads at once.

The decoded image is RGB with its EXIF orientation applied (first frame of an animation). Modes with
transparency are composited onto white; 16-bit and float greyscale are rescaled to 8 bits (see
:func:`to_rgb`), never clipped.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from curate.constants import DEFAULT_MAX_PIXELS
from curate.record import Status
from curate.safe_read import read_file

logger = logging.getLogger(__name__)

# DEFAULT_MAX_PIXELS: largest width x height decoded (a 40 MP photo); larger headers are ``unsafe_input``.

_BMP_HEADER_SIZES = {12, 40, 52, 56, 64, 108, 124}


@dataclass(frozen=True)
class Decoded:
    """The outcome of decoding one image. ``image`` is set only when ``status`` is ``ok``.

    ``width``/``height`` are those of the returned (EXIF-rotated) image when ok, else of the header when
    it could be read; ``mode`` is the original Pillow mode; ``n_frames`` counts animation frames.
    """

    image: Image.Image | None
    status: Status
    reason: str
    width: int | None = None
    height: int | None = None
    format: str | None = None
    mode: str | None = None
    n_frames: int | None = None

    @property
    def ok(self) -> bool:
        """Did the bytes decode to an image?"""
        return self.status is Status.OK


def sniff_format(data: bytes) -> str | None:
    """The image format named by the magic bytes alone, as Pillow names it, or None.

    Recognised: JPEG, PNG, GIF, WEBP, BMP, TIFF (also BigTIFF), PPM (PBM/PGM/PPM, ASCII and binary), AVIF.
    """
    head = data[:32]
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[:2] == b"BM" and len(head) >= 18 and int.from_bytes(head[14:18], "little") in _BMP_HEADER_SIZES:
        return "BMP"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "TIFF"
    if len(head) >= 3 and head[:1] == b"P" and head[1:2] in b"123456" and head[2:3] in b" \t\r\n#":
        return "PPM"
    if head[4:8] == b"ftyp" and head[8:12] in (b"avif", b"avis"):
        return "AVIF"
    return None


def describe_non_image(data: bytes) -> str:
    """A short human description of bytes that are not a supported image ("HTML document", "empty file")."""
    if not data:
        return "empty file"
    head = data[:2048]
    if head.startswith(b"%PDF"):
        return "PDF document"
    if head.startswith(b"PK\x03\x04"):
        return "ZIP archive"
    if head.startswith(b"\x1f\x8b"):
        return "gzip archive"
    if head[4:8] == b"ftyp" and head[8:12] in (b"heic", b"heix", b"mif1", b"msf1", b"hevc"):
        return "HEIF/HEIC image (format not supported)"
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip().lower()
    if text.startswith((b"<!doctype html", b"<html", b"<head", b"<body")) or b"<html" in text:
        return "HTML document"
    if b"<svg" in text:
        return "SVG document (vector graphics are not supported)"
    if text.startswith(b"<?xml"):
        return "XML document"
    try:
        decoded = head.decode("utf-8")
    except UnicodeDecodeError:
        # a multi-byte character cut at the 2048-byte boundary is still text
        decoded = head[:-4].decode("utf-8", errors="replace") if len(head) > 4 else "\ufffd"
    if "\ufffd" not in decoded and all(ch.isprintable() or ch in "\r\n\t\f" for ch in decoded):
        return "JSON text" if text.startswith((b"{", b"[")) else "text file"
    return "unknown binary"


def decode_bytes(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS, reduce_to: int = 0) -> Decoded:
    """Decode untrusted ``data`` to an RGB image; never raises for any input bytes.

    Returns ``failed_decode`` for empty, unrecognised, truncated or corrupt data and ``unsafe_input`` when
    the header declares more than ``max_pixels`` pixels (checked before decoding) or Pillow's own
    decompression-bomb guard trips.

    ``reduce_to`` > 0 decodes a JPEG at the strongest DCT scaling (1/2, 1/4 or 1/8, libjpeg's scaled
    decoding) that keeps both sides at least ``reduce_to`` pixels: every byte of the file is still read
    and entropy-decoded, so a truncated or corrupt file fails just the same, for a fraction of the cost.
    ``width`` and ``height`` stay those of the full image; other formats decode in full.
    """
    if not data:
        return Decoded(None, Status.FAILED_DECODE, "empty file")
    fmt = sniff_format(data)
    if fmt is None:
        return Decoded(None, Status.FAILED_DECODE, f"not an image: {describe_non_image(data)}")
    try:
        return _decode(data, fmt, max_pixels, reduce_to)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:  # Warning: under -W error
        return Decoded(None, Status.UNSAFE_INPUT, f"decompression bomb guard: {exc}", format=fmt)
    except Exception as exc:  # untrusted bytes reach C and Python parsers: any failure is this image's
        return Decoded(None, Status.FAILED_DECODE, f"cannot open {fmt}: {_explain(exc)}", format=fmt)


def _decode(data: bytes, fmt: str, max_pixels: int, reduce_to: int) -> Decoded:
    """Open, check and decode ``data``. An RGB image comes back as the opened image itself (EXIF turns
    applied in place): a copy of every decoded image would add about a tenth to a small JPEG's decode. Any
    other image object made here is closed."""
    im = Image.open(io.BytesIO(data), formats=[fmt])
    rgb: Image.Image | None = None
    try:
        width, height, mode = im.width, im.height, im.mode
        pillow_limit = Image.MAX_IMAGE_PIXELS
        limit, limit_name = max_pixels, "max_pixels"
        if pillow_limit is not None and pillow_limit < max_pixels:
            limit, limit_name = pillow_limit, "PIL.Image.MAX_IMAGE_PIXELS"
        if width * height > limit:
            reason = f"too many pixels: {width}x{height} = {width * height:,} > {limit_name} {limit:,}"
            return Decoded(None, Status.UNSAFE_INPUT, reason, width, height, im.format, mode)
        try:
            n_frames = int(getattr(im, "n_frames", 1))  # seeks through an animation and back to frame 0
            if reduce_to > 0 and fmt == "JPEG":
                im.draft(im.mode, (reduce_to, reduce_to))
            drafted = im.size
            im.load()
            ImageOps.exif_transpose(im, in_place=True)
            rgb = to_rgb(im)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise
        except Exception as exc:  # truncated or corrupt pixel data, bad EXIF, unsupported mode
            reason = f"cannot decode {fmt}: {_explain(exc)}"
            return Decoded(None, Status.FAILED_DECODE, reason, width, height, im.format, mode)
        if rgb.size != drafted:  # EXIF orientation turned the image a quarter turn
            width, height = height, width
        return Decoded(rgb, Status.OK, "", width, height, im.format, mode, n_frames)
    finally:
        if rgb is not im:
            im.close()


_ALPHA_MODES = {"RGBA", "RGBa", "LA", "La", "PA"}


def to_rgb(im: Image.Image) -> Image.Image:
    """Convert any Pillow mode to RGB.

    Transparency (alpha modes, palette or grey with a transparent index/value) is composited onto white.
    ``I;16*`` maps 0..65535 to 0..255; ``I`` and ``F`` are rescaled by :func:`scale_to_8bit`. Everything
    else (1, L, P, CMYK, YCbCr...) uses Pillow's own conversion.
    """
    if im.mode == "RGB":
        return im
    if im.mode.startswith("I") or im.mode == "F":
        return Image.fromarray(scale_to_8bit(im)).convert("RGB")
    if im.mode in _ALPHA_MODES or "transparency" in im.info or (im.mode == "P" and im.palette.mode == "RGBA"):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return im.convert("RGB")


def scale_to_8bit(im: Image.Image) -> np.ndarray:
    """An 8-bit grey array from a 16-bit (``I;16*``), 32-bit integer (``I``) or float (``F``) image.

    ``I;16*``: value / 65535. ``I``: values within 0..255 are kept, within 0..65535 treated as 16-bit,
    anything else stretched from min to max. ``F``: values within 0..1 scaled by 255, else stretched.
    NaN and infinities become 0. Rounds to nearest, so a smooth gradient stays smooth.
    """
    values = np.asarray(im, dtype=np.float64)
    finite = np.isfinite(values)
    values = np.where(finite, values, 0.0)
    low = float(values[finite].min()) if finite.any() else 0.0
    high = float(values[finite].max()) if finite.any() else 0.0
    if im.mode.startswith("I;16"):
        low, full = 0.0, 65535.0
    elif im.mode == "I" and low >= 0 and high <= 255:
        low, full = 0.0, 255.0
    elif im.mode == "I" and low >= 0 and high <= 65535:
        low, full = 0.0, 65535.0
    elif im.mode == "F" and low >= 0 and high <= 1:
        low, full = 0.0, 1.0
    else:
        full = max(high - low, 1e-12)
    return np.clip(np.rint((values - low) / full * 255.0), 0, 255).astype(np.uint8)


_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")  # "<_io.BytesIO object at 0x7f...>": differs on every run


def _explain(exc: BaseException) -> str:
    """The exception as ``Type: message``, without object addresses, so a re-run writes the same reason."""
    message = _ADDRESS.sub("", str(exc)).strip()
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def load_rgb(path: str | Path, *, max_pixels: int = DEFAULT_MAX_PIXELS, reduce_to: int = 0) -> Decoded:
    """Read ``path`` with :func:`read_file` and decode it with :func:`decode_bytes`; never raises."""
    return load_with(path, lambda data: decode_bytes(data, max_pixels=max_pixels, reduce_to=reduce_to))


def load_with(path: str | Path, decode: Callable[[bytes], Decoded]) -> Decoded:
    """Read ``path`` with :func:`read_file` and give its bytes to ``decode`` (a decoder that never raises)."""
    read = read_file(path)
    if read.data is None:
        return Decoded(None, read.status, read.reason)
    return decode(read.data)
