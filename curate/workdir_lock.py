"""One writer per workdir: an advisory lock held for the whole of a writing command.

The lock is ``flock`` on ``<workdir>/.curate.lock`` (a dot file, invisible to Parquet readers). The kernel
drops it when its process ends, however it ends, so a lock left by a killed run is simply free again; the
file still names that run (pid, command, start time), which is how a later run knows it is taking over
and sweeps the temporary files the killed run left. A second writer fails at once with one line naming
the holder. Readers (``curate status``, pandas/duckdb on the Parquet files) never take the lock.

The lock is re-entrant within a process: the CLI takes it for the whole command, and library calls inside
(``run_specs``) that take it again just count.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shlex
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from curate.envcheck import remove_temp_files
from curate.errors import CurateError

logger = logging.getLogger(__name__)

LOCK_FILE = ".curate.lock"


class WorkdirBusy(CurateError):
    """Another process holds the workdir's lock."""


@dataclass
class _Held:
    fd: int
    count: int


_HELD: dict[Path, _Held] = {}


def _read_holder(fd: int) -> dict:
    try:
        text = os.pread(fd, 65536, 0).decode("utf-8", "replace")
        return json.loads(text) if text.strip() else {}
    except (OSError, ValueError):
        return {}


def _describe(holder: dict) -> str:
    if not holder:
        return "a process that is just starting"
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder.get("started", 0)))
    return f"pid {holder.get('pid')} ('{holder.get('command', '?')}', started {started})"


def _acquire(workdir: Path, command: str) -> int:
    fd = os.open(workdir / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _read_holder(fd)
        os.close(fd)
        raise WorkdirBusy(
            f"workdir {workdir} is in use by {_describe(holder)}; wait for it to finish "
            "or use another --workdir"
        ) from None
    previous = _read_holder(fd)
    if previous:  # a clean release empties the file: this one was killed while it held the lock
        logger.warning(
            "taking over workdir %s from %s, which ended without releasing it", workdir, _describe(previous)
        )
        remove_temp_files(workdir)
    info = {"pid": os.getpid(), "command": command, "started": time.time(), "host": os.uname().nodename}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(info).encode(), 0)
    return fd


def _release(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)


def command_line() -> str:
    """This process's command line, for the lock file (shortened)."""
    text = " ".join(shlex.quote(a) for a in [Path(sys.argv[0]).name, *sys.argv[1:]])
    return text if len(text) <= 200 else text[:197] + "..."


@contextlib.contextmanager
def hold_workdir(workdir: Path, command: str | None = None) -> Iterator[None]:
    """Hold ``workdir``'s writer lock for the block; raise :class:`WorkdirBusy` if another process has it."""
    key = Path(workdir).resolve()
    held = _HELD.get(key)
    if held is not None:
        held.count += 1
    else:
        held = _HELD[key] = _Held(_acquire(key, command or command_line()), 1)
    try:
        yield
    finally:
        held.count -= 1
        if held.count == 0:
            del _HELD[key]
            _release(held.fd)


def holds(workdir: Path) -> bool:
    """Whether this process holds ``workdir``'s lock."""
    return Path(workdir).resolve() in _HELD
