"""Runs stages on dask.distributed: one task per shard, atomic outputs, completion markers, resume.

A shard is finished when its marker ``_done/<shard>`` is verified against its files (:mod:`curate.lineage`);
the marker is written after the shard's Parquet file, vectors and stats, so a killed run leaves no marker for
half-written work, and a re-run redoes exactly the unfinished, damaged or stale shards
(:mod:`curate.stageplan`). The executor is the only module (with the CLI) that imports dask.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
from dask.distributed import Client, LocalCluster, as_completed

from curate import lineage, manifest, stageplan
from curate.errors import CurateError
from curate.record import BASE_COLUMNS, empty_table
from curate.stage import GlobalStage, ShardStage, Stage, StageContext

logger = logging.getLogger(__name__)

SCHEDULER_ENV = "CURATE_SCHEDULER"
ProgressCallback = Callable[[int, int], None]


@dataclass
class ExecutorOptions:
    """Where tasks run: an existing scheduler, or a LocalCluster of ``workers`` processes."""

    scheduler: str | None = None  # tcp://host:port; falls back to $CURATE_SCHEDULER, then a LocalCluster
    workers: int = 2
    processes: bool = True
    retries: int = 2  # extra attempts for a shard task that raised


@dataclass
class StageResult:
    """What one stage run did: shards run and skipped, rows per status, wall time."""

    stage: str
    shards_total: int
    shards_run: int
    shards_skipped: int
    status_counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


marker_path = lineage.marker_path


def stats_path(workdir: Path, stage: str, shard: int) -> Path:
    """The per-shard stats JSON."""
    return manifest.stage_dir(workdir, stage) / "_stats" / f"{manifest.shard_name(shard)}.json"


def input_path(workdir: Path, stage: str, shard: int) -> Path:
    """Where a source stage's planned input rows for one shard are kept."""
    return manifest.stage_dir(workdir, stage) / "_input" / f"{manifest.shard_name(shard)}.parquet"


def finished_shards(workdir: Path, stage: str, n_shards: int) -> set[int]:
    """Shards of ``stage`` whose marker exists and agrees with the shard's files."""
    return {s for s in range(n_shards) if lineage.check_shard(workdir, stage, s).state == lineage.DONE}


def _write_text_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


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
    _write_text_atomic(
        stats_path(ctx.workdir, ctx.stage, ctx.shard), json.dumps(stats, indent=1, default=str)
    )
    return stats


class _ShardLog:
    """Sends the ``curate`` loggers to ``_logs/<name>.log`` for the duration of one task."""

    def __init__(self, workdir: Path, stage: str, name: str) -> None:
        path = manifest.stage_dir(workdir, stage) / "_logs" / f"{name}.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        self.handler = logging.FileHandler(path, mode="a")
        self.handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        self.logger = logging.getLogger("curate")

    def __enter__(self) -> logging.Logger:
        self.logger.addHandler(self.handler)
        if self.logger.level == logging.NOTSET or self.logger.level > logging.INFO:
            self.logger.setLevel(logging.INFO)
        return logging.getLogger(f"curate.shard.{self.handler.baseFilename}")

    def __exit__(self, *exc: object) -> None:
        if exc[0] is not None:
            logging.getLogger("curate.executor").error("task failed", exc_info=exc)  # type: ignore[arg-type]
        self.logger.removeHandler(self.handler)
        self.handler.close()


def _read_input(source: Path) -> pa.Table:
    return manifest.read_shard(source)


def run_shard_task(stage: ShardStage, workdir: Path, source: Path, shard: int, n_shards: int) -> dict:
    """One dask task: read a shard, run the stage on it, write outputs; returns the shard's stats."""
    with _ShardLog(workdir, stage.name, manifest.shard_name(shard)) as log:
        started = time.perf_counter()
        table = _read_input(source)
        ctx = StageContext(workdir=workdir, stage=stage.name, n_shards=n_shards, shard=shard, logger=log)
        out = stage.run_shard(table, ctx)
        _check_rows_kept(stage.name, table, out)
        return _finish_shard(ctx, out, time.perf_counter() - started)


def run_global_task(stage: GlobalStage, workdir: Path, sources: dict[int, Path], n_shards: int) -> list[dict]:
    """The single task of a whole-data-set step: all shards in, all shards out, markers last."""
    with _ShardLog(workdir, stage.name, "global") as log:
        started = time.perf_counter()
        tables = {shard: _read_input(path) for shard, path in sources.items()}
        ctx = StageContext(workdir=workdir, stage=stage.name, n_shards=n_shards, shard=None, logger=log)
        outputs = stage.run_all(tables, ctx)
        seconds = time.perf_counter() - started
        results = []
        for shard, table in sorted(outputs.items()):
            _check_rows_kept(stage.name, tables[shard], table)
            shard_ctx = StageContext(workdir, stage.name, n_shards, shard, log, dict(ctx.stats))
            results.append(_finish_shard(shard_ctx, table, seconds, staged=True))
        return results


class Executor:
    """A dask client plus the bookkeeping that makes stage runs resumable."""

    def __init__(self, options: ExecutorOptions | None = None) -> None:
        self.options = options or ExecutorOptions()
        self._client: Client | None = None
        self._cluster: LocalCluster | None = None

    def __enter__(self) -> Executor:
        address = self.options.scheduler or os.environ.get(SCHEDULER_ENV) or None
        if address:
            logger.info("connecting to dask scheduler %s", address)
            try:
                self._client = Client(address, timeout="20s")
            except OSError as error:
                raise CurateError(
                    f"cannot reach dask scheduler {address!r} ({error}); start it with 'dask scheduler' "
                    f"or drop --scheduler/{SCHEDULER_ENV} to use a local cluster"
                ) from None
        else:
            if self.options.workers < 1:
                raise CurateError(f"--workers {self.options.workers}: give 1 or more worker processes")
            self._cluster = LocalCluster(
                n_workers=self.options.workers,
                threads_per_worker=1,
                processes=self.options.processes,
                # the scheduler still serves health checks over HTTP: loopback only, any free port
                dashboard_address="127.0.0.1:0",
                silence_logs=logging.WARNING,
            )
            self._client = Client(self._cluster)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._client is not None:
            self._client.close()
        if self._cluster is not None:
            self._cluster.close()

    @property
    def client(self) -> Client:
        """The connected dask client (inside ``with Executor(...)``)."""
        if self._client is None:
            raise RuntimeError("use the executor inside a 'with' block")
        return self._client

    def run_stage(
        self,
        stage: Stage,
        workdir: Path,
        n_shards: int,
        input_stage: str | None,
        overwrite: bool = False,
        progress: ProgressCallback | None = None,
        stage_key: str | None = None,
    ) -> StageResult:
        """Run ``stage`` over every unfinished shard; finished shards are skipped unless ``overwrite``."""
        started = time.perf_counter()
        workdir = Path(workdir).resolve()
        plan = stageplan.plan_stage(stage, workdir, n_shards, input_stage, overwrite, stage_key)
        pending = plan.pending
        if pending:
            logger.info("stage %s: %d of %d shards to run", stage.name, len(pending), n_shards)
            if isinstance(stage, GlobalStage):
                all_sources = self._prepare_inputs(
                    stage, workdir, n_shards, input_stage, list(range(n_shards))
                )
                future = self.client.submit(
                    run_global_task,
                    stage,
                    workdir,
                    all_sources,
                    n_shards,
                    retries=self.options.retries,
                    pure=False,
                )
                plan.record_all(future.result())
                if progress:
                    progress(n_shards, n_shards)
            else:
                sources = self._prepare_inputs(stage, workdir, n_shards, input_stage, pending)
                futures = [
                    self.client.submit(
                        run_shard_task,
                        stage,
                        workdir,
                        sources[s],
                        s,
                        n_shards,
                        retries=self.options.retries,
                        pure=False,
                        key=f"{stage.name}-{s:05d}-{time.time_ns()}",
                    )
                    for s in pending
                ]
                completed = n_shards - len(pending)
                for future in as_completed(futures):
                    plan.record(future.result())
                    completed += 1
                    if progress:
                        progress(completed, n_shards)
        plan.finish()
        result = StageResult(
            stage=stage.name,
            shards_total=n_shards,
            shards_run=len(pending),
            shards_skipped=n_shards - len(pending),
            status_counts=stage_status_counts(workdir, stage.name, n_shards),
            seconds=time.perf_counter() - started,
        )
        return result

    def _prepare_inputs(
        self, stage: Stage, workdir: Path, n_shards: int, input_stage: str | None, shards: list[int]
    ) -> dict[int, Path]:
        """Paths of each pending shard's input: planned rows for a source stage, else the input stage."""
        if not shards:
            return {}
        if input_stage is None:
            planned = {s: input_path(workdir, stage.name, s) for s in shards}
            if all(path.exists() for path in planned.values()):
                return planned
            tables = stage.plan(workdir, n_shards)
            if tables is None:
                raise CurateError(f"stage '{stage.name}' needs an input stage; name one with 'input'")
            # empty shards get the planned schema, so every shard of the stage has the same columns
            schema = next(iter(tables.values())).schema if tables else empty_table(BASE_COLUMNS).schema
            for shard in range(n_shards):
                table = tables.get(shard, schema.empty_table())
                manifest.write_shard(table, input_path(workdir, stage.name, shard))
            return planned
        return {s: manifest.shard_path(workdir, input_stage, s) for s in shards}


def stage_status_counts(workdir: Path, stage: str, n_shards: int) -> dict[str, int]:
    """Rows per status over the finished shards of a stage, from their stats files."""
    counts: dict[str, int] = {}
    for shard in sorted(finished_shards(workdir, stage, n_shards)):
        path = stats_path(workdir, stage, shard)
        if path.exists():
            for status, count in json.loads(path.read_text())["status_counts"].items():
                counts[status] = counts.get(status, 0) + count
    return counts
