"""Stage tasks run in the calling process, with a switch to the dask cluster when the work turns out big.

Starting a LocalCluster costs seconds (processes spawned, curate imported in each worker), which dwarfs the
work of a stage on a few thousand images. So by default the executor does not start one up front: each
task it submits becomes a :class:`DeferredTask`, and :func:`as_completed` runs those one after another in
this process. From the second task on it projects the time left in-process from the last task's time;
when a cluster would finish sooner, its cost included (:func:`worth_a_cluster`), it starts the cluster
and hands it the remaining tasks. ``--workers 0`` keeps everything in-process; ``--scheduler`` always uses the
cluster. Nothing here imports dask unless a cluster is actually used.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

logger = logging.getLogger(__name__)

COST_ENV = "CURATE_CLUSTER_COST"
# What moving work to a LocalCluster of 2 costs before it saves anything: its start (2-4 s measured by
# bench/inprocess.py) plus each worker importing the stage's libraries on first use. On the shared 2-core
# development machine under heavy load the whole came to ~24 s (collect and describe of 3,000 photos);
# on an idle machine to ~3 s (issue 14: 5.2 s for a collect that did ~2 s of work). 10 s sits between:
# a wrong guess costs at most ~7 s either way. Set CURATE_CLUSTER_COST (seconds) to tune it per machine.
DEFAULT_CLUSTER_COST = 10.0
WARM_TASKS = 2  # decide from the second task on: the first one pays this process's imports and models


def cluster_cost() -> float:
    """Seconds a cluster costs before it saves any (``$CURATE_CLUSTER_COST`` or the default)."""
    return float(os.environ.get(COST_ENV, DEFAULT_CLUSTER_COST))


class TaskOwner(Protocol):
    """What a deferred task needs from its executor: when to move to the cluster, and the cluster."""

    def should_switch(self, last_task_seconds: float, tasks_left: int) -> bool:
        """True when the tasks left are worth starting (or using) the cluster for."""
        ...

    def cluster_submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Submit one task to the dask cluster (started on first use); returns a dask future."""
        ...


@dataclass
class DeferredTask:
    """A task that runs in this process when its result is asked for (a future-like object)."""

    fn: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    owner: TaskOwner
    retries: int = 0
    seconds: float = 0.0
    _done: bool = field(default=False, repr=False)
    _value: Any = field(default=None, repr=False)
    _error: BaseException | None = field(default=None, repr=False)

    def result(self) -> Any:
        """Run the task (once; up to ``retries`` extra attempts if it raises) and return its value."""
        if not self._done:
            started = time.perf_counter()
            for attempt in range(self.retries + 1):
                try:
                    self._value, self._error = self.fn(*self.args, **self.kwargs), None
                    break
                except Exception as error:  # retried like dask retries a task that raised
                    self._error = error
                    logger.info("in-process task failed (attempt %d): %s", attempt + 1, error)
            self._done = True
            self.seconds = time.perf_counter() - started
        if self._error is not None:
            raise self._error
        return self._value

    def to_cluster(self) -> Any:
        """The same task submitted to the dask cluster."""
        return self.owner.cluster_submit(self.fn, *self.args, retries=self.retries, pure=False, **self.kwargs)


def worth_a_cluster(last_task_seconds: float, tasks_left: int, workers: int) -> bool:
    """Whether ``workers`` processes would finish the tasks left sooner, start cost included.

    In-process the rest takes about ``tasks_left * t``; a cluster about ``start + tasks_left * t / workers``.
    """
    if workers < 2 or tasks_left < 2:
        return False
    in_process = tasks_left * last_task_seconds
    on_cluster = cluster_cost() + tasks_left * last_task_seconds / min(workers, tasks_left)
    return on_cluster < in_process


def as_completed(futures: Iterable[Any]) -> Iterator[Any]:
    """Yield futures as they finish: dask futures via dask, deferred tasks by running them here."""
    pending = list(futures)
    if not pending or not isinstance(pending[0], DeferredTask):
        from dask.distributed import as_completed as dask_as_completed

        yield from dask_as_completed(pending)
        return
    done = 0
    while pending:
        task = pending.pop(0)
        task.result()
        done += 1
        yield task
        if pending and done >= WARM_TASKS and task.owner.should_switch(task.seconds, len(pending)):
            logger.info("moving %d tasks to the cluster (last took %.1f s)", len(pending), task.seconds)
            from dask.distributed import as_completed as dask_as_completed

            yield from dask_as_completed([t.to_cluster() for t in pending])
            return
