"""Shapes as point arrays in face units, and the pose that maps them onto the canvas."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from curate.synth.params import IdentityParams, Nuisance

Points = list[tuple[float, float]]


@dataclass(frozen=True)
class FaceFrame:
    """Maps face-unit points to canvas pixels: yaw, then scale, rotation and translation.

    Yaw is faked in 2D: a point moves sideways in proportion to its ``depth`` (how far it sticks out of the
    face plane: 0 for the outline, most for the nose tip) and the whole face narrows a little.
    """

    canvas: int  # canvas side, pixels
    angle: float  # degrees
    yaw: float
    scale: float
    centre: tuple[float, float]  # face centre in face units (canvas centre is (0.5, 0.5))

    @classmethod
    def from_nuisance(cls, canvas: int, nuisance: Nuisance) -> FaceFrame:
        """The frame for one photo."""
        centre = (0.5 + nuisance.shift[0], 0.52 + nuisance.shift[1])
        return cls(canvas, nuisance.angle, nuisance.yaw, nuisance.scale, centre)

    def map(self, points: np.ndarray, depth: float = 0.0) -> Points:
        """Canvas pixel coordinates of ``points`` (shape ``(n, 2)``) lying ``depth`` out of the face plane."""
        x = points[:, 0] * (1 - 0.18 * abs(self.yaw)) + self.yaw * depth
        y = points[:, 1]
        theta = np.deg2rad(self.angle)
        cos, sin = np.cos(theta), np.sin(theta)
        xr = (x * cos - y * sin) * self.scale + self.centre[0]
        yr = (x * sin + y * cos) * self.scale + self.centre[1]
        return [(float(a), float(b)) for a, b in zip(xr * self.canvas, yr * self.canvas, strict=True)]

    def length(self, value: float) -> float:
        """A face-unit length in canvas pixels (for line widths)."""
        return max(1.0, value * self.scale * self.canvas)


def ellipse(
    cx: float, cy: float, rx: float, ry: float, n: int = 28, start: float = 0.0, end: float = 2 * np.pi
) -> np.ndarray:
    """Points on an ellipse (or an arc of it from ``start`` to ``end`` radians)."""
    t = np.linspace(start, end, n, endpoint=end - start < 2 * np.pi)
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1)


def head_outline(identity: IdentityParams, n: int = 64, grow: float = 1.0) -> np.ndarray:
    """The head outline: a superellipse, squarer on top, tapering to the chin; ``grow`` scales it."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    cos, sin = np.cos(t), np.sin(t)
    lower = sin > 0
    exponent = np.where(lower, identity.jaw_round, identity.top_round)
    x = identity.head_w * np.sign(cos) * np.abs(cos) ** (2 / exponent)
    y = identity.head_h * np.sign(sin) * np.abs(sin) ** (2 / exponent)
    x = x * np.where(lower, 1 - identity.chin_taper * np.clip(y / identity.head_h, 0, 1) ** 2, 1.0)
    return np.stack([x, y], axis=1) * grow


def curve(x0: float, x1: float, y: float, bend: float, n: int = 12) -> np.ndarray:
    """A parabola from ``x0`` to ``x1`` at height ``y``; positive ``bend`` pulls its middle down."""
    x = np.linspace(x0, x1, n)
    mid = (x0 + x1) / 2
    half = max(abs(x1 - x0) / 2, 1e-6)
    return np.stack([x, y + bend * (1 - ((x - mid) / half) ** 2)], axis=1)


def thick_line(points: np.ndarray, start_width: float, end_width: float) -> np.ndarray:
    """A polygon around a polyline, its width going linearly from ``start_width`` to ``end_width``."""
    direction = np.gradient(points, axis=0)
    normal = np.stack([-direction[:, 1], direction[:, 0]], axis=1)
    normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-9)
    width = np.linspace(start_width, end_width, len(points))[:, None] / 2
    return np.concatenate([points + normal * width, (points - normal * width)[::-1]])
