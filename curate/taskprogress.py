"""Progress within a stage's tasks: what ``ctx.progress`` reports reaches the client, wherever the task runs.

A task's :class:`~curate.stage.StageContext` gets a reporter from :func:`reporter`. In the client's own
process (in-process tasks, a threaded LocalCluster) the reporter hands each report straight to the stage's
:class:`StageTracker`. In a dask worker process it sends a dask event (``Worker.log_event`` on the topic
``curate-progress``); the scheduler forwards it to every client subscribed to the topic (:func:`subscribe`),
which works the same on a LocalCluster and on a scheduler with workers on other machines. Each report
carries the token of the stage run it belongs to, so clients sharing a scheduler only count their own.
Reports are throttled in the task (a few per second at most), and never reach a manifest or the stats.
Nothing here imports dask: a worker has it loaded already, and the client passes its own client in.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from curate.stage import Reporter

TOPIC = "curate-progress"
GLOBAL_TASK = "global"  # the task name of a whole-data-set step; it stands for every shard

_LOCAL: dict[str, tuple[int, StageTracker]] = {}  # trackers of this process's stage runs, by token
_LOCAL_LOCK = threading.Lock()


@dataclass(frozen=True)
class StageProgress:
    """Where one stage run stands, as the client shows it."""

    stage: str
    shards_total: int
    shards_done: int  # finished (or skipped as already finished)
    done: float  # shards_done plus the finished share of the tasks still running, in shards
    items: int  # items the stage's tasks reported done in this run
    seconds: float  # since the stage started

    @property
    def items_per_s(self) -> float:
        """Items done per second of the stage's wall time so far."""
        return self.items / self.seconds if self.seconds > 0 else 0.0


ProgressCallback = Callable[[StageProgress], None]


def reporter(token: str | None, task: str) -> Reporter | None:
    """The reporter a task's context gets (None without a token: nobody is listening)."""
    if token is None:
        return None

    def report(done: int, total: int) -> None:
        local = _LOCAL.get(token)
        if local is not None and local[0] == os.getpid():
            local[1].task_progress(task, done, total)
        else:
            _send_event({"token": token, "task": task, "done": done, "total": total})

    return report


def _send_event(message: dict[str, Any]) -> None:
    """Log ``message`` as a dask event when this is a dask worker running a task; else drop it."""
    distributed = sys.modules.get("distributed")
    if distributed is None:
        return
    try:
        worker = distributed.get_worker()
    except ValueError:  # not inside a worker's task
        return
    worker.log_event(TOPIC, message)


def _on_event(event: tuple[float, dict[str, Any]]) -> None:
    """The client's handler for the topic: pass a report on to the stage run it belongs to."""
    message = event[1]
    local = _LOCAL.get(message.get("token", ""))
    if local is not None:
        local[1].task_progress(str(message["task"]), int(message["done"]), int(message["total"]))


def subscribe(client: Any) -> None:
    """Have a dask client pass progress events from its workers to this process's stage runs."""
    client.subscribe_topic(TOPIC, _on_event)


class StageTracker:
    """Adds up one stage run's progress: finished shards plus the reported share of running tasks.

    Reports come from the task itself (in-process), or from dask's event thread, so every update holds a
    lock; the callback is called with the lock held, one call at a time.
    """

    def __init__(self, stage: str, shards_total: int, shards_done: int, callback: ProgressCallback | None):
        self.token = uuid.uuid4().hex
        self.stage, self.shards_total, self.shards_done = stage, shards_total, shards_done
        self.callback = callback
        self.started = time.monotonic()
        self._running: dict[str, tuple[int, int]] = {}  # task -> (done, total) last reported
        self._items_finished = 0
        self._finished: set[str] = set()
        self._lock = threading.Lock()

    def __enter__(self) -> StageTracker:
        with _LOCAL_LOCK:
            _LOCAL[self.token] = (os.getpid(), self)
        self._emit()
        return self

    def __exit__(self, *exc: object) -> None:
        with _LOCAL_LOCK:
            _LOCAL.pop(self.token, None)

    @property
    def task_token(self) -> str | None:
        """The token the run's tasks report under; None when nobody shows progress (tasks stay silent)."""
        return self.token if self.callback is not None else None

    def task_progress(self, task: str, done: int, total: int) -> None:
        """A task reports ``done`` of ``total`` items (late reports of finished tasks are dropped)."""
        with self._lock:
            if task in self._finished:
                return
            self._running[task] = (max(0, done), max(0, total))
            self._emit_locked()

    def task_finished(self, task: str, shards: int = 1) -> None:
        """A task finished and wrote its ``shards``."""
        with self._lock:
            self._finished.add(task)
            self._items_finished += self._running.pop(task, (0, 0))[0]
            self.shards_done = min(self.shards_total, self.shards_done + shards)
            self._emit_locked()

    def snapshot(self) -> StageProgress:
        """Where the stage stands now."""
        with self._lock:
            return self._snapshot()

    def _snapshot(self) -> StageProgress:
        weight = {GLOBAL_TASK: self.shards_total}
        running = sum(weight.get(t, 1) * min(d / n, 1.0) for t, (d, n) in self._running.items() if n > 0)
        items = self._items_finished + sum(d for d, _ in self._running.values())
        return StageProgress(
            stage=self.stage,
            shards_total=self.shards_total,
            shards_done=self.shards_done,
            done=min(float(self.shards_total), self.shards_done + running),
            items=items,
            seconds=time.monotonic() - self.started,
        )

    def _emit(self) -> None:
        with self._lock:
            self._emit_locked()

    def _emit_locked(self) -> None:
        if self.callback is not None:
            self.callback(self._snapshot())
