"""What makes a synthetic person themselves (identity) and what changes from photo to photo (nuisance).

Lengths are in face units: the canvas is 1 wide, the face centre is the origin, y grows downwards.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RGB = tuple[int, int, int]

HAIR_STYLES = ("bald", "short", "side_part", "fringe", "long", "curly", "bun")
FACIAL_HAIR = ("none", "moustache", "beard", "goatee")
_SKIN_LIGHT = np.array([244, 214, 190])
_SKIN_DARK = np.array([92, 58, 40])
_HAIR_PALETTE = np.array(
    [
        [20, 16, 14],
        [58, 38, 24],
        [110, 72, 40],
        [170, 120, 70],
        [220, 190, 120],
        [150, 60, 30],
        [128, 128, 128],
    ]
)
_IRIS_PALETTE = np.array([[60, 40, 25], [90, 60, 30], [50, 90, 150], [70, 120, 80], [110, 110, 110]])


@dataclass(frozen=True)
class IdentityParams:
    """Fixed traits of one synthetic person."""

    head_w: float  # half-width of the head
    head_h: float  # half-height of the head
    top_round: float  # superellipse exponent of the skull (higher = squarer)
    jaw_round: float  # superellipse exponent of the jaw (lower = more pointed chin)
    chin_taper: float  # narrowing of the lower face towards the chin, 0..1
    skin: RGB
    hair: RGB
    hair_style: str  # one of HAIR_STYLES
    hairline: float  # how far down the forehead the hair reaches, fraction of head_h
    eye_dx: float  # half the distance between the eye centres
    eye_y: float
    eye_w: float
    eye_h: float
    iris: RGB
    brow_gap: float  # brow height above the eye
    brow_thick: float
    brow_slant: float  # outer end higher (positive) or lower (negative)
    nose_len: float
    nose_w: float
    nose_style: int  # 0: line and nostrils, 1: triangle shadow, 2: round tip
    mouth_y: float
    mouth_w: float
    lip_thick: float
    lips: RGB
    ear_size: float
    facial_hair: str  # one of FACIAL_HAIR
    mole: tuple[float, float] | None  # position of a mole, or none
    glasses_habit: float  # chance of wearing glasses in a photo


@dataclass(frozen=True)
class Nuisance:
    """Everything about one photo that is not the person."""

    angle: float  # in-plane rotation, degrees
    yaw: float  # -1..1, turn of the head: features shift sideways, far side narrows
    scale: float
    shift: tuple[float, float]  # face centre offset from the canvas centre
    light_angle: float  # radians, direction the light comes from
    light_strength: float  # 0 = flat, 0.6 = strong side light
    gains: tuple[float, float, float]  # colour cast times overall brightness
    smile: float  # -0.5 (frown) .. 1 (broad smile)
    mouth_open: float  # 0 closed .. 1 wide open
    brow_raise: float
    eye_open: float  # 0 closed (blink) .. 1 open
    glasses: int  # 0 none, 1 clear frames, 2 sunglasses
    hat: bool
    hand: bool
    clothing: RGB
    clutter: int  # number of background shapes
    blur: float  # Gaussian blur radius in output pixels
    jpeg_quality: int


def _colour(base: np.ndarray, rng: np.random.Generator, spread: float) -> RGB:
    values = np.clip(base + rng.normal(0, spread, 3), 0, 255)
    return (int(values[0]), int(values[1]), int(values[2]))


def sample_identity(rng: np.random.Generator) -> IdentityParams:
    """Draw a new random person."""
    tone = rng.uniform(0, 1)
    skin = _SKIN_LIGHT * (1 - tone) + _SKIN_DARK * tone
    hair = _HAIR_PALETTE[rng.integers(len(_HAIR_PALETTE))]
    head_w = rng.uniform(0.21, 0.27)
    has_mole = rng.uniform() < 0.35
    return IdentityParams(
        head_w=head_w,
        head_h=head_w * rng.uniform(1.15, 1.45),
        top_round=rng.uniform(2.0, 3.2),
        jaw_round=rng.uniform(1.5, 2.8),
        chin_taper=rng.uniform(0.0, 0.45),
        skin=_colour(skin, rng, 10),
        hair=_colour(hair, rng, 12),
        hair_style=str(rng.choice(HAIR_STYLES)),
        hairline=rng.uniform(0.45, 0.75),
        eye_dx=head_w * rng.uniform(0.32, 0.48),
        eye_y=rng.uniform(-0.06, 0.01),
        eye_w=head_w * rng.uniform(0.16, 0.26),
        eye_h=head_w * rng.uniform(0.07, 0.13),
        iris=_colour(_IRIS_PALETTE[rng.integers(len(_IRIS_PALETTE))], rng, 10),
        brow_gap=rng.uniform(0.025, 0.05),
        brow_thick=rng.uniform(0.008, 0.022),
        brow_slant=rng.uniform(-0.025, 0.025),
        nose_len=rng.uniform(0.07, 0.13),
        nose_w=rng.uniform(0.025, 0.055),
        nose_style=int(rng.integers(3)),
        mouth_y=rng.uniform(0.13, 0.2),
        mouth_w=head_w * rng.uniform(0.3, 0.5),
        lip_thick=rng.uniform(0.006, 0.02),
        lips=_colour(np.array([180, 90, 90]) * (1 - 0.5 * tone), rng, 15),
        ear_size=rng.uniform(0.04, 0.07),
        facial_hair=str(rng.choice(FACIAL_HAIR, p=[0.65, 0.12, 0.15, 0.08])),
        mole=(float(rng.uniform(-0.15, 0.15)), float(rng.uniform(0.0, 0.18))) if has_mole else None,
        glasses_habit=float(rng.choice([0.03, 0.15, 0.6], p=[0.6, 0.25, 0.15])),
    )


def sample_nuisance(rng: np.random.Generator, identity: IdentityParams, strength: float = 1.0) -> Nuisance:
    """Draw the photo conditions for one image of ``identity``; ``strength`` 0 gives a neutral studio shot."""
    s = strength
    gain = 1 + s * rng.normal(0, 0.08)
    cast = 1 + s * rng.normal(0, 0.04, 3)
    glasses = 0
    if rng.uniform() < identity.glasses_habit * min(1.0, s):
        glasses = 2 if rng.uniform() < 0.3 else 1
    return Nuisance(
        angle=float(np.clip(rng.normal(0, 6 * s), -15, 15)),
        yaw=float(np.clip(rng.normal(0, 0.35 * s), -0.8, 0.8)),
        scale=float(np.exp(rng.normal(0, 0.07 * s))),
        shift=(float(rng.normal(0, 0.025 * s)), float(rng.normal(0, 0.025 * s))),
        light_angle=float(rng.uniform(0, 2 * np.pi)),
        light_strength=float(s * rng.uniform(0, 0.35)),
        gains=tuple(float(v) for v in np.clip(gain * cast, 0.6, 1.4)),  # type: ignore[arg-type]
        smile=float(np.clip(s * rng.normal(0.2, 0.4), -0.5, 1.0)),
        mouth_open=float(s * rng.uniform(0, 1)) if rng.uniform() < 0.3 else 0.0,
        brow_raise=float(s * rng.normal(0, 0.4)),
        eye_open=0.1 if rng.uniform() < 0.05 * s else float(1 - s * rng.uniform(0, 0.35)),
        glasses=glasses,
        hat=bool(rng.uniform() < 0.12 * s),
        hand=bool(rng.uniform() < 0.08 * s),
        clothing=_colour(rng.uniform(30, 225, 3), rng, 0),
        clutter=int(rng.integers(0, 1 + round(24 * s))),
        blur=float(s * rng.choice([0.0, rng.uniform(0.3, 1.4)], p=[0.5, 0.5])),
        jpeg_quality=int(rng.integers(60, 96)),
    )
