"""Thumbnails and contact sheets for review, and the rule for which files may be shown.

A file is shown only when it belongs to the run: its real path (symlinks resolved) lies inside the workdir
(aligned crops, downloads) or inside the folder the ``collect`` stage read. A symlink that leads elsewhere is
refused, like any path outside those roots. Thumbnails are decoded by the safe decoder and cached by
image_id under ``<workdir>/_review/thumbs``.
"""

from __future__ import annotations

import io
import json
import logging
import math
import os
from collections.abc import Iterable
from pathlib import Path

import pandas as pd
from PIL import Image, ImageDraw

from curate import storage
from curate.decode import load_rgb
from curate.review.source import review_dir
from curate.storage import ContentStore, atomic_path

logger = logging.getLogger(__name__)

THUMB_PX = 160
SHEET_COLUMNS = 10
LABEL_PX = 28


def allowed_roots(workdir: Path, extra: Iterable[Path] = ()) -> list[Path]:
    """Folders whose files review may show: the workdir, the collected folder, and ``extra``."""
    roots = [Path(workdir), *extra]
    config = storage.config_path(workdir, "collect")
    if config.exists():
        source = json.loads(config.read_text()).get("config", {}).get("source")
        if source:
            roots.append(Path(source))
    return [Path(os.path.realpath(root)) for root in roots]


def safe_path(path: str | None, roots: list[Path]) -> Path | None:
    """``path`` resolved, if it is a regular file inside one of ``roots``; otherwise None."""
    if not path:
        return None
    real = Path(os.path.realpath(path))
    if not any(real.is_relative_to(root) for root in roots) or not real.is_file():
        return None
    return real


def thumbnail_store(workdir: Path) -> ContentStore:
    """The cache of thumbnails, keyed by the image's ``image_id``."""
    return ContentStore(review_dir(workdir) / "thumbs")


def thumbnail_path(workdir: Path, image_id: str) -> Path:
    """Where the cached thumbnail of an image lives."""
    return thumbnail_store(workdir).path_for(image_id, ".jpg")


def thumbnail(workdir: Path, image_id: str, path: Path) -> Path | None:
    """The cached JPEG thumbnail of ``path`` (made on first use); None when the file does not decode."""
    target = thumbnail_path(workdir, image_id)
    if target.exists():
        return target
    decoded = load_rgb(path)
    if decoded.image is None:
        logger.warning("cannot show %s: %s", path, decoded.reason)
        return None
    image = decoded.image
    image.thumbnail((THUMB_PX, THUMB_PX))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85)
    return thumbnail_store(workdir).put(buffer.getvalue(), ".jpg", key=image_id)


def contact_sheet(workdir: Path, block: pd.DataFrame, roots: list[Path], out: Path) -> None:
    """A PNG grid of one block: each thumbnail with its position, score and flags."""
    cell = THUMB_PX + LABEL_PX
    rows = max(1, math.ceil(len(block) / SHEET_COLUMNS))
    sheet = Image.new("RGB", (SHEET_COLUMNS * THUMB_PX, rows * cell), "white")
    draw = ImageDraw.Draw(sheet)
    for k, item in enumerate(block.itertuples(index=False)):
        x, y = (k % SHEET_COLUMNS) * THUMB_PX, (k // SHEET_COLUMNS) * cell
        source = safe_path(item.image_path, roots)
        thumb = thumbnail(workdir, item.image_id, source) if source else None
        if thumb is not None:
            with Image.open(thumb) as image:
                sheet.paste(image, (x + (THUMB_PX - image.width) // 2, y + (THUMB_PX - image.height) // 2))
        else:
            draw.rectangle((x + 4, y + 4, x + THUMB_PX - 4, y + THUMB_PX - 4), outline="red")
        score = "-" if pd.isna(item.rank_score) else f"{item.rank_score:.2f}"
        draw.text((x + 3, y + THUMB_PX + 1), f"{item.position} s={score}", fill="black")
        draw.text((x + 3, y + THUMB_PX + 13), str(item.flags)[:26], fill="firebrick")
    with atomic_path(out) as tmp:
        sheet.save(tmp, "PNG")
