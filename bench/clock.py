"""Wall and CPU time of a block, CPU counted over this process and all its descendants (benchmark helper).

On a shared machine wall time mostly measures the other jobs; CPU time measures the work. Descendants that
are still alive are read directly, finished ones through their parent's ``children_*`` times.
"""

from __future__ import annotations

import time

import psutil


def tree_cpu() -> float:
    """CPU seconds of this process and every live descendant (reaped ones are in their parent's total)."""
    total = 0.0
    for process in [psutil.Process(), *psutil.Process().children(recursive=True)]:
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue  # ended while being listed
        total += times.user + times.system + times.children_user + times.children_system
    return total


class Clock:
    """Wall and CPU seconds (this process tree) of a block."""

    def __enter__(self) -> Clock:
        self.wall, self.cpu = time.perf_counter(), tree_cpu()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall, self.cpu = time.perf_counter() - self.wall, tree_cpu() - self.cpu
