"""Settings of ``curate evaluate`` (:mod:`curate.evaluate`), outside that package so it loads light."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from curate.errors import ConfigError
from curate.settings import setting


class Protocol(StrEnum):
    """The verification benchmark: its pair list format and folds."""

    LFW = "lfw"  # PAIRS = pairs.txt, IMAGES = the LFW root
    CFP_FF = "cfp-ff"  # PAIRS = the CFP Protocol folder, IMAGES = the CFP root: frontal-frontal
    CFP_FP = "cfp-fp"  # frontal-profile


@dataclass
class EvaluateConfig:
    """What to evaluate, on which pairs, and how images are aligned."""

    model: str = setting(help="'dlib', 'handcrafted', an exported model folder or a training checkpoint")
    pairs: Path = setting(help="pairs.txt (lfw) or the CFP Protocol folder (cfp-ff, cfp-fp)")
    images: Path = setting(help="the image root the pairs name files under")
    protocol: Protocol = setting(Protocol.LFW, help="lfw, cfp-ff or cfp-fp")
    folds: list[int] = setting([], help="only these folds, e.g. 6,7,8,9,10 (none = all)", min=1)
    align: bool = setting(True, help="detect and align faces as the faces stage does")
    cache: Path | None = setting(None, help="embedding cache (none = <workdir>/cache)")
    out: Path | None = setting(None, help="report folder (none = <workdir>/evaluate/<protocol>-<model>-<id>)")
    group_by: str | None = setting(None, help="manifest column to break accuracy down by")
    manifest_stage: str = setting("rank", help="manifest stage holding --group-by")
    allow_missing: bool = setting(
        False, help="score pairs whose images are missing or unreadable as failures"
    )

    def validate(self) -> None:
        """Raise ConfigError for a pairs file or image root that is not there."""
        if not Path(self.pairs).exists():
            raise ConfigError("pairs", str(self.pairs), "give pairs.txt or the CFP Protocol folder")
        if not Path(self.images).is_dir():
            raise ConfigError("images", str(self.images), "give the folder the pairs' images are under")
