"""Ctrl-C and SIGTERM: stop the work, shut the workers down quietly, say how to resume, exit 130 / 143.

The CLI installs :func:`install_handlers`: the first SIGINT or SIGTERM raises :class:`Interrupted` in the
main thread (a ``KeyboardInterrupt``, so no ``except Exception`` swallows it) and later ones are ignored
while the run shuts down. Worker processes of a local cluster ignore SIGINT (this module is their dask
preload, :func:`dask_setup`), so a Ctrl-C to the terminal's process group stops the driver, which then
closes the workers, instead of every worker dying with its own traceback.
"""

from __future__ import annotations

import logging
import signal
from types import FrameType

logger = logging.getLogger(__name__)

EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}  # 128 + signal number, as shells report them


class Interrupted(KeyboardInterrupt):
    """Raised in the main thread by the first SIGINT/SIGTERM."""

    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        """130 for SIGINT, 143 for SIGTERM."""
        return EXIT_CODES.get(signal.Signals(self.signum), 128 + self.signum)


class RunInterrupted(Exception):
    """A run stopped by a signal, with the one line to print and the exit code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _on_signal(signum: int, frame: FrameType | None) -> None:
    for other in EXIT_CODES:  # shutting down now: a second Ctrl-C must not interrupt the clean-up
        signal.signal(other, signal.SIG_IGN)
    raise Interrupted(signum)


def install_handlers() -> None:
    """Make SIGINT and SIGTERM raise :class:`Interrupted` in the main thread."""
    for signum in EXIT_CODES:
        signal.signal(signum, _on_signal)


def exit_code_of(error: KeyboardInterrupt) -> int:
    """The exit status for an interrupt: 143 after SIGTERM, else 130."""
    return error.exit_code if isinstance(error, Interrupted) else 130


def quiet_dask_logs() -> None:
    """Silence dask's shutdown chatter (workers killed mid-task, cancelled futures) in this process."""
    for name in ("distributed", "tornado", "asyncio"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def dask_setup(worker: object) -> None:
    """Worker preload (``preload=["curate.interrupts"]``): a worker ignores Ctrl-C; its driver stops it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
