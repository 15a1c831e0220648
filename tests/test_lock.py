"""One writer per workdir (issue 9 item 4): real CLI processes racing, a SIGKILLed holder, readers."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from httpserver import CaseServer, small_cfp_jpegs

from curate.executor import finished_shards
from curate.workdir_lock import LOCK_FILE

SHARDS = 8
IDENTITIES = 100  # 1,400 CFP images: a collect that runs a few seconds in-process


def _curate(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "curate", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _holder(workdir: Path) -> dict:
    path = workdir / LOCK_FILE
    text = path.read_text() if path.exists() else ""
    return json.loads(text) if text.strip() else {}


def _wait_for(condition, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(0.02)


@pytest.fixture(scope="module")
def tree(data_dir, tmp_path_factory) -> Path:
    dest = tmp_path_factory.mktemp("cfp") / "images"
    for folder in sorted((data_dir / "cfp" / "Data" / "Images").iterdir())[:IDENTITIES]:
        shutil.copytree(folder, dest / folder.name)
    return dest


@pytest.fixture(scope="module")
def finished(tree, tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("finished")
    run = _curate("-w", str(workdir), "--shards", str(SHARDS), "collect", str(tree))
    assert run.wait(timeout=300) == 0, run.stderr.read()
    return workdir


@pytest.fixture
def slow_urls(data_dir, tmp_path) -> Iterator[Path]:
    """A URL list on a real 127.0.0.1 server answering each request after 0.5 s: a collect of ~12 s."""
    with CaseServer(small_cfp_jpegs(data_dir, 8), latency_seconds=0.5) as server:
        rows = [f"P{i % 6},{server.url(f'/img/{i}.jpg?n={i}')}" for i in range(24)]
        path = tmp_path / "urls.csv"
        path.write_text("identity,url\n" + "\n".join(rows) + "\n")
        yield path


def test_second_writer_fails_at_once_naming_the_first(slow_urls, tmp_path):
    workdir = tmp_path / "w"
    args = ["collect", str(slow_urls), "--allowed-networks", "127.0.0.0/8", "--concurrency", "1"]
    first = _curate("-w", str(workdir), "--shards", "4", "--workers", "0", *args)
    _wait_for(lambda: _holder(workdir).get("pid") == first.pid)
    started = time.monotonic()
    second = _curate("-w", str(workdir), *args, "--overwrite")
    _, err = second.communicate(timeout=120)
    lines = err.strip().splitlines()
    assert second.returncode == 1 and len(lines) == 1, err
    assert f"in use by pid {first.pid}" in lines[0] and "collect" in lines[0] and "started" in lines[0]
    assert first.poll() is None, "the second command must fail while the first still runs"
    assert time.monotonic() - started < 30
    _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert len(finished_shards(workdir, "collect", 4)) == 4
    frame = pd.read_parquet(workdir / "collect")
    assert len(frame) == 24 and (frame.status == "ok").sum() == 24
    assert _holder(workdir) == {}, "a clean exit releases and empties the lock file"


def test_readers_work_while_a_writer_holds_the_lock(finished, tree):
    hold = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from curate.workdir_lock import hold_workdir\n"
            "with hold_workdir(sys.argv[1], 'test holder'):\n    print('held', flush=True); time.sleep(120)",
            str(finished),
        ],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert hold.stdout.readline().strip() == "held"
        status = subprocess.run(
            [sys.executable, "-m", "curate", "-w", str(finished), "status"], capture_output=True, text=True
        )
        assert status.returncode == 0 and f"{SHARDS}/{SHARDS}" in status.stderr, status.stderr
        assert len(pd.read_parquet(finished / "collect")) == IDENTITIES * 14
        writer = _curate("-w", str(finished), "collect", str(tree))
        _, err = writer.communicate(timeout=120)
        assert writer.returncode == 1 and f"pid {hold.pid} ('test holder'" in err
    finally:
        os.killpg(hold.pid, signal.SIGTERM)
        hold.wait(timeout=30)


def test_lock_of_a_sigkilled_run_is_taken_over(tree, tmp_path):
    workdir = tmp_path / "killed"
    run = _curate("-w", str(workdir), "--shards", str(SHARDS), "--workers", "0", "collect", str(tree))
    _wait_for(lambda: len(finished_shards(workdir, "collect", SHARDS)) >= 1)
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()
    assert _holder(workdir).get("pid") == run.pid, "the killed run's lock file still names it"
    leftover = workdir / "collect" / f".00007.parquet.{run.pid}.tmp"  # what a kill mid-write leaves
    leftover.write_bytes(b"half a parquet file")
    resumed = _curate("-w", str(workdir), "collect", str(tree))
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert "taking over" in err and f"pid {run.pid}" in err
    assert not leftover.exists(), "the killed run's temporary files are swept"
    assert len(finished_shards(workdir, "collect", SHARDS)) == SHARDS
    assert len(pd.read_parquet(workdir / "collect")) == IDENTITIES * 14
