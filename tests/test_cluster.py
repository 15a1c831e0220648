"""The demo pipeline on a real cluster: a ``dask scheduler`` and two ``dask worker`` processes, sharing the
workdir through the filesystem, write the same manifests as a local run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from dask_processes import start_dask, start_scheduler, stop

from curate import manifest
from curate.demo import demo_pipeline_data
from curate.synth import SynthConfig, synthesize

STAGES = ("collect", "exact", "faces", "describe", "rank", "dedup")


def _pipeline(path: Path, images: Path) -> Path:
    """The packaged demo pipeline, pointed at ``images`` (TOML written by hand: it is flat)."""
    data = demo_pipeline_data()
    data["collect"]["source"] = str(images)
    lines = [f"shards = {data['shards']}", f"stages = {json.dumps(data['stages'])}"]
    for stage in data["stages"]:
        lines.append(f"[{stage}]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in data.get(stage, {}).items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def _run(workdir: Path, pipeline: Path, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "curate", "-w", str(workdir), "run", str(pipeline)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def _frame(workdir: Path, stage: str) -> pd.DataFrame:
    frame = manifest.read_stage(workdir, stage).to_pandas()
    if "crop_path" in frame:  # content-addressed under each workdir: compare the address, not the folder
        frame["crop_path"] = frame["crop_path"].map(lambda p: Path(p).name if isinstance(p, str) else p)
    return frame.sort_values("source").reset_index(drop=True)


@pytest.fixture
def scheduler(tmp_path: Path):
    """A scheduler on 127.0.0.1 and two single-threaded worker processes; yields its address."""
    scheduler, address = start_scheduler(tmp_path / "scheduler.json")
    processes = [scheduler]
    try:
        for _ in range(2):
            processes.append(start_dask("worker", address, "--nthreads", "1", "--no-dashboard"))
        yield address
    finally:
        for process in reversed(processes):
            stop(process)


def test_demo_pipeline_on_a_scheduler_matches_the_local_run(scheduler: str, tmp_path: Path) -> None:
    synth = tmp_path / "synth"
    synthesize(SynthConfig(identities=6, images_per_identity=8, heldout_identities=0), synth)
    pipeline = _pipeline(tmp_path / "demo.toml", synth / "images")
    env = {k: v for k, v in os.environ.items() if k != "CURATE_SCHEDULER"}
    _run(tmp_path / "local", pipeline, env)
    _run(tmp_path / "remote", pipeline, {**env, "CURATE_SCHEDULER": scheduler})
    stats = [json.loads(p.read_text()) for p in (tmp_path / "remote" / "faces" / "_stats").glob("*.json")]
    assert len({s["pid"] for s in stats}) >= 1 and os.getpid() not in {s["pid"] for s in stats}
    for stage in STAGES:
        pd.testing.assert_frame_equal(_frame(tmp_path / "remote", stage), _frame(tmp_path / "local", stage))
    assert (_frame(tmp_path / "local", "dedup")["status"] != "ok").any()  # the run removed something
