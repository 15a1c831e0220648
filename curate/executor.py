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

from curate import lineage, manifest, stageplan, taskprogress
from curate.errors import CurateError
from curate.inprocess import DeferredTask, as_completed, worth_a_cluster
from curate.interrupts import quiet_dask_logs
from curate.record import BASE_COLUMNS, empty_table
from curate.shardtask import input_path, run_global_task, run_shard_task, stats_path
from curate.stage import GlobalStage, ShardStage, Stage
from curate.taskprogress import GLOBAL_TASK, ProgressCallback, StageTracker

__all__ = ["Executor", "ExecutorOptions", "StageResult", "finished_shards", "marker_path", "stats_path"]

logger = logging.getLogger(__name__)

SCHEDULER_ENV = "CURATE_SCHEDULER"


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


def finished_shards(workdir: Path, stage: str, n_shards: int) -> set[int]:
    """Shards of ``stage`` whose marker exists and agrees with the shard's files."""
    return {s for s in range(n_shards) if lineage.check_shard(workdir, stage, s).state == lineage.DONE}


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
        taskprogress.subscribe(self._client)

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
        taskprogress.subscribe(self._client)

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
        """Run ``stage`` over every unfinished shard; finished shards are skipped unless ``overwrite``.

        ``progress`` is called from the start with where the stage stands, as shards finish and as
        running tasks report items done (from this thread or dask's event thread, one call at a time).
        """
        started = time.perf_counter()
        workdir = Path(workdir).resolve()
        plan = stageplan.plan_stage(stage, workdir, n_shards, input_stage, overwrite, stage_key)
        pending = plan.pending
        whole = isinstance(stage, GlobalStage)
        skipped = 0 if whole and pending else n_shards - len(pending)
        with StageTracker(stage.name, n_shards, skipped, progress) as tracker:
            if pending:
                logger.info("stage %s: %d of %d shards to run", stage.name, len(pending), n_shards)
                sources = self._prepare_inputs(
                    stage, workdir, n_shards, input_stage, list(range(n_shards)) if whole else pending
                )
                if isinstance(stage, GlobalStage):
                    self._run_global(stage, workdir, n_shards, sources, plan, tracker)
                else:
                    self._run_shards(stage, workdir, n_shards, sources, plan, tracker)
        plan.finish()
        return StageResult(
            stage=stage.name,
            shards_total=n_shards,
            shards_run=len(pending),
            shards_skipped=n_shards - len(pending),
            status_counts=stage_status_counts(workdir, stage.name, n_shards),
            seconds=time.perf_counter() - started,
        )

    def _run_global(
        self,
        stage: GlobalStage,
        workdir: Path,
        n_shards: int,
        sources: dict[int, Path],
        plan: stageplan.StagePlan,
        tracker: StageTracker,
    ) -> None:
        """The single task of a whole-data-set step; its markers are written once it is back."""
        args = (stage, workdir, sources, n_shards, tracker.task_token)
        future = self.submit(run_global_task, *args, retries=self.options.retries, pure=False)
        plan.record_all(future.result())
        tracker.task_finished(GLOBAL_TASK, n_shards)

    def _run_shards(
        self,
        stage: ShardStage,
        workdir: Path,
        n_shards: int,
        sources: dict[int, Path],
        plan: stageplan.StagePlan,
        tracker: StageTracker,
    ) -> None:
        """One task per pending shard; each shard's marker is written as soon as its task is back."""
        futures = [
            self.submit(
                run_shard_task,
                stage,
                workdir,
                path,
                shard,
                n_shards,
                tracker.task_token,
                retries=self.options.retries,
                pure=False,
                key=f"{stage.name}-{shard:05d}-{time.time_ns()}",
            )
            for shard, path in sources.items()
        ]
        for future in as_completed(futures):
            stats = future.result()
            plan.record(stats)
            tracker.task_finished(str(stats["shard"]))

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
