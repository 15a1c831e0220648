"""Ctrl-C and SIGTERM: stop the work, shut the workers down quietly, say how to resume, exit 130 / 143.

The CLI installs :func:`install_handlers`: the first SIGINT or SIGTERM raises :class:`Interrupted` in the
main thread (a ``KeyboardInterrupt``, so no ``except Exception`` swallows it) and later ones are ignored
while the run shuts down. Worker processes of a local cluster ignore SIGINT (this module is their dask
preload, :func:`dask_setup`), so a Ctrl-C to the terminal's process group stops the driver, which then
closes the workers, instead of every worker dying with its own traceback.

A stop always ends the process: a watchdog thread learns of the signal from the interpreter's wakeup file
descriptor (so it hears it even while the main thread is stuck in a call and cannot run the handler), and
if the process is still alive :data:`STOP_GRACE_SECONDS` later it prints the run's stop line (what
:func:`stop_line` registered, which also removes half-written files), where each thread was stuck, and
exits with the signal's code. The next run resumes as after a kill.
"""

from __future__ import annotations

import contextlib
import faulthandler
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from types import FrameType

logger = logging.getLogger(__name__)

EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}  # 128 + signal number, as shells report them
# Clean-up after a stop (closing a cluster, sweeping temporary files) takes seconds; past this it is stuck.
STOP_GRACE_SECONDS = 60.0
GENERIC_STOP_LINE = "interrupted; run the same command to resume"

_stop_lines: list[Callable[[], str]] = []  # innermost last: what the watchdog prints for a stuck stop
_watchdog: threading.Thread | None = None
_received: list[int] = []  # the signal that stopped this process, once one has


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
    _received.append(signum)
    raise Interrupted(signum)


def received_stop() -> int | None:
    """The exit code of the SIGINT/SIGTERM this process received (130 / 143), None while none has come.

    For callers that cannot see the :class:`Interrupted` itself: typer catches an interrupt raised while
    it parses options or runs a command outside the run guard and returns 130 as if it were a result.
    """
    return EXIT_CODES[signal.Signals(_received[0])] if _received else None


def install_handlers() -> None:
    """Make SIGINT and SIGTERM raise :class:`Interrupted` in the main thread; end a stuck stop anyway."""
    for signum in EXIT_CODES:
        signal.signal(signum, _on_signal)
    _start_watchdog()


@contextlib.contextmanager
def stop_line(report: Callable[[], str]) -> Iterator[None]:
    """While the block runs, a stop the watchdog has to end prints ``report()`` (which may tidy up first)."""
    _stop_lines.append(report)
    try:
        yield
    finally:
        _stop_lines.remove(report)


def _start_watchdog() -> None:
    """Start (once per process, from the main thread) the thread that ends a stop stuck in clean-up."""
    global _watchdog
    if _watchdog is not None or threading.current_thread() is not threading.main_thread():
        return
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    _watchdog = threading.Thread(target=_watch, args=(read_fd,), name="curate-stop-watchdog", daemon=True)
    _watchdog.start()


def _watch(read_fd: int) -> None:
    """Wait for SIGINT/SIGTERM (the interpreter writes each caught signal's number), then the grace."""
    while True:
        received = os.read(read_fd, 1)
        if not received:
            return
        if received[0] in EXIT_CODES:
            break
    time.sleep(STOP_GRACE_SECONDS)
    _end_stuck_stop(signal.Signals(received[0]))


def _end_stuck_stop(signum: signal.Signals) -> None:
    """The process outlived the grace after a stop: print its stop line and where it was stuck, then exit."""
    with contextlib.suppress(Exception):  # the stop line reads the workdir, and stderr may be gone
        line = _stop_lines[-1]() if _stop_lines else GENERIC_STOP_LINE
        sys.stderr.write(
            f"{line}\n(clean-up was still running {STOP_GRACE_SECONDS:g} s after the stop and was cut short; "
            "where each thread was:)\n"
        )
        sys.stderr.flush()
        faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
    os._exit(EXIT_CODES[signum])


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
