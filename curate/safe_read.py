"""Reading an untrusted file's bytes without ever raising or blocking (what collect reads before decoding).

A FIFO cannot hang the reader (the file is opened non-blocking), anything but a regular file or a file over
the byte limit comes back as ``unsafe_input`` with a reason, and an unreadable file as ``failed_decode``.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from curate.constants import DEFAULT_MAX_BYTES
from curate.record import Status


@dataclass(frozen=True)
class FileRead:
    """The bytes of one file, or why there are none (``status`` is ``ok`` when ``data`` is set)."""

    data: bytes | None
    status: Status
    reason: str


def read_file(path: str | Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> FileRead:
    """Read a regular file's bytes without ever raising or blocking.

    Opens non-blocking, so a FIFO cannot hang the caller; anything but a regular file, an unreadable file
    (``unreadable: permission denied``) or a file over ``max_bytes`` comes back with a status and reason.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        return FileRead(None, Status.FAILED_DECODE, _unreadable(exc))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return FileRead(None, Status.UNSAFE_INPUT, f"not a regular file ({_file_kind(info.st_mode)})")
        if info.st_size > max_bytes:
            reason = f"file too large: {info.st_size:,} bytes > limit {max_bytes:,}"
            return FileRead(None, Status.UNSAFE_INPUT, reason)
        data = _read_all(fd, max_bytes + 1)
    except OSError as exc:
        return FileRead(None, Status.FAILED_DECODE, _unreadable(exc))
    finally:
        os.close(fd)
    if len(data) > max_bytes:  # the file grew after fstat
        return FileRead(None, Status.UNSAFE_INPUT, f"file too large: over {max_bytes:,} bytes")
    return FileRead(data, Status.OK, "")


def _read_all(fd: int, limit: int) -> bytes:
    chunks: list[bytes] = []
    remaining = limit
    while remaining > 0:
        chunk = os.read(fd, min(remaining, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _unreadable(exc: OSError) -> str:
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "unreadable: permission denied"
    if exc.errno == errno.ENOENT:
        return "unreadable: file not found"
    if exc.errno == errno.ELOOP:
        return "unreadable: symlink loop"
    return f"unreadable: {exc.strerror or exc}"


def _file_kind(mode: int) -> str:
    kinds: dict[Callable[[int], bool], str] = {
        stat.S_ISDIR: "directory",
        stat.S_ISFIFO: "named pipe",
        stat.S_ISSOCK: "socket",
        stat.S_ISCHR: "character device",
        stat.S_ISBLK: "block device",
    }
    return next((name for test, name in kinds.items() if test(mode)), "special file")
