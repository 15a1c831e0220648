"""A folder tree of real CFP photos with planted cross-identity copies and look-alike compositions.

Used by the conflict tests and ``bench/conflicts.py``. Identities are CFP ids; every identity holds some of
its own frontal photos (the originals). Two kinds of cross-identity pairs are added:

* **planted copies** (real conflicts): a photo of identity A, resized, recompressed and cropped, filed
  under identity B as ``copy_<A>_<photo>.jpg``. The pair (A's original, B's copy) is one photo under two
  names: it must be flagged ``identity_conflict``.
* **look-alike compositions** (not conflicts): a template (team card, ID photo, press-conference lectern)
  drawn once, with the face of a DIFFERENT person pasted into the same place, one composition per
  person, filed under that person as ``tpl_<k>.jpg``. Every pair of compositions under two identities is
  two people in one layout (templates of one kind share it too): it must not be flagged.
* **namesakes** (not conflicts): ANOTHER photo of identity A filed under identity B as
  ``other_<A>_<photo>.jpg``: one person under two names, but two photos, so not the same photo.

Photos: originals ``01..originals``, composition faces the next four, namesakes the rest (so a namesake
never shows the face a composition shows).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

TEMPLATES = ("card", "id_photo", "lectern")


@dataclass
class ConflictSet:
    """The tree's root and its truth: pairs of paths relative to ``root``."""

    root: Path
    conflicts: list[tuple[str, str]] = field(default_factory=list)  # (original, planted copy)
    lookalikes: list[tuple[str, str]] = field(default_factory=list)  # compositions, two identities
    namesakes: list[tuple[str, str]] = field(default_factory=list)  # (A's photo, another photo of A under B)


def _cfp(data_dir: Path, identity: str, photo: int) -> Image.Image:
    path = data_dir / "cfp" / "Data" / "Images" / identity / "frontal" / f"{photo:02d}.jpg"
    return Image.open(path).convert("RGB")


def _copy(image: Image.Image, rng: np.random.Generator) -> bytes:
    """Resize (x0.5-0.8 or x1.3-1.8), crop 2-6 % of each side, JPEG quality 20-45."""
    w, h = image.size
    cut = rng.uniform(0.02, 0.06, 4)
    image = image.crop((round(w * cut[0]), round(h * cut[1]), w - round(w * cut[2]), h - round(h * cut[3])))
    factor = rng.uniform(0.5, 0.8) if rng.random() < 0.5 else rng.uniform(1.3, 1.8)
    image = image.resize((max(32, round(image.width * factor)), max(32, round(image.height * factor))))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=int(rng.integers(20, 46)))
    return buffer.getvalue()


def _face(image: Image.Image, size: tuple[int, int]) -> tuple[Image.Image, Image.Image]:
    """The central part of a loose CFP face crop resized to ``size``, with a soft elliptical mask."""
    w, h = image.size
    box = (round(w * 0.12), round(h * 0.08), round(w * 0.88), round(h * 0.92))
    face = image.crop(box).resize(size, Image.Resampling.BILINEAR)
    mask = Image.new("L", size, 0)
    ImageDraw.Draw(mask).ellipse((2, 2, size[0] - 3, size[1] - 3), fill=255)
    return face, mask.filter(ImageFilter.GaussianBlur(3))


def _template(kind: str, rng: np.random.Generator) -> tuple[Image.Image, tuple[int, int, int, int]]:
    """A drawn template and the face window (x0, y0, x1, y1) in it."""
    colour = tuple(int(c) for c in rng.integers(30, 220, 3))
    accent = tuple(int(c) for c in rng.integers(30, 220, 3))
    if kind == "card":
        canvas = Image.new("RGB", (240, 336), accent)
        draw = ImageDraw.Draw(canvas)
        draw.rectangle((12, 12, 227, 323), fill=colour)
        draw.rectangle((30, 40, 210, 250), fill=(235, 235, 225))
        draw.ellipse((180, 20, 225, 65), fill=accent, outline=(255, 255, 255), width=3)
        draw.rectangle((20, 262, 220, 312), fill=(250, 250, 250))
        return canvas, (55, 60, 185, 230)
    if kind == "id_photo":
        canvas = Image.new("RGB", (240, 300), (170, 200, 230))
        ImageDraw.Draw(canvas).polygon([(30, 300), (70, 230), (170, 230), (210, 300)], fill=(40, 40, 60))
        return canvas, (60, 50, 180, 215)
    canvas = Image.new("RGB", (400, 300), (25, 35, 90))
    draw = ImageDraw.Draw(canvas)
    for x in range(10, 400, 60):
        for y in range(10, 300, 60):
            draw.rectangle((x, y, x + 22, y + 14), fill=accent)
    draw.polygon([(140, 300), (160, 150), (240, 150), (260, 300)], fill=(20, 20, 25))
    draw.rectangle((130, 200, 270, 300), fill=(110, 70, 40))
    draw.ellipse((180, 225, 220, 265), fill=colour)
    draw.line((200, 200, 195, 165), fill=(10, 10, 10), width=3)
    return canvas, (160, 55, 240, 155)


def _compose(template: Image.Image, window: tuple[int, int, int, int], face: Image.Image) -> Image.Image:
    x0, y0, x1, y1 = window
    patch, mask = _face(face, (x1 - x0, y1 - y0))
    out = template.copy()
    out.paste(patch, (x0, y0), mask)
    return out


def build(
    data_dir: Path,
    root: Path,
    identities: list[str],
    originals: int = 3,
    copies: int = 6,
    templates: int = 3,
    people_per_template: int = 2,
    namesakes: int = 0,
    seed: int = 0,
    same_photo: list[tuple[str, str]] | None = None,
) -> ConflictSet:
    """Write the tree under ``root`` (see the module docstring) and return its truth.

    ``same_photo`` lists CFP photos that are one photo (``"016/frontal/01"`` pairs, as in
    ``bench/neardup.py``); a namesake is never such a twin of one of its identity's originals.
    """
    twins = {frozenset(pair) for pair in same_photo or []}
    rng = np.random.default_rng(seed)
    result = ConflictSet(root)
    for identity in identities:
        (root / identity).mkdir(parents=True, exist_ok=True)
        for photo in range(1, originals + 1):
            _cfp(data_dir, identity, photo).save(root / identity / f"{photo:02d}.jpg", quality=95)
    for _ in range(copies):
        source, target = rng.choice(len(identities), 2, replace=False)
        photo = int(rng.integers(1, originals + 1))
        name = f"{identities[target]}/copy_{identities[source]}_{photo:02d}.jpg"
        (root / name).write_bytes(_copy(_cfp(data_dir, identities[source], photo), rng))
        result.conflicts.append((f"{identities[source]}/{photo:02d}.jpg", name))
    compositions = []
    for k in range(templates):
        template, window = _template(TEMPLATES[k % len(TEMPLATES)], rng)
        for person in rng.choice(len(identities), people_per_template, replace=False):
            face = _cfp(data_dir, identities[person], int(rng.integers(originals + 1, originals + 5)))
            name = f"{identities[person]}/tpl_{k:03d}.jpg"
            _compose(template, window, face).save(root / name, quality=90)
            compositions.append(name)
    result.lookalikes = [
        (a, b) for i, a in enumerate(compositions) for b in compositions[i + 1 :] if a[:3] != b[:3]
    ]
    used: set[str] = set()
    while len(result.namesakes) < namesakes * originals:
        source, target = rng.choice(len(identities), 2, replace=False)
        photo = int(rng.integers(originals + 5, 11))  # never a photo a composition may use
        mine = [f"{identities[source]}/frontal/{k:02d}" for k in (photo, *range(1, originals + 1))]
        if mine[0] in used or any(frozenset((mine[0], other)) in twins for other in mine[1:]):
            continue  # one photo filed twice would be a real conflict, and a twin of an original too
        used.add(mine[0])
        name = f"{identities[target]}/other_{identities[source]}_{photo:02d}.jpg"
        _cfp(data_dir, identities[source], photo).save(root / name, quality=90)
        result.namesakes += [(f"{identities[source]}/{k:02d}.jpg", name) for k in range(1, originals + 1)]
    return result
