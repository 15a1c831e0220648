"""Defaults agree across stages (issue 13): with no flags but the workdir and collect's folder, collect,
faces, describe, rank, dedup, train and evaluate run in sequence on real photos; a stage whose input lacks
what it needs says, in one line and before any shard runs, which option of which stage produces it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]


def cfp_people(data_dir: Path, root: Path, people: int, per_person: int = 14) -> Path:
    """CFP people 001.. under their names (frontal and profile photos), hard-linked, else copied."""
    names = (data_dir / "cfp" / "Data" / "list_name.txt").read_text().splitlines()
    for k in range(1, people + 1):
        folder = root / names[k - 1].strip()
        folder.mkdir(parents=True)
        photos = sorted((data_dir / "cfp" / "Data" / "Images" / f"{k:03d}").glob("*/*.jpg"))
        for path in photos[:per_person]:
            target = folder / f"{path.parent.name}_{path.name}"
            try:
                os.link(path, target)
            except OSError:  # another file system: a copy, under the test's temporary folder only
                shutil.copyfile(path, target)
    return root


def curate(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    """The CLI in a fresh process, as a user runs it: ``curate -w WORKDIR ARGS``."""
    # one torch thread: on CI's few shared cores, spinning OpenMP threads cost train 3x its CPU time
    env = {"OMP_NUM_THREADS": "1", **os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "250"}
    env.pop("CURATE_SCHEDULER", None)
    return subprocess.run(
        [sys.executable, "-m", "curate", "-w", str(workdir), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


def one_error_line(done: subprocess.CompletedProcess) -> str:
    """The single ``error:`` line of a refused command (exit 1, no traceback anywhere)."""
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr + done.stdout, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    return lines[0]


@pytest.mark.slow
def test_every_stage_runs_with_its_defaults_on_real_photos(data_dir: Path, tmp_path: Path) -> None:
    photos = cfp_people(data_dir, tmp_path / "photos", people=10)
    work = tmp_path / "work"
    for command in (["collect", str(photos)], ["faces"], ["describe"], ["rank"], ["dedup"], ["train"]):
        done = curate(work, *command)
        assert done.returncode == 0, f"{command}: {done.stdout[-2000:]}{done.stderr[-2000:]}"
    described = json.loads((work / "describe" / "_config.json").read_text())
    assert described["input_stage"] == "faces" and "dlib" in described["config"]["embedders"]
    final = pd.read_parquet(work / "dedup")
    assert len(final) == 140 and (final.status == "ok").sum() >= 110  # rank and dedup keep most photos
    assert (work / "train" / "model" / "embedder.json").is_file()
    done = curate(work, "evaluate", "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert report["protocol"] == "workdir" and "seen in training" in report["note"]
    assert report["n_genuine"] == report["n_impostor"] > 100 and 0.5 < report["accuracy_mean"] <= 1.0
    assert report["roc_auc"] > 0.6  # the model trained with defaults tells these people apart (chance: 0.5)


def test_a_missing_input_is_one_line_naming_the_producing_option(data_dir: Path, tmp_path: Path) -> None:
    photos = cfp_people(data_dir, tmp_path / "photos", people=2, per_person=3)
    work = tmp_path / "work"
    assert curate(work, "collect", str(photos)).returncode == 0
    assert curate(work, "describe", "--embedders", "handcrafted", "--hashes", "phash").returncode == 0
    line = one_error_line(curate(work, "--workers", "2", "rank"))
    assert "rank needs 'dlib' vectors from describe" in line
    assert "`curate describe --embedders handcrafted,dlib --overwrite`" in line
    assert "`curate rank --embedder handcrafted`" in line
    assert not (work / "rank").exists()  # refused before anything was written
    line = one_error_line(curate(work, "dedup", "--input", "describe", "--hashes", "phash,dhash"))
    assert "dedup needs 'dhash' hashes from describe" in line
    assert "`curate describe --hashes phash,dhash --overwrite`" in line
    line = one_error_line(curate(work, "describe", "--overwrite"))  # dlib by default, and no faces run
    assert "needs the aligned face crops (crop_path) of faces" in line and "`curate faces`" in line
    assert (work / "describe" / "_SUCCESS").is_file()  # the refused overwrite left the finished stage
    line = one_error_line(curate(work, "evaluate"))
    assert "run `curate train` first" in line and "--model dlib" in line


def test_review_and_select_refuse_what_they_cannot_apply(tmp_path: Path) -> None:
    """No decision log for review; a file that is not a candidates list for select."""
    import pyarrow as pa

    from curate import manifest
    from curate.errors import ConfigError
    from curate.stages import stage_class

    review = stage_class("review")(stage_class("review").Config())
    with pytest.raises(ConfigError, match="`curate review serve`") as error:
        review.check_input(tmp_path, "dedup")
    assert error.value.key == "decisions"
    images = tmp_path / "images.parquet"
    manifest.write_shard(pa.Table.from_pylist([{"image_id": "a"}]), images)
    select = stage_class("select")(stage_class("select").Config(candidates=images))
    with pytest.raises(ConfigError, match="`curate candidates SOURCES") as error:
        select.check_input(tmp_path, "faces")
    assert error.value.key == "candidates" and "'images' manifest" in str(error.value)


def test_a_pipeline_that_cannot_feed_a_stage_is_refused_before_anything_runs(tmp_path: Path) -> None:
    from curate.errors import ConfigError
    from curate.executor import ExecutorOptions
    from curate.pipeline import parse_pipeline, run_specs

    stages = ["collect", "faces", "describe", "rank", "dedup"]
    cases = [
        ({"describe": {"embedders": ["handcrafted"]}}, "rank.embedder", "rank.embedder to one of"),
        (
            {"describe": {"hashes": ["dhash"]}, "rank": {"embedder": "handcrafted"}},
            "dedup.hashes",
            "dedup.hashes",
        ),
        ({"describe": {"thumbnails": False}}, "dedup.verify", "dedup.verify = false"),
    ]
    for settings, key, instead in cases:
        spec = parse_pipeline({"stages": stages, "collect": {"source": str(tmp_path)}, **settings})
        with pytest.raises(ConfigError) as error:
            run_specs(spec.stages, tmp_path / "work", ExecutorOptions(workers=0))
        assert error.value.key == key and f"or set {instead}" in str(error.value)
        assert not (tmp_path / "work").exists()  # nothing ran, nothing was written
