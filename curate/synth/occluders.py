"""Things in front of a face in a web photo: glasses, a hat, a hand."""

from __future__ import annotations

import numpy as np
from PIL import ImageDraw

from curate.synth.geometry import FaceFrame, ellipse, thick_line
from curate.synth.params import RGB, IdentityParams


def _random_colour(rng: np.random.Generator, low: int = 0, high: int = 255) -> RGB:
    values = rng.integers(low, high, 3)
    return (int(values[0]), int(values[1]), int(values[2]))


def draw_glasses(
    draw: ImageDraw.ImageDraw,
    frame: FaceFrame,
    identity: IdentityParams,
    dark: bool,
    rng: np.random.Generator,
) -> None:
    """Clear frames or (``dark``) sunglasses over both eyes, with bridge and temples."""
    colour = _random_colour(rng, 0, 120)
    width = round(frame.length(0.007))
    rx, ry = identity.eye_w * 0.85, identity.eye_h * 1.5
    inner_x = identity.eye_dx - rx
    for side in (-1, 1):
        rim = ellipse(side * identity.eye_dx, identity.eye_y, rx, ry, n=24)
        points = frame.map(rim, 0.08)
        if dark:
            draw.polygon(points, fill=(25, 25, 30))
        draw.line([*points, points[0]], fill=colour, width=width)
        temple = np.array(
            [[side * (identity.eye_dx + rx), identity.eye_y], [side * identity.head_w, identity.eye_y + 0.01]]
        )
        draw.line(frame.map(temple, np.array([0.08, 0.0])), fill=colour, width=width)
    bridge = np.array([[-inner_x, identity.eye_y - 0.005], [inner_x, identity.eye_y - 0.005]])
    draw.line(frame.map(bridge, 0.09), fill=colour, width=width)


def draw_hat(
    draw: ImageDraw.ImageDraw, frame: FaceFrame, identity: IdentityParams, rng: np.random.Generator
) -> None:
    """A cap or brimmed hat hiding the hair and the top of the forehead."""
    colour = _random_colour(rng)
    brim_y = -identity.head_h * rng.uniform(0.45, 0.65)
    crown = ellipse(
        0.0, brim_y, identity.head_w * 1.08, identity.head_h * 0.75, n=32, start=np.pi, end=2 * np.pi
    )
    band = np.array([[identity.head_w * 1.08, brim_y], [-identity.head_w * 1.08, brim_y]])
    draw.polygon(frame.map(np.concatenate([crown, band])), fill=colour)
    brim_w = identity.head_w * (1.6 if rng.uniform() < 0.5 else 1.25)
    brim = ellipse(0.0, brim_y, brim_w, 0.025, n=24)
    draw.polygon(frame.map(brim, 0.03), fill=tuple(int(c * 0.75) for c in colour))


def draw_hand(
    draw: ImageDraw.ImageDraw, frame: FaceFrame, identity: IdentityParams, rng: np.random.Generator
) -> None:
    """A hand-like blob (palm and four fingers) over the lower cheek and chin on one side."""
    side = 1 if rng.uniform() < 0.5 else -1
    skin = np.clip(np.array(identity.skin) * rng.uniform(0.9, 1.05), 0, 255)
    colour = (int(skin[0]), int(skin[1]), int(skin[2]))
    edge = (int(skin[0] * 0.75), int(skin[1] * 0.75), int(skin[2] * 0.75))
    cx = side * identity.head_w * rng.uniform(0.3, 0.7)
    cy = identity.head_h * rng.uniform(0.55, 0.9)
    palm = ellipse(cx, cy, 0.075, 0.09, n=24)
    draw.polygon(frame.map(palm, 0.1), fill=colour, outline=edge)
    tilt = -side * rng.uniform(0.2, 0.6)
    for k in range(4):
        base_x = cx + (k - 1.5) * 0.035
        direction = np.array([np.sin(tilt), -np.cos(tilt)])
        finger = np.stack(
            [np.array([base_x, cy - 0.05]) + direction * s for s in np.linspace(0, 0.1 + 0.02 * (k % 3), 6)]
        )
        draw.polygon(frame.map(thick_line(finger, 0.03, 0.024), 0.1), fill=colour, outline=edge)
