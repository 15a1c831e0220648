"""What the web does to a photo: re-posted near-duplicates, and files that claim to be JPEGs but are not."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance

DUPLICATE_TRANSFORMS = ("resize", "jpeg_reencode", "crop", "colour_shift", "text_overlay")
CORRUPTIONS = ("truncated_jpeg", "zero_bytes", "html", "random_bytes")

_HTML = (
    "<!DOCTYPE html>\n<html><head><title>{code} {title}</title></head>\n"
    "<body><h1>{title}</h1><p>The requested image could not be served.</p></body></html>\n"
)


def encode_jpeg(image: Image.Image, quality: int) -> bytes:
    """JPEG bytes of ``image`` with no metadata, so equal pixels always give equal bytes."""
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality, optimize=False, progressive=False)
    return buffer.getvalue()


def decodes(data: bytes) -> bool:
    """Whether Pillow can fully decode ``data`` (truncated files count as undecodable)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return False
    return True


def near_duplicate(source: bytes, transform: str, rng: np.random.Generator) -> bytes:
    """A re-posted copy of the JPEG ``source`` after one of :data:`DUPLICATE_TRANSFORMS`."""
    with Image.open(io.BytesIO(source)) as opened:
        image = opened.convert("RGB")
    width, height = image.size
    quality = int(rng.integers(75, 95))
    if transform == "resize":
        factor = rng.uniform(0.55, 0.85) if rng.uniform() < 0.7 else rng.uniform(1.2, 1.6)
        image = image.resize(
            (max(16, round(width * factor)), max(16, round(height * factor))), Image.Resampling.BICUBIC
        )
    elif transform == "jpeg_reencode":
        quality = int(rng.integers(15, 45))
    elif transform == "crop":
        left, top, right, bottom = (
            (rng.uniform(0.0, 0.03, 4) * [width, height, width, height]).round().astype(int)
        )
        image = image.crop((int(left), int(top), width - int(right), height - int(bottom)))
    elif transform == "colour_shift":
        image = ImageEnhance.Color(image).enhance(rng.uniform(0.4, 1.6))
        image = ImageEnhance.Brightness(image).enhance(rng.uniform(0.8, 1.2))
        gains = rng.uniform(0.85, 1.15, 3)
        pixels = np.asarray(image, dtype=np.float32) * gains
        image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
    elif transform == "text_overlay":
        image = _caption(image, rng)
    else:
        raise ValueError(f"unknown duplicate transform {transform!r}; use one of {DUPLICATE_TRANSFORMS}")
    return encode_jpeg(image, quality)


def _caption(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A site's half-transparent watermark (``something.com``) near one corner, as re-posting sites add."""
    layer = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    text = "".join(chr(int(c)) for c in rng.integers(97, 123, int(rng.integers(4, 9)))) + ".com"
    left, top, right, bottom = draw.textbbox((0, 0), text)
    x = 2 if rng.uniform() < 0.5 else image.width - (right - left) - 2
    y = 2 if rng.uniform() < 0.5 else image.height - (bottom - top) - 2
    shade = 255 if rng.uniform() < 0.7 else 0
    draw.text((x - left, y - top), text, fill=(shade, shade, shade, int(rng.integers(110, 190))))
    return Image.alpha_composite(image.convert("RGBA"), layer).convert("RGB")


def corrupt(kind: str, face_jpeg: bytes, rng: np.random.Generator) -> bytes:
    """Bytes of one of :data:`CORRUPTIONS` that no image decoder accepts; ``face_jpeg`` feeds truncation."""
    if kind == "zero_bytes":
        return b""
    if kind == "html":
        code, title = [(403, "Forbidden"), (404, "Not Found"), (503, "Service Unavailable")][
            int(rng.integers(3))
        ]
        return _HTML.format(code=code, title=title).encode("ascii")
    if kind == "truncated_jpeg":
        cut = int(len(face_jpeg) * rng.uniform(0.2, 0.7))
        data = face_jpeg[:cut]
        while decodes(data) and len(data) > 2:
            data = data[: len(data) // 2]
        return data
    if kind == "random_bytes":
        while True:
            data = rng.bytes(int(rng.integers(200, 4000)))
            if not decodes(data):
                return data
    raise ValueError(f"unknown corruption {kind!r}; use one of {CORRUPTIONS}")
