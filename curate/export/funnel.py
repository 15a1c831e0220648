"""What each stage of a run did: the chain of stages behind a manifest and its rows kept and dropped.

Every stage writes every row in the same order (stages never drop or reorder rows), so the status of one
row can be followed from stage to stage by position. A row counts as dropped by the first stage that gave
it a status other than ``ok``; a later stage that changes the status of a row already dropped (dedup
marking a ``low_score`` copy ``duplicate``, review rejecting it) counts it as ``relabelled``.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from curate import manifest, storage
from curate.record import Status

HEX = re.compile(r"(?:[a-z0-9]+-)*[0-9a-f]{8,}")
NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?")
QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"|\S*/\S+")


@dataclass
class StageStep:
    """One stage of the chain: ok rows in, ok rows out, and the rows it dropped by status and reason."""

    stage: str
    rows_in: int
    kept: int
    dropped: dict[str, int] = field(default_factory=dict)
    restored: int = 0  # rows an earlier stage dropped that this one made ok again (review can)
    relabelled: int = 0  # rows an earlier stage dropped that this one gave another status (dedup, review)
    reasons: dict[str, dict[str, int]] = field(default_factory=dict)  # status -> reason pattern -> rows

    def to_dict(self) -> dict:
        """JSON-ready."""
        return {
            "stage": self.stage,
            "rows_in": self.rows_in,
            "kept": self.kept,
            "dropped": self.dropped,
            "restored": self.restored,
            "relabelled": self.relabelled,
            "reasons": self.reasons,
        }


def dropped_text(dropped: dict[str, int], restored: int = 0, relabelled: int = 0) -> str:
    """One stage's removals as the report and the card print them: ``low_score 20, relabelled 5``."""
    parts = [f"{status} {count}" for status, count in dropped.items()]
    parts += [f"restored {restored}"] if restored else []
    parts += [f"relabelled {relabelled}"] if relabelled else []
    return ", ".join(parts) or "-"


def stage_config(workdir: Path, stage: str) -> dict:
    """The saved ``_config.json`` of a stage (empty when there is none)."""
    path = storage.config_path(workdir, stage)
    return json.loads(path.read_text()) if path.is_file() else {}


def stage_chain(workdir: Path, stage: str) -> list[str]:
    """The stages ``stage`` was made from, source first, following each ``input_stage``."""
    chain, current = [], stage
    while current and current not in chain:
        chain.append(current)
        current = stage_config(workdir, current).get("input_stage")
    return chain[::-1]


def reason_pattern(reason: str) -> str:
    """A reason with its numbers, quoted names and paths blanked, so like reasons count together."""
    text = HEX.sub("…", QUOTED.sub("…", reason or ""))
    return NUMBER.sub("#", text).strip() or "(no reason given)"


def _columns(workdir: Path, stage: str, columns: list[str]) -> pd.DataFrame:
    parts = []
    for shard in manifest.list_shards(workdir, stage):
        path = manifest.shard_path(workdir, stage, shard)
        present = [c for c in columns if c in pq.read_schema(path).names]
        parts.append(pq.read_table(path, columns=present).to_pandas())
    return pd.concat(parts, ignore_index=True)


def funnel(workdir: Path, stage: str) -> list[StageStep]:
    """Rows kept and dropped per stage of the chain that made ``stage``."""
    steps: list[StageStep] = []
    previous: pd.Series | None = None  # the statuses the previous stage wrote
    for name in stage_chain(workdir, stage):
        frame = _columns(workdir, name, ["status", "reason"])
        ok = frame["status"] == Status.OK.value
        aligned = previous is not None and len(previous) == len(frame)
        if aligned:
            entering = previous == Status.OK.value
            relabelled = int((~entering & ~ok & (frame["status"] != previous)).sum())
        else:  # a source stage: every planned row enters
            entering, relabelled = pd.Series(True, index=frame.index), 0
        dropped = frame[entering & ~ok]
        reasons: dict[str, dict[str, int]] = {}
        for status, group in dropped.groupby("status"):
            counts = Counter(reason_pattern(r) for r in group["reason"].fillna(""))
            reasons[str(status)] = dict(counts.most_common())
        steps.append(
            StageStep(
                stage=name,
                rows_in=int(entering.sum()),
                kept=int((entering & ok).sum()),
                dropped={str(k): int(v) for k, v in dropped["status"].value_counts().sort_index().items()},
                restored=int((~entering & ok).sum()),
                relabelled=relabelled,
                reasons=reasons,
            )
        )
        previous = frame["status"]
    return steps
