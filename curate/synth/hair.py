"""Head and facial hair of a synthetic person: shapes built around the head outline."""

from __future__ import annotations

import numpy as np
from PIL import ImageDraw

from curate.synth.geometry import FaceFrame, curve, ellipse, head_outline, thick_line
from curate.synth.params import IdentityParams


def _top_arc(identity: IdentityParams, lowest: float, grow: float) -> np.ndarray:
    """The grown outline from the left side over the crown to the right side, above ``lowest`` (<= 0)."""
    outline = head_outline(identity, n=72, grow=grow)
    t = np.linspace(0, 2 * np.pi, 72, endpoint=False)
    return outline[(t >= np.pi) & (outline[:, 1] < lowest)]


def _cap(identity: IdentityParams) -> np.ndarray:
    """The hair cap: crown down to the hairline, with sideburns down to the temples."""
    hairline = -identity.head_h * identity.hairline
    temple = identity.eye_y - 0.06
    arc = _top_arc(identity, temple, 1.07)
    edge_x = identity.head_w * 0.9
    if identity.hair_style == "fringe":
        brow = identity.eye_y - identity.eye_h / 2 - identity.brow_gap - 0.015
        x = np.linspace(edge_x, -edge_x, 15)
        y = brow - 0.02 * (np.arange(15) % 2)  # a jagged fringe just above the brows
        return np.concatenate([arc, np.stack([x, y], axis=1)])
    if identity.hair_style == "side_part":
        x = np.linspace(edge_x, -edge_x, 12)
        y = hairline + np.linspace(0.05, -0.01, 12) - 0.02 * np.sin(np.linspace(0, np.pi, 12))
        return np.concatenate([arc, np.stack([x, y], axis=1)])
    return np.concatenate([arc, curve(edge_x, -edge_x, hairline, -0.03)])


def draw_back_hair(draw: ImageDraw.ImageDraw, frame: FaceFrame, identity: IdentityParams) -> None:
    """Hair that falls behind the head and shoulders (long styles); drawn before the head."""
    if identity.hair_style != "long":
        return
    width = identity.head_w * 1.25
    bottom = identity.head_h * 1.15
    arc = _top_arc(identity, 0.0, 1.12)
    sides = np.array([[width, 0.0], [width * 1.05, bottom], [-width * 1.05, bottom], [-width, 0.0]])
    draw.polygon(frame.map(np.concatenate([arc, sides])), fill=_darker(identity.hair, 0.85))


def draw_front_hair(draw: ImageDraw.ImageDraw, frame: FaceFrame, identity: IdentityParams) -> None:
    """The hair cap and style details over the forehead; drawn after the face features."""
    style = identity.hair_style
    if style == "bald":
        for side in (-1, 1):
            tuft = ellipse(side * identity.head_w * 0.98, identity.eye_y - 0.05, 0.02, 0.05, n=14)
            draw.polygon(frame.map(tuft), fill=identity.hair)
        return
    cap = _cap(identity)
    draw.polygon(frame.map(cap), fill=identity.hair)
    if style == "curly":
        arc = _top_arc(identity, identity.eye_y - 0.04, 1.1)
        for x, y in arc[::3]:
            draw.polygon(frame.map(ellipse(x, y, 0.028, 0.028, n=12)), fill=_darker(identity.hair, 0.9))
    elif style == "bun":
        bun = ellipse(0.0, -identity.head_h * 1.12, identity.head_w * 0.35, identity.head_w * 0.3, n=20)
        draw.polygon(frame.map(bun), fill=identity.hair)
    elif style == "side_part":
        part = np.array(
            [
                [-identity.head_w * 0.35, -identity.head_h * 1.02],
                [-identity.head_w * 0.3, -identity.head_h * 0.7],
            ]
        )
        draw.line(frame.map(part), fill=_darker(identity.hair, 0.6), width=round(frame.length(0.006)))


def draw_facial_hair(draw: ImageDraw.ImageDraw, frame: FaceFrame, identity: IdentityParams) -> None:
    """Moustache, beard or goatee; drawn before the mouth so the lips stay on top."""
    colour = _darker(identity.hair, 0.9)
    mouth_y = max(identity.mouth_y, identity.eye_y + identity.nose_len + 0.04)
    half = identity.mouth_w / 2
    if identity.facial_hair == "moustache":
        line = curve(-half * 1.1, half * 1.1, mouth_y - 0.022, -0.01)
        draw.polygon(frame.map(thick_line(line, 0.012, 0.012), 0.07), fill=colour)
    elif identity.facial_hair == "beard":
        outline = head_outline(identity, n=72, grow=1.02)
        t = np.linspace(0, 2 * np.pi, 72, endpoint=False)
        lower = outline[(t < np.pi) & (outline[:, 1] > identity.eye_y + 0.05)]
        inner = curve(lower[-1, 0] * 0.8, lower[0, 0] * 0.8, mouth_y - 0.03, 0.05)
        draw.polygon(frame.map(np.concatenate([lower, inner])), fill=colour)
    elif identity.facial_hair == "goatee":
        chin = ellipse(0.0, mouth_y + 0.05, half * 0.55, 0.04, n=18)
        draw.polygon(frame.map(chin, 0.05), fill=colour)


def _darker(colour: tuple[int, int, int], factor: float) -> tuple[int, int, int]:
    return (int(colour[0] * factor), int(colour[1] * factor), int(colour[2] * factor))
