"""What a stage is: a typed config plus ``run_shard(table, ctx) -> table`` (or a whole-data-set step).

Stages never import dask or typer. The executor hands each call a :class:`StageContext`; a stage can be
tested by calling ``run_shard`` on a plain Arrow table with a context built by :func:`local_context`.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np
import pyarrow as pa

from curate import manifest

T = TypeVar("T")
Reporter = Callable[[int, int], None]  # (items done, items in all) of one task, sent to the client

INTERVAL_ENV = "CURATE_PROGRESS_INTERVAL"
REPORT_INTERVAL = 0.5  # seconds between two reports of one task (the last item is always reported)

_RESOURCES: dict[str, Any] = {}
_RESOURCES_LOCK = threading.Lock()


def process_resource(key: str, factory: Callable[[], T]) -> T:
    """Return the object cached under ``key`` in this process, building it once with ``factory``.

    On a dask worker this means a heavy model is loaded once per worker, not once per task.
    """
    with _RESOURCES_LOCK:
        if key not in _RESOURCES:
            _RESOURCES[key] = factory()
        return _RESOURCES[key]


def _report_interval() -> float:
    """Seconds between two progress reports of one task (``$CURATE_PROGRESS_INTERVAL`` or 0.5)."""
    return float(os.environ.get(INTERVAL_ENV, REPORT_INTERVAL))


@dataclass
class StageContext:
    """Where a stage call runs: the work folder, which stage and shard, a logger, per-shard extras."""

    workdir: Path
    stage: str
    n_shards: int
    shard: int | None = None  # None for a whole-data-set step
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("curate.stage"))
    stats: dict[str, Any] = field(default_factory=dict)  # extra figures the stage wants in its stats JSON
    reporter: Reporter | None = field(default=None, repr=False, compare=False)  # set by the executor
    _done: int = field(default=0, init=False, repr=False, compare=False)
    _total: int = field(default=0, init=False, repr=False, compare=False)
    _sent: float = field(default=-math.inf, init=False, repr=False, compare=False)
    _interval: float = field(default_factory=_report_interval, init=False, repr=False, compare=False)

    def progress(self, done: int, total: int) -> None:
        """Report ``done`` of ``total`` items of this call finished, for the client's progress bar.

        Cheap enough to call per item: a report leaves at most every ``$CURATE_PROGRESS_INTERVAL`` seconds
        (0.5 by default) and when the last item is done. Progress never reaches the manifest or the stats.
        """
        self._done, self._total = done, total
        if self.reporter is None:
            return
        now = time.monotonic()
        if done >= total or now - self._sent >= self._interval:
            self._sent = now
            self.reporter(done, total)

    def advance(self, n: int = 1, total: int | None = None) -> None:
        """``n`` more items finished, of ``total`` (default: the total last given to :meth:`progress`)."""
        self.progress(self._done + n, self._total if total is None else total)

    def resource(self, key: str, factory: Callable[[], T]) -> T:
        """A per-process cached object (model, index...), built once per worker."""
        return process_resource(key, factory)

    def path(self, *parts: str) -> Path:
        """A path inside the work folder (e.g. a content-addressed store), parent folders created."""
        target = Path(self.workdir).joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def _shard(self, shard: int | None) -> int:
        chosen = self.shard if shard is None else shard
        if chosen is None:
            raise ValueError("a whole-data-set step must name the shard")
        return chosen

    def write_vectors(self, name: str, array: np.ndarray, shard: int | None = None) -> None:
        """Store dense vectors for this stage's output rows (same row order)."""
        manifest.write_vectors(
            array, manifest.vectors_path(self.workdir, self.stage, name, self._shard(shard))
        )

    def read_vectors(self, stage: str, name: str, shard: int | None = None) -> np.ndarray:
        """Vectors an earlier stage stored; rows line up because stages never reorder rows."""
        return manifest.read_vectors(self.workdir, stage, name, self._shard(shard))


class Stage(ABC):
    """Common parts of both stage kinds. Subclasses set ``name``, ``Config`` and ``default_input``."""

    name: ClassVar[str]
    Config: ClassVar[type]
    default_input: ClassVar[str | None] = None  # the stage read when none before it was run
    version: ClassVar[int] = 1  # bump when the same input and config give a different output

    @classmethod
    def code_version(cls, config: Any) -> int:
        """The code version recorded in lineage for a run with ``config``: ``version``, unless a stage
        knows that a bump left the output of this config unchanged (so nothing downstream is redone)."""
        return cls.version

    def __init__(self, config: Any) -> None:
        self.config = config
        # the settings the user named (flags, pipeline keys), the rest being defaults (curate.stageplan);
        # None for a stage built in code from a whole config, where that is not known
        self.given_settings: frozenset[str] | None = None

    def reads(self) -> list[str]:
        """Stages read besides the input (e.g. stored vectors): part of this stage's lineage."""
        return []

    def read_files(self, workdir: Path) -> list[Path]:
        """Other files the output depends on (e.g. a candidates list): their checksums join the lineage."""
        return []

    def plan(self, workdir: Path, n_shards: int) -> dict[int, pa.Table] | None:
        """For a stage that starts from outside data: its input rows per shard. Others return None."""
        return None

    def check_input(self, workdir: Path, input_stage: str | None) -> None:
        """Preflight, before any shard runs: raise ConfigError when the input lacks what this stage needs.

        Called once per run, in the driver, after every stage it reads is known to be complete. A stage
        that needs more than its rows (vectors by name, hash or crop columns, a decisions store) checks
        here and names the option of the stage that produces it (helpers in :mod:`curate.preflight`).
        """
        return None

    def vectors_written(self) -> list[str]:
        """Names of the vectors this stage's config makes it store (for later stages' plan checks)."""
        return []

    def check_plan(self, earlier: dict[str, Stage]) -> None:
        """A pipeline's preflight, before anything runs: raise ConfigError when a stage listed before this
        one (``earlier``, by name) is configured not to produce what this one reads from it."""
        return None


class ShardStage(Stage):
    """A stage whose work is independent per shard (so per identity)."""

    @abstractmethod
    def run_shard(self, table: pa.Table, ctx: StageContext) -> pa.Table:
        """Return ``table`` with this stage's columns added; same rows, same order."""


class GlobalStage(Stage):
    """A single-task step that needs the whole data set (a faiss index, a cross-identity classifier)."""

    @abstractmethod
    def run_all(self, tables: dict[int, pa.Table], ctx: StageContext) -> dict[int, pa.Table]:
        """Return every shard's table with this stage's columns added; same rows, same order."""


def local_context(workdir: Path, stage: str, shard: int | None = 0, n_shards: int = 1) -> StageContext:
    """A context for calling a stage directly (tests, notebooks) without the executor."""
    return StageContext(workdir=Path(workdir), stage=stage, n_shards=n_shards, shard=shard)
