"""Around a run of stages: environment checks first, the writer lock, and one line for what stops it.

:func:`guarded_run` is what :func:`curate.pipeline.run_specs` runs its stages in. Before anything starts
it checks the workdir (:mod:`curate.envcheck`); a workdir this process cannot write is fine as long as
every stage is already done (a finished pipeline can be confirmed from a read-only copy), else one line.
It holds the workdir lock (:mod:`curate.workdir_lock`) for the run. A disk-full or permission error mid-run
becomes one line naming the path and the fix, and an interrupt becomes ``interrupted in <stage>: k of n
shards done; ...``; both remove the half-written temporary files first.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from curate import lineage, storage
from curate.config import config_to_dict
from curate.envcheck import Access, os_error_message, remove_temp_files
from curate.errors import CurateError
from curate.executor import StageResult, finished_shards, stage_status_counts
from curate.interrupts import RunInterrupted, exit_code_of, stop_line
from curate.stage import Stage
from curate.workdir_lock import hold_workdir

logger = logging.getLogger(__name__)


@dataclass
class RunState:
    """Where a run is, for the interrupt message: the stage running now and the shard count."""

    stage: str | None = None
    n_shards: int = 0


def _shards_done(workdir: Path, stage: str, n_shards: int) -> int:
    return len(finished_shards(workdir, stage, n_shards))


def _config_matches(workdir: Path, stage: Stage) -> bool:
    path = storage.config_path(workdir, stage.name)
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return saved.get("config") == config_to_dict(stage.config)


def confirm_done(
    access: Access,
    workdir: Path,
    n_shards: int | None,
    overwrite: bool,
    stages: Sequence[Stage],
) -> list[StageResult]:
    """In a workdir this process cannot write: every stage must be done as asked, else one line."""
    if overwrite:
        raise access.refusal("--overwrite redoes stages")
    if n_shards is None:
        raise access.refusal("no stage has run here yet")
    results = []
    checks = lineage.Checks(workdir, n_shards)
    for stage in stages:
        state = lineage.stage_state(checks, stage.name)
        if state.label != "done":
            raise access.refusal(f"stage '{stage.name}' is {state.label} ({state.why()})")
        if not _config_matches(workdir, stage):
            raise access.refusal(f"stage '{stage.name}' was run with another config")
        counts = stage_status_counts(workdir, stage.name, n_shards)
        results.append(StageResult(stage.name, n_shards, 0, n_shards, counts))
    logger.info("workdir %s is not writable; every stage asked for is already done", workdir)
    return results


def _stop_report(workdir: Path, state: RunState) -> str:
    """Remove half-written files and say where the run stopped and how to resume."""
    remove_temp_files(workdir)
    if state.stage is None:
        where = "before any stage started"
    else:
        done = _shards_done(workdir, state.stage, state.n_shards)
        where = f"in {state.stage}: {done} of {state.n_shards} shards done"
    return f"interrupted {where}; run the same command to resume"


@contextlib.contextmanager
def guard(workdir: Path) -> Iterator[RunState]:
    """Hold the workdir lock for the block; interrupts and environment errors become one line."""
    workdir = Path(workdir)
    state = RunState()
    with hold_workdir(workdir), stop_line(lambda: _stop_report(workdir, state)):
        try:
            yield state
        except KeyboardInterrupt as error:
            raise RunInterrupted(_stop_report(workdir, state), exit_code_of(error)) from None
        except OSError as error:
            message = os_error_message(error, workdir)
            if message is None:
                raise
            remove_temp_files(workdir)
            raise CurateError(message) from None
