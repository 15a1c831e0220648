"""Draw one synthetic face photo: a person (:class:`IdentityParams`) in a photo setting (:class:`Nuisance`).

The picture is drawn at twice its size with Pillow's ImageDraw, every shape as a polygon mapped through a
:class:`FaceFrame` (so pose moves all of them together), then lit, shrunk and blurred.
"""

from __future__ import annotations

import logging

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from curate.synth.geometry import FaceFrame, curve, ellipse, head_outline, thick_line
from curate.synth.hair import draw_back_hair, draw_facial_hair, draw_front_hair
from curate.synth.occluders import draw_glasses, draw_hand, draw_hat
from curate.synth.params import RGB, IdentityParams, Nuisance, sample_nuisance
from curate.synth.scene import apply_photometric, background
from curate.synth.variants import encode_jpeg

logger = logging.getLogger(__name__)

SUPERSAMPLE = 2
"""The face is drawn this many times larger, then shrunk, for smooth edges."""


def shade(colour: RGB, factor: float) -> RGB:
    """``colour`` darkened (factor < 1) or lightened (factor > 1)."""
    return tuple(int(np.clip(c * factor, 0, 255)) for c in colour)  # type: ignore[return-value]


def draw_face(
    identity_params: IdentityParams, nuisance: Nuisance, rng: np.random.Generator, size: int
) -> Image.Image:
    """Return an RGB ``size`` x ``size`` photo of the person ``identity_params`` under ``nuisance``.

    ``rng`` decides the details that belong to neither (background shapes, colours of glasses and hats), so
    the same three inputs always give the same pixels.
    """
    identity = identity_params
    canvas = size * SUPERSAMPLE
    image = background(rng, canvas, nuisance.clutter)
    draw = ImageDraw.Draw(image)
    frame = FaceFrame.from_nuisance(canvas, nuisance)
    draw_back_hair(draw, frame, identity)
    _draw_body(draw, frame, identity, nuisance)
    _draw_ears(draw, frame, identity)
    draw.polygon(frame.map(head_outline(identity)), fill=identity.skin)
    _draw_cheek_shadow(draw, frame, identity)
    draw_facial_hair(draw, frame, identity)
    _draw_eyes(draw, frame, identity, nuisance)
    _draw_brows(draw, frame, identity, nuisance)
    _draw_nose(draw, frame, identity)
    _draw_mouth(draw, frame, identity, nuisance)
    if identity.mole is not None:
        draw.polygon(frame.map(ellipse(*identity.mole, 0.008, 0.008, n=10), 0.04), fill=(70, 45, 35))
    if nuisance.hat:
        draw_hat(draw, frame, identity, rng)
    else:
        draw_front_hair(draw, frame, identity)
    if nuisance.glasses:
        draw_glasses(draw, frame, identity, dark=nuisance.glasses == 2, rng=rng)
    if nuisance.hand:
        draw_hand(draw, frame, identity, rng)
    image = image.reduce(SUPERSAMPLE)
    image = apply_photometric(image, nuisance.light_angle, nuisance.light_strength, nuisance.gains)
    if nuisance.blur > 0:
        image = image.filter(ImageFilter.GaussianBlur(nuisance.blur))
    return image


def photo_jpeg(person: IdentityParams, strength: float, size: int, rng: np.random.Generator) -> bytes:
    """One photo of ``person`` under fresh conditions of ``strength``, as JPEG at the photo's own quality."""
    nuisance = sample_nuisance(rng, person, strength)
    return encode_jpeg(draw_face(person, nuisance, rng, size), nuisance.jpeg_quality)


def _draw_body(
    draw: ImageDraw.ImageDraw, frame: FaceFrame, identity: IdentityParams, nuisance: Nuisance
) -> None:
    neck_w = identity.head_w * 0.55
    neck = np.array(
        [[-neck_w, 0.0], [neck_w, 0.0], [neck_w, identity.head_h + 0.12], [-neck_w, identity.head_h + 0.12]]
    )
    draw.polygon(frame.map(neck), fill=shade(identity.skin, 0.82))
    shoulders = ellipse(0.0, identity.head_h + 0.3, identity.head_w * 2.4, 0.22, n=40)
    draw.polygon(frame.map(shoulders), fill=nuisance.clothing)
    collar = curve(-neck_w, neck_w, identity.head_h + 0.1, 0.05)
    draw.polygon(frame.map(thick_line(collar, 0.02, 0.02)), fill=shade(nuisance.clothing, 0.7))


def _draw_ears(draw: ImageDraw.ImageDraw, frame: FaceFrame, identity: IdentityParams) -> None:
    for side in (-1, 1):
        centre_x = side * identity.head_w * 0.97
        ear = ellipse(centre_x, identity.eye_y + 0.03, identity.ear_size * 0.6, identity.ear_size, n=18)
        draw.polygon(frame.map(ear, -0.02 * side), fill=shade(identity.skin, 0.9))


def _draw_cheek_shadow(draw: ImageDraw.ImageDraw, frame: FaceFrame, identity: IdentityParams) -> None:
    """A darker band on the side turned away from the camera, so yaw shows in the shading too."""
    if abs(frame.yaw) < 0.1:
        return
    side = -np.sign(frame.yaw)
    outline = head_outline(identity, n=64)
    band = outline[(outline[:, 0] * side) > identity.head_w * (1 - 0.5 * abs(frame.yaw))]
    if len(band) >= 3:
        draw.polygon(frame.map(band), fill=shade(identity.skin, 0.86))


def _draw_eyes(
    draw: ImageDraw.ImageDraw, frame: FaceFrame, identity: IdentityParams, nuisance: Nuisance
) -> None:
    lid = shade(identity.skin, 0.45)
    line_w = round(frame.length(0.006))
    for side in (-1, 1):
        cx, cy = side * identity.eye_dx, identity.eye_y
        half_h = identity.eye_h / 2 * nuisance.eye_open
        if nuisance.eye_open < 0.2:
            closed = curve(cx - identity.eye_w / 2, cx + identity.eye_w / 2, cy, 0.004)
            draw.line(frame.map(closed, 0.05), fill=lid, width=line_w)
            continue
        draw.polygon(frame.map(ellipse(cx, cy, identity.eye_w / 2, half_h), 0.05), fill=(242, 240, 236))
        iris_r = min(half_h * 1.05, identity.eye_w * 0.22)
        gaze = cx + 0.012 * nuisance.yaw
        draw.polygon(frame.map(ellipse(gaze, cy, iris_r, iris_r, n=16), 0.06), fill=identity.iris)
        draw.polygon(
            frame.map(ellipse(gaze, cy, iris_r * 0.45, iris_r * 0.45, n=12), 0.06), fill=(15, 12, 12)
        )
        upper = ellipse(cx, cy, identity.eye_w / 2, half_h, n=14, start=np.pi, end=2 * np.pi)
        draw.line(frame.map(upper, 0.05), fill=lid, width=line_w)


def _draw_brows(
    draw: ImageDraw.ImageDraw, frame: FaceFrame, identity: IdentityParams, nuisance: Nuisance
) -> None:
    colour = shade(identity.hair, 0.8)
    y = identity.eye_y - identity.eye_h / 2 - identity.brow_gap - 0.012 * nuisance.brow_raise
    for side in (-1, 1):
        inner = side * (identity.eye_dx - identity.eye_w * 0.6)
        outer = side * (identity.eye_dx + identity.eye_w * 0.7)
        x = np.linspace(inner, outer, 10)
        t = np.linspace(0, 1, 10)
        arch = -0.012 * np.sin(np.pi * t) - identity.brow_slant * t
        points = np.stack([x, y + arch], axis=1)
        polygon = thick_line(points, identity.brow_thick * 1.3, identity.brow_thick * 0.6)
        draw.polygon(frame.map(polygon, 0.06), fill=colour)


def _draw_nose(draw: ImageDraw.ImageDraw, frame: FaceFrame, identity: IdentityParams) -> None:
    top = identity.eye_y + 0.01
    tip = identity.eye_y + identity.nose_len
    dark = shade(identity.skin, 0.62)
    width = identity.nose_w
    if identity.nose_style == 1:
        wedge = np.array([[0.0, top], [width, tip], [-width * 0.3, tip + 0.005]])
        draw.polygon(frame.map(wedge, np.array([0.04, 0.12, 0.12])), fill=shade(identity.skin, 0.82))
    elif identity.nose_style == 2:
        draw.polygon(
            frame.map(ellipse(0.0, tip - 0.01, width * 0.7, 0.02, n=16), 0.12), fill=shade(identity.skin, 0.9)
        )
    else:
        ridge = np.array([[width * 0.25, top], [width * 0.45, tip - 0.01], [width * 0.1, tip]])
        draw.line(frame.map(ridge, np.array([0.05, 0.11, 0.12])), fill=dark, width=round(frame.length(0.005)))
    for side in (-1, 1):
        nostril = ellipse(side * width * 0.45, tip, width * 0.22, 0.007, n=10)
        draw.polygon(frame.map(nostril, 0.1), fill=dark)


def _draw_mouth(
    draw: ImageDraw.ImageDraw, frame: FaceFrame, identity: IdentityParams, nuisance: Nuisance
) -> None:
    y = max(identity.mouth_y, identity.eye_y + identity.nose_len + 0.04)
    half = identity.mouth_w / 2 * (1 + 0.15 * nuisance.smile)
    bend = 0.022 * nuisance.smile
    upper = curve(-half, half, y, bend)
    lower = curve(-half, half, y, bend + 0.045 * nuisance.mouth_open)
    if nuisance.mouth_open > 0.05:
        opening = np.concatenate([upper, lower[::-1]])
        draw.polygon(frame.map(opening, 0.06), fill=(70, 22, 25))
        teeth = curve(-half * 0.7, half * 0.7, y + bend * 0.5, bend * 0.5)
        draw.polygon(frame.map(thick_line(teeth, 0.008, 0.008), 0.06), fill=(235, 230, 220))
    upper_lip = thick_line(
        upper - np.array([0.0, identity.lip_thick * 0.3]), identity.lip_thick * 0.6, identity.lip_thick * 0.6
    )
    draw.polygon(frame.map(upper_lip, 0.06), fill=identity.lips)
    lower_lip = thick_line(
        lower + np.array([0.0, identity.lip_thick * 0.5]), identity.lip_thick, identity.lip_thick
    )
    draw.polygon(frame.map(lower_lip, 0.06), fill=shade(identity.lips, 1.08))
    draw.line(frame.map(upper, 0.06), fill=shade(identity.lips, 0.55), width=round(frame.length(0.004)))
