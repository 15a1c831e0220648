"""Progress bars for every command: one helper, so they look alike and stay plain in logs.

On a terminal, :class:`Bars` is a rich live display on stderr with one bar per name (a stage, an export
step, an epoch). When stderr is not a terminal (a log file, CI, a pipe) nothing is redrawn: a bar prints
one plain line when it completes or is closed, so a log gets a line per stage or epoch rather than
thousands of redraws; transient bars print nothing there. Only rich is imported here, so commands can
build bars without slowing ``curate --help``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

if TYPE_CHECKING:
    from curate.taskprogress import StageProgress

console = Console(stderr=True)


class Bars:
    """Named progress bars: ``update``/``advance`` create a bar on first use, ``close`` removes one.

    ``unit`` follows the counts ("shards"), ``status`` adds a free text per bar (loss and accuracy, items
    per second), ``eta`` shows the time left instead of the time spent, ``enabled=False`` shows nothing.
    """

    def __init__(
        self,
        unit: str = "",
        *,
        status: bool = False,
        eta: bool = False,
        transient: bool = False,
        enabled: bool = True,
        out: Console | None = None,
    ) -> None:
        self.console = out or console
        self.unit, self.transient = unit, transient
        self.enabled = enabled
        self.live = enabled and self.console.is_interactive
        columns: list[ProgressColumn | str] = [
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
        ]
        if unit:
            columns.append(TextColumn(unit))
        if status:
            columns.append(TextColumn("{task.fields[status]}"))
        columns.append(TimeRemainingColumn() if eta else TimeElapsedColumn())
        self._progress = Progress(*columns, console=self.console, transient=transient, disable=not self.live)
        self._bars: dict[str, TaskID] = {}
        self._printed: set[str] = set()

    def __enter__(self) -> Bars:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()
        for name in list(self._bars):
            self._plain_line(name)

    def update(self, name: str, done: float, total: float | None = None, status: str | None = None) -> None:
        """Set bar ``name`` to ``done`` of ``total`` (the bar is created on first use)."""
        task = self._bar(name, total)
        fields: dict[str, Any] = {} if status is None else {"status": status}
        self._progress.update(task, completed=done, total=total, **fields)
        self._after_update(name)

    def advance(self, name: str, n: float = 1, total: float | None = None, status: str | None = None) -> None:
        """Move bar ``name`` on by ``n``."""
        task = self._bar(name, total)
        fields: dict[str, Any] = {} if status is None else {"status": status}
        self._progress.update(task, advance=n, total=total, **fields)
        self._after_update(name)

    def close(self, name: str) -> None:
        """Remove bar ``name`` (its plain line is printed first when stderr is not a terminal)."""
        if name in self._bars:
            self._plain_line(name)
            self._progress.remove_task(self._bars.pop(name))
            self._printed.discard(name)

    def callback(self, name: str) -> Callable[[float, float], None]:
        """``(done, total)`` updates of bar ``name``."""
        return lambda done, total: self.update(name, done, total)

    def stage_callback(self, name: str) -> Callable[[StageProgress], None]:
        """Updates of a stage's bar from :class:`~curate.taskprogress.StageProgress`: shards, items, rate."""

        def update(progress: StageProgress) -> None:
            items = f"{progress.items:,} items, {progress.items_per_s:,.0f}/s" if progress.items else ""
            self.update(name, progress.done, progress.shards_total, status=items)

        return update

    def _bar(self, name: str, total: float | None) -> TaskID:
        if name not in self._bars:
            self._bars[name] = self._progress.add_task(name, total=total, status="")
        return self._bars[name]

    def _task(self, name: str) -> Task:
        return next(task for task in self._progress.tasks if task.id == self._bars[name])

    def _after_update(self, name: str) -> None:
        if self.live or name in self._printed:
            return
        task = self._task(name)
        if task.total is not None and task.completed >= task.total:
            self._plain_line(name)

    def _plain_line(self, name: str) -> None:
        """One line for a bar, once, when stderr is not a terminal (and the bar is not transient)."""
        if self.live or not self.enabled or self.transient or name in self._printed:
            return
        self._printed.add(name)
        task = self._task(name)
        counts = f"{task.completed:g}" if task.total is None else f"{int(task.completed)}/{int(task.total)}"
        parts = [f"{name}: {counts}", self.unit, task.fields.get("status", ""), f"{task.elapsed or 0:.1f} s"]
        self.console.print(" ".join(part for part in parts if part), soft_wrap=True, highlight=False)
