"""Training images from WebDataset tar shards (what ``curate export --format webdataset`` writes).

``curate train --images DIR`` reads the shards when ``DIR`` holds ``*.tar`` files (or is one). Each sample is
an image (``png``/``jpg``/... entry) plus a ``json`` entry whose ``identity_id`` names its class, as the
export writes them. Samples are read with the ``webdataset`` library into memory, encoded: a face crop is
a few kilobytes, so a million-image set fits in a few gigabytes; the training loader decodes each item as
it does a file.
"""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import webdataset as wds

from curate.errors import CurateError
from curate.train.data import IMAGE_SUFFIXES, LabeledImages

logger = logging.getLogger(__name__)

IMAGE_KEYS = tuple(suffix.lstrip(".") for suffix in sorted(IMAGE_SUFFIXES))


class SampleImage(io.BytesIO):
    """An encoded image held in memory; reads like a file, prints as ``<shard>#<key>``."""

    def __init__(self, data: bytes, where: str) -> None:
        super().__init__(data)
        self.where = where

    def __str__(self) -> str:
        return self.where

    __repr__ = __str__


def shard_files(path: Path) -> list[Path]:
    """The ``.tar`` shards at ``path`` (a shard, or a folder of them), sorted; empty when there are none."""
    path = Path(path)
    if path.is_file() and path.suffix == ".tar":
        return [path]
    if path.is_dir():
        return sorted(path.glob("*.tar"))
    return []


def is_webdataset(path: Path) -> bool:
    """True when ``path`` is a tar shard or a folder holding some."""
    return bool(shard_files(path))


def _identity(sample: dict, where: str) -> str:
    try:
        identity = json.loads(sample["json"])["identity_id"]
    except (KeyError, ValueError, TypeError) as error:
        raise CurateError(
            f"{where}: no JSON with an identity_id; export the shards with curate export"
        ) from error
    if not identity:
        raise CurateError(f"{where}: empty identity_id in its JSON")
    return str(identity)


def from_shards(path: Path) -> LabeledImages:
    """Every sample of the shards at ``path`` with its identity label."""
    shards = shard_files(path)
    if not shards:
        raise CurateError(f"no .tar shards at {path}; give the webdataset folder of an export")
    items: list[tuple[SampleImage, str]] = []
    dataset = wds.WebDataset([str(s) for s in shards], shardshuffle=False, empty_check=False)
    for sample in dataset:
        where = f"{Path(sample['__url__']).name}#{sample['__key__']}"
        image_key = next((k for k in IMAGE_KEYS if k in sample), None)
        if image_key is None:
            raise CurateError(f"{where}: no image entry ({', '.join(IMAGE_KEYS)})")
        items.append((SampleImage(sample[image_key], where), _identity(sample, where)))
    if not items:
        raise CurateError(f"the shards at {path} hold no samples")
    logger.info("read %d samples from %d shards at %s", len(items), len(shards), path)
    return LabeledImages.from_pairs(items)  # type: ignore[arg-type]
