"""Small inputs run in-process (issue 14): same manifests as the cluster, no cluster started, dask lazy."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from curate import manifest
from curate.executor import ExecutorOptions
from curate.inprocess import worth_a_cluster
from curate.pipeline import parse_pipeline, run_specs

SHARDS = 4
STAGES = ["collect", "exact", "faces", "describe", "dedup", "rank"]


def _pipeline(source: Path):
    return parse_pipeline(
        {
            "stages": STAGES,
            "collect": {"source": str(source)},
            "faces": {"keep_whole_if_no_face": True, "crop_size": 64},
            "describe": {"hashes": ["phash", "dhash"], "embedders": ["handcrafted"]},
            "dedup": {"embedding": "handcrafted"},
            "rank": {"embedder": "handcrafted", "positives": 5, "rounds": 1},
        }
    )


def _frame(workdir: Path, stage: str) -> pd.DataFrame:
    frame = manifest.read_stage(workdir, stage).to_pandas()
    prefix = str(workdir)
    for column in frame.columns:  # absolute paths into the workdir differ between the two runs
        values = frame[column].astype(object)
        if values.map(lambda v: isinstance(v, str) and v.startswith(prefix)).any():
            frame[column] = values.map(lambda v: v.replace(prefix, "<w>") if isinstance(v, str) else v)
    return frame.sort_values("source").reset_index(drop=True)


@pytest.fixture(scope="module")
def runs(data_dir, tmp_path_factory) -> dict[str, Path]:
    source = tmp_path_factory.mktemp("orl")
    for i in range(1, 21):  # 20 of the 40 ORL identities keep the two runs to seconds
        shutil.copytree(data_dir / "orl_faces" / f"s{i}", source / f"s{i}")
    spec = _pipeline(source)
    workdirs = {}
    for mode, options in {
        "inprocess": ExecutorOptions(workers=0),
        "cluster": ExecutorOptions(workers=2, inprocess=False),
    }.items():
        workdir = tmp_path_factory.mktemp(mode)
        run_specs(spec.stages, workdir, options, shards=SHARDS)
        workdirs[mode] = workdir
    return workdirs


@pytest.mark.parametrize("stage", STAGES)
def test_in_process_manifests_equal_the_cluster_ones(runs, stage):
    pd.testing.assert_frame_equal(_frame(runs["inprocess"], stage), _frame(runs["cluster"], stage))


def test_in_process_vectors_equal_the_cluster_ones(runs):
    for shard in range(SHARDS):
        a, b = (
            manifest.read_vectors(runs[m], "describe", "handcrafted", shard) for m in ("inprocess", "cluster")
        )
        np.testing.assert_array_equal(a, b)


def test_where_the_work_ran(runs):
    pids = {
        mode: {json.loads(p.read_text())["pid"] for p in (runs[mode] / "faces" / "_stats").glob("*.json")}
        for mode in runs
    }
    assert len(pids["inprocess"]) == 1, "one process did every shard"
    assert not pids["inprocess"] & pids["cluster"]


def test_a_small_stage_starts_no_cluster_and_imports_no_dask_distributed(data_dir, tmp_path):
    code = (
        "import sys; from curate.cli import main\n"
        "sys.argv = ['curate', '-w', sys.argv[1], 'collect', sys.argv[2]]\n"
        "try:\n    main()\nexcept SystemExit as done:\n    assert not done.code, done.code\n"
        "print('dask.distributed' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "w"), str(data_dir / "orl_faces")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "False"
    assert len(pd.read_parquet(tmp_path / "w" / "collect")) == 401


def test_switch_rule(monkeypatch):
    monkeypatch.setenv("CURATE_CLUSTER_COST", "10")
    # eight shards of a cheap stage (collect of 3,000 photos: ~0.5 s each) stay in-process
    assert not worth_a_cluster(0.5, 6, workers=2)
    # a slow stage (faces: ~30 s a shard) moves the rest to two workers
    assert worth_a_cluster(30.0, 6, workers=2)
    # the cluster must save more than it costs
    assert not worth_a_cluster(9.0, 2, workers=2) and worth_a_cluster(11.0, 2, workers=2)
    # one worker is never faster than in-process
    assert not worth_a_cluster(60.0, 100, workers=1)
