"""Everything around the face: cluttered backgrounds, lighting and colour cast, and pictures with no face."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

NON_FACE_KINDS = ("clutter", "landscape", "logo", "object")
"""What a non-face picture shows; recorded as its ``transform`` in the truth table."""


def _colour(rng: np.random.Generator, low: int = 0, high: int = 256) -> tuple[int, int, int]:
    values = rng.integers(low, high, 3)
    return (int(values[0]), int(values[1]), int(values[2]))


def _gradient(size: int, top: tuple[int, int, int], bottom: tuple[int, int, int]) -> Image.Image:
    t = np.linspace(0.0, 1.0, size)[:, None, None]
    column = (np.array(top) * (1 - t) + np.array(bottom) * t).astype(np.uint8)
    return Image.fromarray(column, "RGB").resize((size, size), Image.Resampling.NEAREST)


def background(rng: np.random.Generator, size: int, shapes: int) -> Image.Image:
    """A ``size`` x ``size`` backdrop: a two-colour gradient with ``shapes`` random boxes, blobs and lines."""
    image = _gradient(size, _colour(rng), _colour(rng))
    draw = ImageDraw.Draw(image)
    for _ in range(shapes):
        kind = int(rng.integers(4))
        x0, y0 = rng.integers(-size // 4, size, 2)
        w, h = rng.integers(size // 16, size // 2, 2)
        box = (int(x0), int(y0), int(x0 + w), int(y0 + h))
        colour = _colour(rng)
        if kind == 0:
            draw.rectangle(box, fill=colour)
        elif kind == 1:
            draw.ellipse(box, fill=colour)
        elif kind == 2:
            draw.line(box, fill=colour, width=int(rng.integers(1, max(2, size // 24))))
        else:
            points = rng.integers(0, size, (int(rng.integers(3, 6)), 2))
            draw.polygon([(int(x), int(y)) for x, y in points], fill=colour)
    return image


def apply_photometric(
    image: Image.Image, light_angle: float, strength: float, gains: tuple[float, float, float]
) -> Image.Image:
    """Multiply ``image`` by a linear light gradient from ``light_angle`` and per-channel ``gains``."""
    pixels = np.asarray(image, dtype=np.float32)
    size_y, size_x = pixels.shape[:2]
    xs = np.linspace(-1, 1, size_x, dtype=np.float32)[None, :]
    ys = np.linspace(-1, 1, size_y, dtype=np.float32)[:, None]
    light = 1 + strength * (np.cos(light_angle) * xs + np.sin(light_angle) * ys)
    lit = pixels * (light[..., None] * np.asarray(gains, dtype=np.float32))
    return Image.fromarray(np.clip(lit, 0, 255).astype(np.uint8), "RGB")


def draw_non_face(rng: np.random.Generator, size: int, kind: str) -> Image.Image:
    """A decodable picture without a face, of one of :data:`NON_FACE_KINDS`."""
    if kind == "clutter":
        return background(rng, size, int(rng.integers(15, 40)))
    if kind == "landscape":
        horizon = int(size * rng.uniform(0.4, 0.7))
        image = _gradient(size, _colour(rng, 90, 200), _colour(rng, 180, 256))
        draw = ImageDraw.Draw(image)
        sun = rng.integers(size // 8, size - size // 8, 2)
        radius = int(size * rng.uniform(0.05, 0.12))
        draw.ellipse(
            (
                int(sun[0]) - radius,
                int(sun[1]) // 2 - radius,
                int(sun[0]) + radius,
                int(sun[1]) // 2 + radius,
            ),
            fill=(250, 230, 150),
        )
        peaks = np.linspace(0, size, int(rng.integers(3, 7)))
        ridge = [(int(x), int(horizon - rng.uniform(0, size * 0.3))) for x in peaks]
        draw.polygon([(0, size), *ridge, (size, size)], fill=_colour(rng, 40, 140))
        draw.rectangle((0, horizon, size, size), fill=_colour(rng, 30, 120))
        return image
    if kind == "logo":
        image = Image.new("RGB", (size, size), _colour(rng, 180, 256))
        draw = ImageDraw.Draw(image)
        margin = size // 6
        draw.rounded_rectangle(
            (margin, margin, size - margin, size - margin), radius=size // 10, fill=_colour(rng, 0, 160)
        )
        letters = "".join(chr(int(c)) for c in rng.integers(65, 91, 3))
        draw.text((size // 3, size // 2 - 6), letters, fill=(255, 255, 255))
        return image
    if kind == "object":
        image = background(rng, size, int(rng.integers(0, 6)))
        draw = ImageDraw.Draw(image)
        body_top = int(size * rng.uniform(0.35, 0.5))
        colour = _colour(rng)
        draw.rectangle((size // 8, body_top, size - size // 8, body_top + size // 4), fill=colour)
        draw.rectangle((size // 4, body_top - size // 7, size - size // 3, body_top), fill=colour)
        for x in (size // 4, size - size // 4):
            wheel = size // 9
            draw.ellipse(
                (x - wheel, body_top + size // 4 - wheel, x + wheel, body_top + size // 4 + wheel),
                fill=(20, 20, 20),
            )
        return image
    raise ValueError(f"unknown non-face kind {kind!r}; use one of {NON_FACE_KINDS}")
