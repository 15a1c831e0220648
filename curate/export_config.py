"""Settings of ``curate export`` (:mod:`curate.export`), outside that package so they load light."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from curate.errors import ConfigError


class ImageKind(StrEnum):
    """Which picture of a row goes into the export."""

    CROPS = "crops"  # the aligned face crop the faces stage wrote (what training reads)
    ORIGINALS = "originals"  # the collected file as it was downloaded or found


class ExportFormat(StrEnum):
    """How the images are laid out (the Parquet manifest and the list are always written)."""

    IMAGEFOLDER = "imagefolder"
    WEBDATASET = "webdataset"


@dataclass
class ExportConfig:
    """What to export and how."""

    out: Path
    input_stage: str | None = None  # default: final_stage(workdir)
    images: ImageKind = ImageKind.CROPS
    formats: list[ExportFormat] = field(default_factory=lambda: [ExportFormat.IMAGEFOLDER])
    shard_size: int = 1000  # WebDataset samples per shard (about; identities never span shards)
    card: bool = True

    def validate(self) -> None:
        """Raise ConfigError naming the bad setting and the fix."""
        if self.shard_size < 1:
            raise ConfigError("shard_size", self.shard_size, "give 1 or more samples per shard")
        if not self.formats:
            raise ConfigError("format", self.formats, "give imagefolder, webdataset or both")
