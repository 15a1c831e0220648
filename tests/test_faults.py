"""Faults: a killed run resumes to the same output; a dead worker loses nothing; real dask processes agree."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from dask_processes import start_dask, start_scheduler, stop

from curate import manifest
from curate.executor import Executor, ExecutorOptions, finished_shards
from curate.pipeline import StageSpec, build_stage

SHARDS = 16


def _cfp_subset(data_dir: Path, dest: Path, identities: int) -> Path:
    """Copy the first ``identities`` CFP identity folders into a scratch tree (never into the repo)."""
    images = data_dir / "cfp" / "Data" / "Images"
    for folder in sorted(images.iterdir())[:identities]:
        shutil.copytree(folder, dest / folder.name)
    return dest


def _curate(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "curate", *args], start_new_session=True, **kwargs)


def _manifest_frame(workdir: Path, stage: str = "collect") -> pd.DataFrame:
    frame = manifest.read_stage(workdir, stage).to_pandas()
    return frame.sort_values("source").reset_index(drop=True)


def _wait_for_markers(workdir: Path, stage: str, at_least: int, timeout: float = 120) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        count = len(finished_shards(workdir, stage, SHARDS))
        if count >= at_least:
            return count
        time.sleep(0.02)
    raise AssertionError(f"no {at_least} finished shards within {timeout}s")


@pytest.fixture(scope="module")
def tree(data_dir, tmp_path_factory) -> Path:
    return _cfp_subset(data_dir, tmp_path_factory.mktemp("cfp") / "images", identities=120)


@pytest.fixture(scope="module")
def reference(tree, tmp_path_factory) -> pd.DataFrame:
    """An uninterrupted run of the collect stage, the output every faulty run must reproduce."""
    workdir = tmp_path_factory.mktemp("reference")
    done = _curate("-w", str(workdir), "--shards", str(SHARDS), "--workers", "2", "collect", str(tree))
    assert done.wait(timeout=300) == 0
    return _manifest_frame(workdir)


def test_sigkilled_run_resumes_to_the_same_manifest(tree, reference, tmp_path):
    workdir = tmp_path / "killed"
    run = _curate("-w", str(workdir), "--shards", str(SHARDS), "--workers", "1", "collect", str(tree))
    finished = _wait_for_markers(workdir, "collect", at_least=2)
    os.killpg(run.pid, signal.SIGKILL)  # driver, scheduler and worker processes, with no chance to clean up
    run.wait()
    partial = len(finished_shards(workdir, "collect", SHARDS))
    assert finished <= partial < SHARDS, "the kill must land part-way for this test to mean anything"
    resumed = _curate(
        "-w", str(workdir), "collect", str(tree), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    output = resumed.communicate(timeout=300)[0].decode()
    assert resumed.returncode == 0, output
    assert len(finished_shards(workdir, "collect", SHARDS)) == SHARDS
    pd.testing.assert_frame_equal(_manifest_frame(workdir), reference)
    runs = [json.loads(p.read_text())["pid"] for p in (workdir / "collect" / "_stats").glob("*.json")]
    assert len(set(runs)) >= 2, "finished shards were kept, the rest redone by the second run"


def test_worker_killed_mid_run_loses_nothing(tree, reference, tmp_path):
    workdir = tmp_path / "worker-killed"
    stage = build_stage(StageSpec("collect", {"source": str(tree)}))
    options = ExecutorOptions(workers=2, processes=True)
    with Executor(options) as executor:
        pids = executor.client.run(os.getpid)
        outcome: dict[str, object] = {}

        def run() -> None:
            try:
                outcome["result"] = executor.run_stage(stage, workdir, SHARDS, None)
            except BaseException as error:  # surfaced by the assertion below
                outcome["error"] = error

        thread = threading.Thread(target=run)
        thread.start()
        _wait_for_markers(workdir, "collect", at_least=1)
        victim = next(iter(pids.values()))
        os.kill(victim, signal.SIGKILL)
        thread.join(timeout=300)
    assert "error" not in outcome, outcome.get("error")
    assert len(finished_shards(workdir, "collect", SHARDS)) == SHARDS
    pd.testing.assert_frame_equal(_manifest_frame(workdir), reference)


def test_real_scheduler_and_worker_processes_match_local_run(tree, reference, tmp_path):
    scheduler, address = start_scheduler(tmp_path / "scheduler.json")
    worker = None
    try:
        assert address.startswith("tcp://127.0.0.1:")
        worker = start_dask("worker", address, "--nworkers", "2", "--nthreads", "1", "--no-dashboard")
        workdir = tmp_path / "remote"
        env = {**os.environ, "CURATE_SCHEDULER": address}
        run = _curate(
            "-w",
            str(workdir),
            "--shards",
            str(SHARDS),
            "collect",
            str(tree),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        output = run.communicate(timeout=300)[0].decode()
        assert run.returncode == 0, output
        hosts = {json.loads(p.read_text())["pid"] for p in (workdir / "collect" / "_stats").glob("*.json")}
        assert run.pid not in hosts  # the work ran in the dask worker processes
        pd.testing.assert_frame_equal(_manifest_frame(workdir), reference)
    finally:
        for process in (worker, scheduler):
            stop(process)
