"""What a workdir holds: per stage done / partial / stale / corrupt shards, why, and rows per status."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from curate import lineage, manifest
from curate.executor import stats_path
from curate.pipeline import WORKDIR_FILE
from curate.stageplan import CONFIG_FILE

MAX_PROBLEM_LINES = 5


@dataclass
class StageStatus:
    """One stage folder's state (see :class:`curate.lineage.StageState`)."""

    stage: str
    state: str  # done, partial, stale or corrupt
    done: int  # shards verified and made from the current inputs
    total: int
    stale: int
    corrupt: int
    why: str  # one line; empty when done
    status_counts: dict[str, int]
    problems: list[str] = field(default_factory=list)  # one line per damaged shard (first few)


def _status_counts(workdir: Path, stage: str, shards: list[int]) -> dict[str, int]:
    """Rows per status over ``shards``, from their stats files."""
    counts: dict[str, int] = {}
    for shard in shards:
        path = stats_path(workdir, stage, shard)
        if path.exists():
            for status, count in json.loads(path.read_text())["status_counts"].items():
                counts[status] = counts.get(status, 0) + count
    return counts


def _order(folder: Path) -> tuple[int, float]:
    order = lineage.CANONICAL_ORDER
    rank = order.index(folder.name) if folder.name in order else len(order)
    return rank, (folder / CONFIG_FILE).stat().st_mtime


def workdir_status(workdir: Path, verify: bool = False) -> list[StageStatus]:
    """The state of every stage folder in ``workdir``; ``verify`` re-hashes every file (else size+mtime)."""
    workdir = Path(workdir)
    meta = workdir / WORKDIR_FILE
    if not meta.exists():
        return []
    n_shards = int(json.loads(meta.read_text())["n_shards"])
    checks = lineage.Checks(workdir, n_shards, full=verify)
    memo: dict[str, lineage.StageState | None] = {}
    report = []
    folders = [p for p in workdir.iterdir() if (p / CONFIG_FILE).exists()]
    for folder in sorted(folders, key=_order):
        state = lineage.stage_state(checks, folder.name, memo)
        verified = sorted([*state.done, *state.stale])
        fresh = [] if state.upstream else state.done  # inputs stale or damaged: nothing here is current
        label, why = state.label, state.why()
        if folder.name == "review" and label == "done":
            from curate.review.source import unapplied_decisions  # pandas, sqlite: only for a review stage

            if unapplied := unapplied_decisions(workdir):
                label, why, fresh = "stale", unapplied, []
        problems = [
            f"{folder.name} shard {manifest.shard_name(s)}: {reason}; run '{folder.name}' again to redo it"
            for s, reason in sorted(state.corrupt.items())
        ]
        if len(problems) > MAX_PROBLEM_LINES:
            problems = [*problems[:MAX_PROBLEM_LINES], f"... and {len(problems) - MAX_PROBLEM_LINES} more"]
        report.append(
            StageStatus(
                stage=folder.name,
                state=label,
                done=len(fresh),
                total=n_shards,
                stale=len(verified) - len(fresh),
                corrupt=len(state.corrupt),
                why=why,
                status_counts=_status_counts(workdir, folder.name, verified),
                problems=problems,
            )
        )
    return report
