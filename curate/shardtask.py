"""What runs inside one dask task (or in-process): read a shard, run the stage on it, write its outputs.

A task writes the shard's Parquet file (aside, for a whole-data-set step), vectors and stats, logs to the
stage's ``_logs`` folder, and reports progress through its context (:mod:`curate.taskprogress`); the
driver writes the marker once the task's stats are back (:mod:`curate.stageplan`).
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import pyarrow as pa

from curate import lineage, manifest, storage
from curate.envcheck import QuietFileHandler
from curate.stage import GlobalStage, ShardStage, StageContext
from curate.taskprogress import GLOBAL_TASK, reporter

logger = logging.getLogger(__name__)


stats_path = storage.stats_path
input_path = storage.input_path


def _status_counts(table: pa.Table) -> dict[str, int]:
    counts: dict[str, int] = {}
    for status in table.column("status").to_pylist():
        counts[status] = counts.get(status, 0) + 1
    return counts


def _check_rows_kept(stage: str, before: pa.Table, after: pa.Table) -> None:
    """Stages add columns; they never drop, add or reorder rows."""
    if before.num_rows != after.num_rows or before.column("source") != after.column("source"):
        raise RuntimeError(
            f"stage '{stage}' changed the rows of its input ({before.num_rows} -> {after.num_rows} rows "
            "or a different order); stages must keep every row in order"
        )


def _finish_shard(ctx: StageContext, table: pa.Table, seconds: float, staged: bool = False) -> dict[str, Any]:
    """Write a shard's manifest (aside when ``staged``), then its stats; the driver writes the marker."""
    assert ctx.shard is not None
    path = (lineage.staged_path if staged else manifest.shard_path)(ctx.workdir, ctx.stage, ctx.shard)
    manifest.write_shard(table, path)
    stats = {
        "stage": ctx.stage,
        "shard": ctx.shard,
        "rows": table.num_rows,
        "seconds": round(seconds, 3),
        "status_counts": _status_counts(table),
        "host": os.uname().nodename,
        "pid": os.getpid(),
        **ctx.stats,
        "output": lineage.output_facts(ctx.workdir, ctx.stage, ctx.shard, path, table.num_rows),
    }
    storage.atomic_write_text(
        stats_path(ctx.workdir, ctx.stage, ctx.shard), json.dumps(stats, indent=1, default=str)
    )
    return stats


class _ShardLog:
    """Sends the ``curate`` loggers to ``_logs/<name>.log`` for the duration of one task."""

    def __init__(self, workdir: Path, stage: str, name: str) -> None:
        path = storage.log_path(workdir, stage, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.handler = QuietFileHandler(path, mode="a")
        self.handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        self.logger = logging.getLogger("curate")

    def __enter__(self) -> logging.Logger:
        self.logger.addHandler(self.handler)
        if self.logger.level == logging.NOTSET or self.logger.level > logging.INFO:
            self.logger.setLevel(logging.INFO)
        return logging.getLogger(f"curate.shard.{self.handler.baseFilename}")

    def __exit__(self, *exc: object) -> None:
        if exc[0] is not None:  # the traceback goes to the shard's log; the error itself reaches the driver
            record = logger.makeRecord(logger.name, logging.ERROR, __file__, 0, "task failed", (), exc)  # type: ignore[arg-type]
            self.handler.handle(record)
        self.logger.removeHandler(self.handler)
        self.handler.close()


def _read_input(source: Path, workdir: Path) -> pa.Table:
    return manifest.with_moved_crops(manifest.read_shard(source), workdir)


def run_shard_task(
    stage: ShardStage, workdir: Path, source: Path, shard: int, n_shards: int, token: str | None = None
) -> dict:
    """One dask task: read a shard, run the stage on it, write outputs; returns the shard's stats.

    ``token`` names the stage run that progress reports go to (None: progress is not shown).
    """
    with _ShardLog(workdir, stage.name, manifest.shard_name(shard)) as log:
        started = time.perf_counter()
        table = _read_input(source, workdir)
        ctx = StageContext(workdir, stage.name, n_shards, shard, log, reporter=reporter(token, str(shard)))
        out = stage.run_shard(table, ctx)
        _check_rows_kept(stage.name, table, out)
        return _finish_shard(ctx, out, time.perf_counter() - started)


def run_global_task(
    stage: GlobalStage, workdir: Path, sources: dict[int, Path], n_shards: int, token: str | None = None
) -> list[dict]:
    """The single task of a whole-data-set step: all shards in, all shards out, markers last."""
    with _ShardLog(workdir, stage.name, "global") as log:
        started = time.perf_counter()
        tables = {shard: _read_input(path, workdir) for shard, path in sources.items()}
        ctx = StageContext(workdir, stage.name, n_shards, None, log, reporter=reporter(token, GLOBAL_TASK))
        outputs = stage.run_all(tables, ctx)
        seconds = time.perf_counter() - started
        results = []
        for shard, table in sorted(outputs.items()):
            _check_rows_kept(stage.name, tables[shard], table)
            shard_ctx = StageContext(workdir, stage.name, n_shards, shard, log, dict(ctx.stats))
            results.append(_finish_shard(shard_ctx, table, seconds, staged=True))
        return results
