"""The workdir on disk: where every file goes, the one atomic write, and the content-addressed store.

Paths. One stage's output (names starting with ``_`` or ``.`` are invisible to Parquet readers, so
``pandas.read_parquet("<workdir>/<stage>")`` sees exactly the manifest)::

    <workdir>/_curate.json                              shard count, fixed by the first run
    <workdir>/<stage>/<shard:05d>.parquet               the manifest shards
    <workdir>/<stage>/_vectors/<name>/<shard:05d>.npy   dense vectors, same row order as the shard
    <workdir>/<stage>/_stats/<shard:05d>.json           per-shard counts and timings
    <workdir>/<stage>/_logs/<shard:05d>.log             per-shard log
    <workdir>/<stage>/_done/<shard:05d>                 marker: rows, checksums, lineage; written last
    <workdir>/<stage>/_config.json                      the resolved stage config
    <workdir>/<stage>/_input/<shard:05d>.parquet        a source stage's planned input rows
    <workdir>/<stage>/_staged/<shard:05d>.parquet       a global stage's shards until all are written
    <workdir>/<stage>/_SUCCESS                          every shard verified and current
    <workdir>/store/, crops/                            content-addressed downloads and aligned crops
    <workdir>/_review/                                  review decisions, exports and thumbnails

Atomic write. Every file curate writes goes through :func:`atomic_path` (or the helpers built on it): the
bytes go to ``.<name>.<pid>-<random>.tmp`` in the target's folder, are flushed and ``fsync``-ed, the file is
renamed over the target (``os.replace``) and the folder is ``fsync``-ed, so a reader (or a run after a
crash or power loss) sees the old file or the whole new one, never part of one. A writer that raises leaves
no temporary file; one that is killed leaves a ``.tmp`` file that :mod:`curate.envcheck` removes.

Store. :class:`ContentStore` keeps files under ``<root>/<key[:2]>/<key><ext>``, where the key is the sha256 of
the bytes (downloads, face crops) or of what they were made from (caches of derived images).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

WORKDIR_FILE = "_curate.json"
SUCCESS_FILE = "_SUCCESS"
CONFIG_FILE = "_config.json"
STORE_DIR = "store"
CROPS_DIR = "crops"
REVIEW_DIR = "_review"


def shard_name(shard: int) -> str:
    """``00042``: the zero-padded shard number used in every per-shard file name."""
    return f"{shard:05d}"


def stage_dir(workdir: Path, stage: str) -> Path:
    """The folder that holds a stage's manifest."""
    return Path(workdir) / stage


def shard_path(workdir: Path, stage: str, shard: int) -> Path:
    """The Parquet file of one shard of a stage."""
    return stage_dir(workdir, stage) / f"{shard_name(shard)}.parquet"


def vectors_dir(workdir: Path, stage: str) -> Path:
    """The folder holding one sub-folder of ``.npy`` shards per vector name."""
    return stage_dir(workdir, stage) / "_vectors"


def vectors_path(workdir: Path, stage: str, name: str, shard: int) -> Path:
    """The ``.npy`` file of one shard's dense vectors (row order = the shard's row order)."""
    return vectors_dir(workdir, stage) / name / f"{shard_name(shard)}.npy"


def done_dir(workdir: Path, stage: str) -> Path:
    """The folder of a stage's completion markers."""
    return stage_dir(workdir, stage) / "_done"


def marker_path(workdir: Path, stage: str, shard: int) -> Path:
    """The completion marker of one shard."""
    return done_dir(workdir, stage) / shard_name(shard)


def staged_path(workdir: Path, stage: str, shard: int) -> Path:
    """Where a global stage writes a shard aside until every shard is written."""
    return stage_dir(workdir, stage) / "_staged" / f"{shard_name(shard)}.parquet"


def success_path(workdir: Path, stage: str) -> Path:
    """The file that says a stage is complete: every shard verified and made from what is there now."""
    return stage_dir(workdir, stage) / SUCCESS_FILE


def config_path(workdir: Path, stage: str) -> Path:
    """The resolved config a stage last ran with."""
    return stage_dir(workdir, stage) / CONFIG_FILE


def stats_path(workdir: Path, stage: str, shard: int) -> Path:
    """The per-shard stats JSON."""
    return stage_dir(workdir, stage) / "_stats" / f"{shard_name(shard)}.json"


def log_path(workdir: Path, stage: str, name: str) -> Path:
    """The log of one task (``name`` is the shard name, or ``all`` for a global stage)."""
    return stage_dir(workdir, stage) / "_logs" / f"{name}.log"


def input_path(workdir: Path, stage: str, shard: int) -> Path:
    """Where a source stage's planned input rows for one shard are kept."""
    return stage_dir(workdir, stage) / "_input" / f"{shard_name(shard)}.parquet"


def store_dir(workdir: Path) -> Path:
    """The content-addressed store of downloaded images."""
    return Path(workdir) / STORE_DIR


def crops_dir(workdir: Path) -> Path:
    """The content-addressed store of aligned face crops."""
    return Path(workdir) / CROPS_DIR


def review_dir(workdir: Path) -> Path:
    """The review's folder: decisions, exports, thumbnails."""
    return Path(workdir) / REVIEW_DIR


def temp_path(path: Path) -> Path:
    """A fresh temporary name beside ``path``: ``.<name>.<pid>-<random>.tmp`` (see curate.envcheck)."""
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (a no-op where the file system cannot sync folders)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as error:
        if error.errno not in (errno.EINVAL, errno.EBADF, errno.ENOTSUP):
            raise
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path to write ``path``'s new content to; on success make it ``path`` atomically.

    For writers that take a file name (``pyarrow.parquet.write_table``, ``PIL.Image.save`` with an explicit
    format, ``torch.save``). On exit the temporary file is fsync-ed, renamed over ``path`` and the folder
    fsync-ed; if the body raises, the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        yield tmp
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


@contextmanager
def atomic_open(path: Path, mode: str = "wb", **kwargs: Any) -> Iterator[IO[Any]]:
    """An open file whose content replaces ``path`` atomically when the block ends without an error."""
    with atomic_path(path) as tmp, open(tmp, mode, **kwargs) as handle:
        yield handle
        handle.flush()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically and durably."""
    with atomic_open(path, "wb") as handle:
        handle.write(data)


def atomic_write_text(path: Path, text: str, encoding: str = "utf-8") -> None:
    """Replace ``path`` with ``text`` atomically and durably."""
    atomic_write_bytes(path, text.encode(encoding))


def atomic_write_json(path: Path, value: Any, indent: int | None = 1) -> None:
    """Replace ``path`` with ``value`` as JSON (keys sorted, trailing newline) atomically and durably."""
    atomic_write_text(path, json.dumps(value, indent=indent, sort_keys=True) + "\n")


def atomic_move(source: Path, target: Path) -> None:
    """Rename a finished file into place and make the rename durable in both folders."""
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(source, target)
    fsync_dir(target.parent)
    if source.parent != target.parent:
        fsync_dir(source.parent)


class ContentStore:
    """Files under one root named by a hex key: ``<root>/<key[:2]>/<key><extension>``.

    The key is the sha256 of the bytes (:meth:`put` computes it when none is given) or, for a cache of
    derived files, the sha256 of what they were made from. A file that exists is complete (it was written
    through :func:`atomic_write_bytes`), so a key found is never written again.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path_for(self, key: str, extension: str = "") -> Path:
        """Where the file with this key lives."""
        if len(key) < 3 or not all(c in "0123456789abcdef" for c in key):
            raise ValueError(f"store key {key!r} is not a lowercase hex digest")
        return self.root / key[:2] / f"{key}{extension}"

    def has(self, key: str, extension: str = "") -> bool:
        """Is this key stored (False for a key that is not a digest)?"""
        try:
            return self.path_for(key, extension).is_file()
        except ValueError:
            return False

    def put(self, data: bytes, extension: str = "", key: str | None = None) -> Path:
        """Store ``data`` under ``key`` (default: its sha256) unless it is there already; return its path."""
        target = self.path_for(key or hashlib.sha256(data).hexdigest(), extension)
        if not target.is_file():
            atomic_write_bytes(target, data)
        return target
