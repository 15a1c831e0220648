"""Runs stages in-process or on dask.distributed: one task per shard, atomic outputs, markers, resume.

A shard is finished when its marker ``_done/<shard>`` is verified against its files (:mod:`curate.lineage`);
the marker is written after the shard's Parquet file, vectors and stats, so a killed run leaves no marker for
half-written work, and a re-run redoes exactly the unfinished, damaged or stale shards
(:mod:`curate.stageplan`). The executor is the only module (with the CLI) that imports dask,
and only when a cluster is used.
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

from curate import lineage, manifest, stageplan, storage
from curate.envcheck import QuietFileHandler
from curate.errors import CurateError
from curate.inprocess import DeferredTask, as_completed, worth_a_cluster
from curate.interrupts import quiet_dask_logs
from curate.record import BASE_COLUMNS, empty_table
from curate.stage import GlobalStage, ShardStage, Stage, StageContext

logger = logging.getLogger(__name__)

SCHEDULER_ENV = "CURATE_SCHEDULER"
ProgressCallback = Callable[[int, int], None]


@dataclass
class ExecutorOptions:
    """Where tasks run: an existing scheduler, or a LocalCluster of ``workers`` processes."""

    scheduler: str | None = None  # tcp://host:port; falls back to $CURATE_SCHEDULER, then a LocalCluster
    workers: int = 2  # 0: run every task in this process, never start a cluster
    processes: bool = True
    inprocess: bool | None = None  # None: in-process until the work pays for a cluster; True/False: always
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
stats_path = storage.stats_path
input_path = storage.input_path


def finished_shards(workdir: Path, stage: str, n_shards: int) -> set[int]:
    """Shards of ``stage`` whose marker exists and agrees with the shard's files."""
    return {s for s in range(n_shards) if lineage.check_shard(workdir, stage, s).state == lineage.DONE}


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
    """Runs stage tasks in this process or on dask, plus the bookkeeping that makes stage runs resumable.

    No cluster starts up front: tasks run in-process until the work proves big enough to pay for one
    (:mod:`curate.inprocess`). ``--scheduler`` always uses that scheduler; ``workers=0`` never starts one.
    """

    def __init__(self, options: ExecutorOptions | None = None) -> None:
        self.options = options or ExecutorOptions()
        self._client: Any = None  # dask.distributed.Client, imported only when a cluster is used
        self._cluster: Any = None
        self.address = self.options.scheduler or os.environ.get(SCHEDULER_ENV) or None

    def __enter__(self) -> Executor:
        if self.options.workers < 0:
            raise CurateError(f"--workers {self.options.workers}: give 0 (in-process) or more workers")
        if self.address:  # a remote scheduler is always used, and checked before any work starts
            self._connect()
        return self

    def __exit__(self, *exc: object) -> None:
        interrupted = exc[0] is not None and issubclass(exc[0], KeyboardInterrupt)  # type: ignore[arg-type]
        if interrupted:
            quiet_dask_logs()  # workers killed mid-task say so at length; the CLI prints one line instead
        if self._client is not None:
            self._client.close()
        if self._cluster is not None:
            self._cluster.close()

    def _connect(self) -> None:
        from dask.distributed import Client

        from curate.scheduler_check import check_scheduler

        check_scheduler(self.address)
        logger.info("connecting to dask scheduler %s", self.address)
        try:
            self._client = Client(self.address, timeout="20s")
        except OSError as error:
            raise CurateError(
                f"cannot reach dask scheduler {self.address!r} ({error}); start it with 'dask scheduler' "
                f"or drop --scheduler/{SCHEDULER_ENV} to use a local cluster"
            ) from None

    def _start_cluster(self) -> None:
        from dask.distributed import Client, LocalCluster

        workers = max(self.options.workers, 1)
        logger.info("starting a local dask cluster of %d worker processes", workers)
        self._cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=self.options.processes,
            # the scheduler still serves health checks over HTTP: loopback only, any free port
            dashboard_address="127.0.0.1:0",
            silence_logs=logging.CRITICAL,  # task errors reach the driver through their futures
            preload=["curate.interrupts"],  # workers ignore Ctrl-C; the driver stops them
        )
        self._client = Client(self._cluster)

    @property
    def client(self) -> Any:
        """The dask client (inside ``with Executor(...)``); starts the local cluster on first use."""
        if self._client is None:
            if self.options.workers == 0:
                raise RuntimeError("--workers 0 runs in-process; there is no dask client")
            self._start_cluster()
        return self._client

    def submit(self, fn: Callable[..., Any], *args: Any, retries: int = 0, **kwargs: Any) -> Any:
        """Submit one task: to the cluster when one is in use, else as an in-process deferred task."""
        if self._client is not None or self.options.inprocess is False:
            return self.client.submit(fn, *args, retries=retries, **kwargs)
        kwargs = {k: v for k, v in kwargs.items() if k not in ("pure", "key")}
        return DeferredTask(fn, args, kwargs, owner=self, retries=retries)

    def should_switch(self, last_task_seconds: float, tasks_left: int) -> bool:
        """Move the rest of a stage to the cluster? Never with --workers 0; else when it pays."""
        if self.options.workers == 0 or self.options.inprocess:
            return False
        return worth_a_cluster(last_task_seconds, tasks_left, self.options.workers)

    def cluster_submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Submit to the dask cluster, starting it if needed."""
        return self.client.submit(fn, *args, **kwargs)

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
                future = self.submit(
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
                    self.submit(
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
