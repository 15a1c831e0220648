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
    WORKDIR = (
        "workdir"  # pairs of the workdir's own identities (no PAIRS): shows training worked, no benchmark
    )


@dataclass
class EvaluateConfig:
    """What to evaluate, on which pairs, and how images are aligned."""

    model: str | None = setting(
        None,
        help="'dlib', 'handcrafted', an exported model folder or a training checkpoint "
        "(none = <workdir>/train/model)",
    )
    pairs: Path | None = setting(
        None, help="pairs.txt (lfw) or the CFP Protocol folder (cfp-ff, cfp-fp); none = the workdir's pairs"
    )
    images: Path | None = setting(
        None,
        help="the image root the pairs name files under (lfw; cfp-*: none = as the Protocol's lists say)",
    )
    protocol: Protocol | None = setting(
        None, help="lfw, cfp-ff, cfp-fp or workdir (none = lfw with --pairs, else workdir)"
    )
    folds: list[int] = setting([], help="only these folds, e.g. 6,7,8,9,10 (none = all)", min=1)
    align: bool = setting(True, help="detect and align faces as the faces stage does")
    cache: Path | None = setting(None, help="embedding cache (none = <workdir>/cache)")
    out: Path | None = setting(
        None, help="report folder (none = <workdir>/evaluate/<protocol>-<model>-<model id>-<settings id>)"
    )
    group_by: str | None = setting(None, help="manifest column to break accuracy down by")
    manifest_stage: str | None = setting(
        None, help="manifest stage holding --group-by (none = the stage the model was trained on)"
    )
    allow_missing: bool = setting(
        False, help="score pairs whose images are missing or unreadable as failures"
    )

    def validate(self) -> None:
        """Raise ConfigError for a pairs file or image root that is not there, or a protocol without them."""
        if self.pairs is not None and not Path(self.pairs).exists():
            raise ConfigError("pairs", str(self.pairs), "give pairs.txt or the CFP Protocol folder")
        lfw = self.pairs is not None and self.resolved_protocol() is Protocol.LFW
        if (lfw and self.images is None) or (self.images is not None and not Path(self.images).is_dir()):
            raise ConfigError("images", self.images, "give the folder the pairs' images are under")
        if self.protocol not in (None, Protocol.WORKDIR) and self.pairs is None:
            raise ConfigError(
                "pairs", None, f"protocol {self.protocol.value} reads a pairs file or folder: give --pairs"
            )

    def resolved_protocol(self) -> Protocol:
        """The protocol to run: as given, else lfw with a pairs file, else the workdir's own pairs."""
        if self.protocol is not None:
            return self.protocol
        return Protocol.LFW if self.pairs is not None else Protocol.WORKDIR
