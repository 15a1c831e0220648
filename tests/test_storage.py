"""curate.storage: atomic writes survive a crash mid-write; the content store dedups; paths are stable."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from curate import manifest, storage
from curate.envcheck import TEMP_FILE, remove_temp_files
from curate.storage import ContentStore, atomic_open, atomic_path, atomic_write_bytes, atomic_write_json

REPO = Path(__file__).resolve().parents[1]
PHOTO = REPO.parent / "shared" / "data"


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_writer_that_raises_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    atomic_write_json(target, {"v": 1})
    with pytest.raises(RuntimeError), atomic_open(target) as handle:
        handle.write(b'{"v": 2, "half')
        raise RuntimeError("disk gave up")
    assert target.read_text() == '{\n "v": 1\n}\n'
    assert _leftovers(tmp_path) == []


def test_writer_that_raises_on_a_new_file_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "table.parquet"
    with pytest.raises(ValueError), atomic_path(target) as tmp:
        tmp.write_bytes(b"PAR1 partial")
        raise ValueError("schema mismatch")
    assert not target.exists()
    assert _leftovers(target.parent) == []


def test_killed_writer_leaves_old_file_and_a_removable_temporary(tmp_path: Path) -> None:
    """SIGKILL a process in the middle of a streaming write: the old content stays under the final name."""
    target = tmp_path / "vectors.npy"
    manifest.write_vectors(np.arange(6, dtype=np.float32), target)
    script = textwrap.dedent(
        f"""
        import sys, time
        from curate.storage import atomic_open
        with atomic_open({str(target)!r}) as handle:
            handle.write(b"x" * 65536)
            handle.flush()
            print("half", flush=True)
            time.sleep(60)
            handle.write(b"never")
        """
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, env=env)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == b"half"
        leftovers = _leftovers(tmp_path)
        assert len(leftovers) == 1 and TEMP_FILE.match(leftovers[0])
        assert (tmp_path / leftovers[0]).stat().st_size == 65536  # the write really was under way
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    np.testing.assert_array_equal(np.load(target), np.arange(6, dtype=np.float32))
    assert remove_temp_files(tmp_path) == 1
    assert _leftovers(tmp_path) == []


def test_parquet_shard_replaced_whole(tmp_path: Path) -> None:
    path = manifest.shard_path(tmp_path, "collect", 3)
    manifest.write_shard(pa.table({"a": [1, 2]}), path)
    manifest.write_shard(pa.table({"a": [7, 8, 9]}), path)
    assert manifest.read_shard(path).column("a").to_pylist() == [7, 8, 9]
    assert _leftovers(path.parent) == []


def test_store_dedups_by_content_with_stable_paths(tmp_path: Path) -> None:
    photo = next(iter(sorted(PHOTO.rglob("*.jpg"))), None) if PHOTO.is_dir() else None
    data = photo.read_bytes() if photo is not None else b"\xff\xd8 a jpeg-ish payload"
    store = ContentStore(tmp_path / "store")
    first = store.put(data, ".jpg")
    mtime = first.stat().st_mtime_ns
    second = ContentStore(tmp_path / "store").put(data, ".jpg")
    digest = hashlib.sha256(data).hexdigest()
    assert first == second == tmp_path / "store" / digest[:2] / f"{digest}.jpg"
    assert second.stat().st_mtime_ns == mtime  # not written again
    assert first.read_bytes() == data
    other = store.put(data + b"\0", ".jpg")
    assert other != first and other.read_bytes() == data + b"\0"
    assert sorted(p.name for p in (tmp_path / "store").rglob("*") if p.is_file()) == sorted(
        [first.name, other.name]
    )
    assert store.has(digest, ".jpg") and not store.has(digest, ".png") and not store.has("", ".jpg")


def test_store_keyed_cache_and_bad_keys(tmp_path: Path) -> None:
    store = ContentStore(tmp_path)
    key = hashlib.sha1(b"source image").hexdigest()
    path = store.put(b"thumbnail bytes", ".jpg", key=key)
    assert path == tmp_path / key[:2] / f"{key}.jpg"
    for bad in ("../../etc/passwd", "AB12", "", "x"):
        with pytest.raises(ValueError, match="not a lowercase hex digest"):
            store.path_for(bad, ".jpg")


def test_workdir_layout_is_stable(tmp_path: Path) -> None:
    w = tmp_path
    assert storage.shard_path(w, "faces", 7) == w / "faces" / "00007.parquet"
    vectors = w / "describe" / "_vectors" / "dlib" / "00002.npy"
    assert storage.vectors_path(w, "describe", "dlib", 2) == vectors
    assert storage.marker_path(w, "rank", 12) == w / "rank" / "_done" / "00012"
    assert storage.stats_path(w, "rank", 1) == w / "rank" / "_stats" / "00001.json"
    assert storage.log_path(w, "rank", "00001") == w / "rank" / "_logs" / "00001.log"
    assert storage.input_path(w, "collect", 0) == w / "collect" / "_input" / "00000.parquet"
    assert storage.staged_path(w, "dedup", 4) == w / "dedup" / "_staged" / "00004.parquet"
    assert storage.success_path(w, "dedup") == w / "dedup" / "_SUCCESS"
    assert storage.config_path(w, "faces") == w / "faces" / "_config.json"
    assert storage.store_dir(w) == w / "store" and storage.crops_dir(w) == w / "crops"
    assert (w / storage.WORKDIR_FILE).name == "_curate.json"
    # the names other modules know them by are the same functions
    assert manifest.shard_path is storage.shard_path


def test_atomic_write_bytes_creates_folders(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "c.bin"
    atomic_write_bytes(target, b"abc")
    assert target.read_bytes() == b"abc" and _leftovers(target.parent) == []
