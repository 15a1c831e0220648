"""What a workdir holds: finished/total shards per stage and rows per status."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from curate.executor import finished_shards, stage_status_counts
from curate.pipeline import WORKDIR_FILE


@dataclass
class StageStatus:
    """One stage folder's progress."""

    stage: str
    done: int
    total: int
    status_counts: dict[str, int]


def workdir_status(workdir: Path) -> list[StageStatus]:
    """Progress of every stage folder in ``workdir`` (those with a saved ``_config.json``)."""
    workdir = Path(workdir)
    meta = workdir / WORKDIR_FILE
    if not meta.exists():
        return []
    n_shards = int(json.loads(meta.read_text())["n_shards"])
    report = []
    folders = [p for p in workdir.iterdir() if (p / "_config.json").exists()]
    for folder in sorted(folders, key=lambda p: (p / "_config.json").stat().st_mtime):
        done = len(finished_shards(workdir, folder.name, n_shards))
        report.append(
            StageStatus(folder.name, done, n_shards, stage_status_counts(workdir, folder.name, n_shards))
        )
    return report
