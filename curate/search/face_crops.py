"""The aligned face crops that dedup's cross-identity face check compares (:mod:`curate.search.conflicts`).

A row's crop is the faces stage's (``crop_path``, where it detected a face), else a face detected here with
the faces stage's defaults; :func:`inner_thumbnail` cuts the face out of a crop, without the padding that
shows the background, for the inner-face NCC.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from PIL import Image

from curate.search.verify import SIDE

logger = logging.getLogger(__name__)

INNER = 0.6  # the central fraction of an aligned crop compared by NCC (the face, without its padding)


def _detect_crop(path: str | None, aligner: Any) -> np.ndarray | None:
    """An aligned face crop detected here with ``aligner``, or None."""
    from curate.decode import load_rgb
    from curate.faces import aligned_crop_or_whole

    if not path:
        return None
    decoded = load_rgb(path)
    if decoded.image is None:
        return None
    crop, _ = aligned_crop_or_whole(aligner, np.asarray(decoded.image), False)
    return crop


def _aligner() -> Any:
    """The faces stage's default aligner (CenterFace, frontal and profile).

    No CNN retry: at 50,000 files the retry on CenterFace's misses (mostly drawn faces) was two thirds of
    dedup's time, and a pair without a face goes to review rather than being lost.
    """
    from curate.faces import make_aligner
    from curate.stages.faces import FacesConfig

    return make_aligner(FacesConfig())


def face_crops(table_rows: list[dict[str, Any]]) -> list[np.ndarray | None]:
    """Per row (dicts with ``path``, ``crop_path``, ``face_source``): its aligned face crop, or None."""
    crops: list[np.ndarray | None] = []
    aligner = None
    for row in table_rows:
        crop = None
        if row.get("crop_path") and row.get("face_source") == "detected":
            try:
                with Image.open(row["crop_path"]) as image:
                    crop = np.asarray(image.convert("RGB"))
            except OSError as exc:
                logger.warning("cannot read face crop %s (%s); detecting again", row["crop_path"], exc)
        if crop is None:
            if aligner is None:
                aligner = _aligner()
            crop = _detect_crop(row.get("path"), aligner)
        crops.append(crop)
    return crops


def inner_thumbnail(crop: np.ndarray) -> np.ndarray:
    """The central ``INNER`` part of an aligned crop as a SIDE x SIDE grey uint8 thumbnail."""
    h, w = crop.shape[:2]
    dy, dx = round(h * (1 - INNER) / 2), round(w * (1 - INNER) / 2)
    inner = Image.fromarray(np.ascontiguousarray(crop[dy : h - dy, dx : w - dx]))
    return np.asarray(inner.convert("L").resize((SIDE, SIDE), Image.Resampling.BOX))
