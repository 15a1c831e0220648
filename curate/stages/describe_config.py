"""Settings of the ``describe`` stage (:mod:`curate.stages.describe`); light to import."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from curate.constants import BUILTIN_EMBEDDERS, SQUARE_MAX_SIDE, HashKind
from curate.errors import ConfigError
from curate.settings import setting


class VectorDtype(StrEnum):
    """How vectors are stored: float16 halves the disk, cosines move by less than 1e-3."""

    FLOAT32 = "float32"
    FLOAT16 = "float16"


@dataclass
class DescribeConfig:
    """Which descriptors to compute and how vectors are stored."""

    hashes: list[HashKind] = setting(
        ["phash", "dhash"], help="perceptual hashes: phash, dhash, ahash, whash ('' = none)"
    )
    embedders: list[str] = setting(
        ["handcrafted", "dlib"],
        help="embedders: dlib, handcrafted, or an exported model folder (dedup reads handcrafted, rank dlib)",
    )
    batch_size: int = setting(64, help="images per embedder call", unit="images", min=1, max=4096)
    dtype: VectorDtype = setting(VectorDtype.FLOAT32, help="storage type of the vectors")
    trim_borders: bool = setting(
        True, help="remove a flat frame before describing (a framed copy then matches)"
    )
    max_side: int = setting(
        SQUARE_MAX_SIDE, help="shrink larger images before describing (0 = never)", unit="pixels", min=0
    )
    thumbnails: bool = setting(
        True, help="store 32x32 grey thumbnails, which dedup uses to verify borderline pairs"
    )

    def validate(self) -> None:
        """Raise ConfigError on a setting that cannot work (ranges are checked from the metadata)."""
        if len(set(self.hashes)) != len(self.hashes):
            raise ConfigError("hashes", self.hashes, "name each hash once")
        if not self.hashes and not self.embedders:
            raise ConfigError("embedders", self.embedders, "ask for at least one hash or one embedder")
        if len(set(self.embedders)) != len(self.embedders):
            raise ConfigError("embedders", self.embedders, "name each embedder once")
        for spec in self.embedders:  # before a run (or --overwrite) touches anything
            if spec not in BUILTIN_EMBEDDERS and not (Path(spec).expanduser() / "embedder.json").is_file():
                raise ConfigError(
                    "embedders",
                    spec,
                    f"choose from {', '.join(BUILTIN_EMBEDDERS)} or give the folder of an exported model "
                    "(holding embedder.pt2 and embedder.json, as written by `curate train`)",
                )
        if self.max_side != 0 and self.max_side < 64:
            raise ConfigError("max_side", self.max_side, "use 0 (never shrink) or at least 64 pixels")
