"""Interrupts (issue 9 item 8): SIGINT/SIGTERM mid-stage stop the workers, say how to resume, exit 130/143.

A stop whose clean-up hangs still ends, after a grace, with its line and the exit code.

The run collects a URL list from a real 127.0.0.1 server that answers each request after a delay, so a
stage is reliably under way when the signal lands. With ``--workers 2`` and a low cluster cost, the slow
shards make the executor move the rest of the stage to a local dask cluster: worker processes to stop.
"""

from __future__ import annotations

import os
import re
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

SHARDS = 8
ROWS = 24
LINE = re.compile(r"^interrupted in collect: (\d) of 8 shards done; run the same command to resume$")


def _group_members(pgid: int) -> list[int]:
    """Live processes (not zombies) whose process group is ``pgid``."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def _on_workers(workdir: Path) -> bool:
    """True once dask workers run shards: the first two shards' logs are the driver's, later ones theirs."""
    return len(list((workdir / "collect" / "_logs").glob("*.log"))) >= 3


def _wait_for(condition, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(0.05)


@pytest.fixture
def slow_urls(data_dir, tmp_path) -> Iterator[Path]:
    with CaseServer(small_cfp_jpegs(data_dir, ROWS), latency_seconds=0.5) as server:
        rows = [f"P{i},{server.url(f'/img/{i}.jpg?n={i}')}" for i in range(ROWS)]
        path = tmp_path / "urls.csv"
        path.write_text("identity,url\n" + "\n".join(rows) + "\n")
        yield path


def _start(workdir: Path, urls: Path, workers: int) -> subprocess.Popen:
    args = ["-w", str(workdir), "--shards", str(SHARDS), "--workers", str(workers), "collect", str(urls)]
    return subprocess.Popen(
        [sys.executable, "-m", "curate", *args, "--allowed-networks", "127.0.0.0/8", "--concurrency", "1"],
        env={**os.environ, "CURATE_CLUSTER_COST": "0.5"},  # move to the cluster after two 1.5 s shards
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )


def _check_stopped(run: subprocess.Popen, code: int) -> None:
    out, err = run.communicate(timeout=120)
    assert run.returncode == code, err
    lines = [line for line in (out + err).splitlines() if LINE.match(line)]
    assert len(lines) == 1, out + err
    for noise in ("Traceback", "CancelledError", "distributed", "still alive", "KeyboardInterrupt"):
        assert noise not in out + err
    _wait_for(lambda: not _group_members(run.pid), timeout=30)  # nothing of the run is left behind


def _check_resumes(workdir: Path, urls: Path) -> None:
    again = _start(workdir, urls, workers=0)
    _, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    assert len(finished_shards(workdir, "collect", SHARDS)) == SHARDS
    frame = pd.read_parquet(workdir / "collect")
    assert len(frame) == ROWS and (frame.status == "ok").all()


def test_sigint_to_the_group_stops_the_cluster_workers(slow_urls, tmp_path):
    workdir = tmp_path / "w"
    run = _start(workdir, slow_urls, workers=2)
    _wait_for(lambda: _on_workers(workdir) and len(_group_members(run.pid)) >= 3)  # driver + 2 workers
    os.killpg(run.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    _check_stopped(run, 130)
    _check_resumes(workdir, slow_urls)


def test_sigterm_to_the_driver_stops_its_workers(slow_urls, tmp_path):
    workdir = tmp_path / "w"
    run = _start(workdir, slow_urls, workers=2)
    _wait_for(lambda: _on_workers(workdir) and len(_group_members(run.pid)) >= 3)  # driver + 2 workers
    os.kill(run.pid, signal.SIGTERM)  # a supervisor stopping the job: only the driver gets it
    _check_stopped(run, 143)
    _check_resumes(workdir, slow_urls)


def test_sigint_in_process_mid_shard(slow_urls, tmp_path):
    workdir = tmp_path / "w"
    run = _start(workdir, slow_urls, workers=0)
    _wait_for(lambda: len(finished_shards(workdir, "collect", SHARDS)) >= 1)
    os.killpg(run.pid, signal.SIGINT)
    _check_stopped(run, 130)
    assert not list(workdir.rglob("*.tmp")), "half-written files are removed"
    _check_resumes(workdir, slow_urls)


STUCK_CLEAN_UP = """
import time
from curate import interrupts

interrupts.STOP_GRACE_SECONDS = 1.0
interrupts.install_handlers()
line = "interrupted in collect: 1 of 8 shards done; run the same command to resume"
with interrupts.stop_line(lambda: line):
    try:
        print("working", flush=True)
        time.sleep(60)
    except KeyboardInterrupt:
        while True:  # a clean-up that never ends
            time.sleep(0.05)
"""


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_stop_stuck_in_clean_up_still_ends_with_its_line(signum, code):
    run = subprocess.Popen(
        [sys.executable, "-c", STUCK_CLEAN_UP], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert run.stdout is not None and run.stdout.readline() == "working\n"
    started = time.monotonic()
    run.send_signal(signum)
    _, err = run.communicate(timeout=30)
    assert run.returncode == code
    assert time.monotonic() - started < 15  # the grace (1 s here), not the clean-up's endless loop
    assert sum(bool(LINE.match(line)) for line in err.splitlines()) == 1, err
    assert "cut short" in err
    assert "in <module>" in err, err  # where the main thread was stuck


def _catches_sigterm(pid: int) -> bool:
    """Whether process ``pid`` handles SIGTERM (curate installs its handlers before parsing options)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) >> (signal.SIGTERM - 1) & 1)
    return False


def test_an_interrupt_outside_a_run_guard_exits_130_not_0(tmp_path):
    """typer catches an interrupt in a command without the run guard (here synth, drawing its faces) and
    returns 130 as a value; the CLI used to end with status 0 and print nothing, so a script took a partial
    result for a whole one."""
    args = ["synth", str(tmp_path / "collection"), "--identities", "300", "--images-per-identity", "40"]
    run = subprocess.Popen(
        [sys.executable, "-m", "curate", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    _wait_for(lambda: _catches_sigterm(run.pid))
    time.sleep(0.5)  # into the command
    run.send_signal(signal.SIGINT)
    _, err = run.communicate(timeout=120)
    assert run.returncode == 130, err
    assert "interrupted; run the same command to resume" in err
