"""The workdir's environment: checked before work starts, and OS errors turned into one line with a fix.

:func:`check_workdir` runs before any cluster starts: a workdir that is a file, a folder that cannot be
created or read, a read-only or unwritable folder (reported, so a finished pipeline can still be confirmed
from it), a nearly full disk. :func:`os_error_message` names the path and the fix for errors that only show
up mid-run (disk full, file too large, permissions); :func:`remove_temp_files` deletes the half-written
``.<name>.tmp`` files a failed or killed run left (safe while this process holds the workdir lock).
:class:`QuietFileHandler` is a log file handler that stops after its first failed write instead of
printing a traceback for every record when the disk is full.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from curate.errors import CurateError
from curate.storage import WORKDIR_FILE

logger = logging.getLogger(__name__)

MIN_FREE_BYTES = 256 * 1024  # below this a stage cannot even write its markers and stats
TEMP_FILE = re.compile(r"^\..+\.tmp(\.[a-z0-9]+)?$")  # .<name>.<pid|uuid>.tmp[.ext], see curate.storage
ERRNO_IN_MESSAGE = re.compile(r"\[errno (\d+)\]", re.IGNORECASE)  # pyarrow's OSErrors carry it in text

FIXES = {
    errno.ENOSPC: ("no space left on the device", "free some space or use another --workdir"),
    errno.EDQUOT: ("disk quota exceeded", "free some space or use another --workdir"),
    errno.EFBIG: ("file too large (file size limit)", "raise the limit (ulimit -f) or use another --workdir"),
    errno.EROFS: ("read-only file system", "use a writable --workdir"),
    errno.EACCES: ("no permission", "fix the folder's permissions (chown/chmod) or use another --workdir"),
    errno.EPERM: ("operation not permitted", "fix the folder's permissions or use another --workdir"),
    errno.ENOTDIR: ("a path component is a file, not a folder", "give a folder with --workdir"),
}


@dataclass
class Access:
    """Whether this process can write in the workdir, and why not."""

    workdir: Path
    writable: bool
    reason: str = ""

    def refusal(self, what: str) -> CurateError:
        """The one-line error for ``what`` (work that would need to write) in an unwritable workdir."""
        return CurateError(f"{what}, but workdir {self.workdir} is not writable ({self.reason})")


def error_number(error: OSError) -> int | None:
    """The errno of an OSError, also when (as with pyarrow) it only appears in the message."""
    if error.errno is not None:
        return error.errno
    found = ERRNO_IN_MESSAGE.search(str(error))
    return int(found.group(1)) if found else None


def os_error_message(error: OSError, workdir: Path) -> str | None:
    """One line naming the path and the fix for an environment error; None for other OS errors."""
    number = error_number(error)
    if number not in FIXES:
        return None
    what, fix = FIXES[number]
    path = error.filename or workdir
    message = f"{what} writing {path}"
    if number in (errno.ENOSPC, errno.EDQUOT):
        message += f" ({_free_mib(Path(workdir))} MiB free on its file system)"
    return f"{message}; {fix}, then run the same command to resume"


def _free_mib(workdir: Path) -> str:
    try:
        return f"{shutil.disk_usage(workdir).free / 2**20:.1f}"
    except OSError:
        return "?"


def _probe_write(workdir: Path) -> str:
    """'' if a file can be created in ``workdir``, else why not."""
    probe = workdir / f".curate-probe.{os.getpid()}.tmp"
    try:
        probe.write_bytes(b"")
        probe.unlink()
        return ""
    except OSError as error:
        return FIXES.get(error_number(error) or 0, (error.strerror or str(error), ""))[0]


def check_workdir(workdir: Path, create: bool = True) -> Access:
    """Check ``workdir`` before work starts; raise one line for what no command can work around."""
    workdir = Path(workdir)
    if workdir.exists() and not workdir.is_dir():
        raise CurateError(f"workdir {workdir} is a file, not a folder; give a folder with --workdir")
    if not workdir.exists():
        if not create:
            raise CurateError(f"workdir {workdir} does not exist; check the --workdir path")
        try:
            workdir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            what, fix = FIXES.get(error_number(error) or 0, (error.strerror or str(error), "check the path"))
            raise CurateError(f"cannot create workdir {workdir}: {what}; {fix}") from None
    try:
        os.listdir(workdir)
    except PermissionError:
        raise CurateError(
            f"no permission to read workdir {workdir}; fix its permissions or use another --workdir"
        ) from None
    reason = _probe_write(workdir)
    if not reason and shutil.disk_usage(workdir).free < MIN_FREE_BYTES:
        raise CurateError(
            f"no space left for workdir {workdir} ({_free_mib(workdir)} MiB free); "
            "free some space or use another --workdir"
        )
    return Access(workdir, not reason, reason)


def check_status_workdir(workdir: Path) -> None:
    """For ``curate status``: the workdir must exist, be a folder and hold a run (read-only is fine)."""
    workdir = Path(workdir)
    if not workdir.exists():
        raise CurateError(f"workdir {workdir} does not exist; check the --workdir path")
    if not workdir.is_dir():
        raise CurateError(f"workdir {workdir} is a file, not a folder; give a folder with --workdir")
    if not (workdir / WORKDIR_FILE).exists():
        raise CurateError(f"{workdir} is not a curate workdir (no {WORKDIR_FILE}); run a stage in it first")


def remove_temp_files(workdir: Path) -> int:
    """Delete ``.<name>.tmp`` files under ``workdir`` (half-written outputs); returns how many."""
    removed = 0
    for folder, _dirs, files in os.walk(workdir):
        for name in files:
            if TEMP_FILE.match(name):
                try:
                    os.unlink(os.path.join(folder, name))
                    removed += 1
                except OSError as error:
                    logger.debug("cannot remove %s: %s", name, error)
    if removed:
        logger.info("removed %d temporary file(s) under %s", removed, workdir)
    return removed


class QuietFileHandler(logging.FileHandler):
    """A log file that goes silent after its first failed write (disk full) instead of a traceback each."""

    failed = False

    def handleError(self, record: logging.LogRecord) -> None:
        """Drop this and every later record once writing the log failed."""
        self.failed = True

    def emit(self, record: logging.LogRecord) -> None:
        """Write the record unless an earlier write failed."""
        if not self.failed:
            super().emit(record)
