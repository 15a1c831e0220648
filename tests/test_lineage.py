"""The workdir as a trustworthy store: verified shards, lineage and staleness, chaining, VGG-Face's order.

Most tests drive the real CLI in its own process (``python -m curate``) on real images, and damage the
workdir the way a disk, a user or a killed run would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from curate import lineage, manifest
from curate.errors import CurateError
from curate.executor import run_global_task
from curate.record import BASE_COLUMNS, Status
from curate.search.clusters import SCORE_TIE
from curate.stage import GlobalStage, StageContext
from curate.stageplan import default_input
from curate.stages import stage_class

REPO = Path(__file__).resolve().parents[1]


def curate(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run the CLI in a fresh process, as a user would."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "250"}
    done = subprocess.run(
        [sys.executable, "-m", "curate", *args], capture_output=True, text=True, env=env, timeout=600
    )
    if check:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


def markers(workdir: Path, stage: str) -> dict[str, str]:
    """Marker file name -> its text, for every marker of a stage."""
    return {p.name: p.read_text() for p in sorted((workdir / stage / "_done").iterdir())}


def status_row(output: str, stage: str) -> str:
    """The status table's row of ``stage``."""
    return next(line for line in output.splitlines() if line.startswith(f"│ {stage} "))


# ---- verified shards (item 5) ----------------------------------------------------------------------------


def test_damaged_shards_are_reported_in_one_line_and_exactly_they_are_redone(tmp_path, data_dir):
    workdir = tmp_path / "w"
    common = ["-w", str(workdir), "--workers", "1"]
    collect = [*common, "--shards", "4", "collect", str(data_dir / "orl_faces")]
    curate(*collect)
    before = markers(workdir, "collect")
    success = json.loads((workdir / "collect" / "_SUCCESS").read_text())
    assert success["shards"] == 4 and success["rows"] == 401

    # size and mtime are trusted; --verify hashes every file again
    shard = {s: workdir / "collect" / f"0000{s}.parquet" for s in range(4)}
    original, stat = shard[0].read_bytes(), shard[0].stat()
    shard[0].write_bytes(original[:100] + bytes([original[100] ^ 0xFF]) + original[101:])
    os.utime(shard[0], ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert "done" in status_row(curate(*common, "status").stderr, "collect")
    verified = curate(*common, "status", "--verify").stderr
    assert "corrupt" in status_row(verified, "collect") and "checksum differs" in verified
    shard[0].write_bytes(original)
    os.utime(shard[0], ns=(stat.st_atime_ns, stat.st_mtime_ns))

    data = shard[1].read_bytes()
    shard[1].write_bytes(data[: len(data) // 2])  # truncated
    shard[2].unlink()  # missing
    changed = bytearray(shard[3].read_bytes())
    changed[len(changed) // 2] ^= 0xFF  # changed, same size
    shard[3].write_bytes(bytes(changed))
    status = curate(*common, "status").stderr
    assert "corrupt" in status_row(status, "collect") and "1/4" in status_row(status, "collect")
    lines = {
        s: [line for line in status.splitlines() if line.startswith(f"collect shard 0000{s}")]
        for s in (1, 2, 3)
    }
    assert all(len(found) == 1 for found in lines.values()), status
    assert "truncated" in lines[1][0] and "missing" in lines[2][0] and "checksum differs" in lines[3][0]

    refused = curate(*common, "exact", check=False)  # a later stage never reads a damaged shard
    assert refused.returncode == 1
    message = refused.stderr.strip()
    assert "\n" not in message and "00001" in message and "run 'collect' again" in message

    curate(*collect)  # the same command redoes exactly the damaged shards
    after = markers(workdir, "collect")
    assert after["00000"] == before["00000"]
    assert all(after[f"0000{s}"] != before[f"0000{s}"] for s in (1, 2, 3))
    assert "done" in status_row(curate(*common, "status").stderr, "collect")
    assert (
        len(pd.read_parquet(workdir / "collect")) == manifest.read_stage(workdir, "collect").num_rows == 401
    )
    (workdir / "collect" / "_SUCCESS").unlink()  # as while a run redoes shards: curate's readers refuse
    with pytest.raises(CurateError, match="not complete"):
        manifest.read_stage(workdir, "collect")


@dataclass
class _NoConfig:
    """No settings."""


class _HalfWritten(GlobalStage):
    """A global step whose third shard comes out wrong, after the first two were written."""

    name = "halfway"
    Config = _NoConfig

    def run_all(self, tables: dict[int, pa.Table], ctx: StageContext) -> dict[int, pa.Table]:
        return {s: (t.slice(0, 1) if s == 2 else t) for s, t in tables.items()}


def _base_table(identity: str, rows: int) -> pa.Table:
    values = {
        "image_id": [f"{identity}{i}" for i in range(rows)],
        "identity_id": [identity] * rows,
        "identity_name": [identity] * rows,
        "source": [f"/x/{identity}/{i}.jpg" for i in range(rows)],
        "path": [None] * rows,
        "status": ["ok"] * rows,
        "reason": [""] * rows,
    }
    return pa.table({k: pa.array(v, type=BASE_COLUMNS[k]) for k, v in values.items()})


def test_a_global_stage_that_fails_half_way_shows_no_shard(tmp_path):
    sources = {}
    for shard in range(4):
        sources[shard] = manifest.shard_path(tmp_path, "collect", shard)
        manifest.write_shard(_base_table(f"id{shard}", 3), sources[shard])
    with pytest.raises(RuntimeError, match="changed the rows"):
        run_global_task(_HalfWritten(_NoConfig()), tmp_path, sources, 4)
    assert list((tmp_path / "halfway").glob("*.parquet")) == []  # two shards were written, aside
    assert not lineage.success_path(tmp_path, "halfway").exists()


# ---- lineage and staleness (item 1) ----------------------------------------------------------------------


def test_changed_inputs_make_later_stages_stale_and_runs_redo_them(tmp_path, data_dir):
    workdir = tmp_path / "w"
    common = ["-w", str(workdir), "--workers", "1"]
    names = tmp_path / "names.txt"
    names.write_text("".join(f"s{i}\n" for i in range(1, 41)))
    pipeline = tmp_path / "p.toml"
    orl = data_dir / "orl_faces"
    pipeline.write_text(f'shards = 2\nstages = ["collect", "exact", "select"]\n[collect]\nsource = "{orl}"\n')
    curate(*common, "candidates", str(names))
    curate(*common, "run", str(pipeline))
    before = {stage: markers(workdir, stage) for stage in ("collect", "exact", "select")}
    assert (pd.read_parquet(workdir / "select").status == "ok").sum() == 400

    # the candidates list is rebuilt without s1: select is stale and says why
    bench = tmp_path / "bench.txt"
    bench.write_text("s1\n")
    curate(*common, "candidates", str(names), "--exclude", str(bench))
    row = status_row(curate(*common, "status").stderr, "select")
    assert "stale" in row and "candidates.parquet changed" in row
    curate(*common, "run", str(pipeline))  # make-like: only select is redone
    assert markers(workdir, "collect") == before["collect"] and markers(workdir, "exact") == before["exact"]
    assert markers(workdir, "select") != before["select"]
    assert (pd.read_parquet(workdir / "select").status == "excluded").sum() == 10

    # collect redone with another config: everything after it is stale; a stale input is refused
    pipeline.write_text(pipeline.read_text() + "max_pixels = 20000000\n")
    curate(*common, "run", str(pipeline), "--to", "collect", "--overwrite")
    status = curate(*common, "status").stderr
    assert "stale" in status_row(status, "exact") and "input 'collect' changed" in status_row(status, "exact")
    assert "stale" in status_row(status, "select") and "input 'exact' is stale" in status_row(
        status, "select"
    )
    refused = curate(*common, "select", check=False)
    assert refused.returncode == 1 and "run 'exact' again first" in refused.stderr
    done = curate(*common, "run", str(pipeline))  # exact, then select, redone in order
    table = {line.split()[1]: line.split()[3] for line in done.stderr.splitlines() if line.startswith("│ ")}
    assert table == {"collect": "0", "exact": "2", "select": "2"}, done.stderr  # shards run per stage
    status = curate(*common, "status").stderr
    assert all("done" in status_row(status, stage) for stage in ("collect", "exact", "select"))


# ---- chaining by hand as in a pipeline (item 2) -----------------------------------------------------------


def _started(workdir: Path, stage: str, input_stage: str | None) -> None:
    (workdir / stage).mkdir(parents=True)
    (workdir / stage / "_config.json").write_text(json.dumps({"input_stage": input_stage}))


def test_a_stage_reads_the_last_canonical_stage_run_before_it(tmp_path):
    describe, dedup, rank = (stage_class(k)(stage_class(k).Config()) for k in ("describe", "dedup", "rank"))
    _started(tmp_path, "collect", None)
    _started(tmp_path, "faces", "collect")
    assert default_input(tmp_path, describe) == "faces"
    _started(tmp_path, "select", "faces")
    assert default_input(tmp_path, describe) == "select"
    _started(tmp_path, "describe", "select")
    assert default_input(tmp_path, dedup) == "describe"
    _started(tmp_path, "rank", "dedup")  # made in the old order, from dedup
    with pytest.raises(CurateError, match="older stage order"):
        default_input(tmp_path, dedup)
    (tmp_path / "rank" / "_config.json").write_text(json.dumps({"input_stage": "describe"}))
    assert default_input(tmp_path, dedup) == "rank" and default_input(tmp_path, rank) == "describe"


CFP_IDENTITIES = 6  # 001-006: 50 Cent ... Adam Sandler, who is in LFW


def _cfp_subset(tmp_path: Path, data_dir: Path) -> tuple[Path, Path]:
    """A few CFP identities (copied under tmp_path) plus one planted near-duplicate, and their names file."""
    from PIL import Image

    images = tmp_path / "cfp"
    cfp = data_dir / "cfp" / "Data"
    for k in range(1, CFP_IDENTITIES + 1):
        for view in ("frontal", "profile"):
            target = images / f"{k:03d}" / view
            target.mkdir(parents=True)
            for path in sorted((cfp / "Images" / f"{k:03d}" / view).glob("*.jpg"))[:5]:
                (target / path.name).write_bytes(path.read_bytes())
    original = Image.open(images / "001" / "frontal" / "01.jpg")
    original.resize((original.width * 3 // 2, original.height * 3 // 2)).save(
        images / "001" / "frontal" / "99.jpg", quality=90
    )
    names = tmp_path / "names.txt"
    names.write_text("".join((cfp / "list_name.txt").read_text().splitlines(keepends=True)[:CFP_IDENTITIES]))
    return images, names


STAGES = ("collect", "exact", "faces", "select", "describe", "rank", "dedup")
BY_HAND = {
    "faces": ["faces", "--detector", "hog", "--upsample", "1"],
    "select": ["select", "--min-images", "3"],
    "describe": ["describe", "--hashes", "phash,dhash", "--embedders", "handcrafted"],
    "rank": ["rank", "--embedder", "handcrafted", "--positives", "4", "--rounds", "1", "--keep", "5"],
    "dedup": ["dedup", "--embedding", "handcrafted"],
}
PIPELINE = """shards = 2
stages = ["collect", "exact", "faces", "select", "describe", "rank", "dedup"]
[collect]
source = "{images}"
names_file = "{names}"
[faces]
detector = "hog"
upsample = 1
[select]
min_images = 3
[describe]
hashes = ["phash", "dhash"]
embedders = ["handcrafted"]
[rank]
embedder = "handcrafted"
positives = 4
rounds = 1
keep = 5
[dedup]
embedding = "handcrafted"
"""


def _comparable(workdir: Path, stage: str) -> pd.DataFrame:
    frame = manifest.read_stage(workdir, stage).to_pandas()
    if "crop_path" in frame:
        frame["crop_path"] = frame["crop_path"].str.replace(str(workdir), "W", regex=False)
    return frame


def test_cfp_stages_by_hand_equal_the_pipeline_and_dedup_keeps_the_best_ranked(tmp_path, data_dir):
    images, names = _cfp_subset(tmp_path, data_dir)
    lfw = data_dir / "name_lists" / "lfw-names.txt"
    by_hand, piped = tmp_path / "by_hand", tmp_path / "pipeline"
    curate("-w", str(by_hand), "candidates", str(names), "--exclude", str(lfw))
    (piped / "candidates").mkdir(parents=True)
    candidates = by_hand / "candidates" / "candidates.parquet"
    (piped / "candidates" / "candidates.parquet").write_bytes(candidates.read_bytes())
    common = ["-w", str(by_hand), "--workers", "2", "--shards", "2"]
    curate(*common, "collect", str(images), "--names-file", str(names))
    for stage in STAGES[1:]:
        curate(*common, *BY_HAND.get(stage, [stage]))
    pipeline = tmp_path / "p.toml"
    pipeline.write_text(PIPELINE.format(images=images, names=names))
    curate("-w", str(piped), "--workers", "2", "run", str(pipeline))

    for stage in STAGES:
        pd.testing.assert_frame_equal(_comparable(by_hand, stage), _comparable(piped, stage))
    configs = {s: json.loads((by_hand / s / "_config.json").read_text()) for s in STAGES}
    assert [configs[s]["input_stage"] for s in STAGES[1:]] == list(STAGES[:-1])  # describe read select
    final = _comparable(by_hand, "dedup")
    sandler = final[final.identity_name == "Adam Sandler"]
    assert len(sandler) and (sandler.status != "ok").all()  # the LFW overlap never comes back
    # the planted copy and its original form a cluster; it keeps the member rank scored highest, the
    # largest of those within SCORE_TIE of it (copies of one photo score nearly alike)
    clustered = final[final.dup_cluster.notna()]
    assert len(clustered) >= 2
    for _, members in clustered.groupby("dup_cluster"):
        kept = members[members.dup_of.isna()]
        near = members[members.rank_score >= members.rank_score.max() - SCORE_TIE]
        assert len(kept) == 1 and kept.index[0] in near.index
        assert (kept.width * kept.height).iloc[0] == (near.width * near.height).max()


# ---- VGG-Face's order (item 3) ----------------------------------------------------------------------------


def _finished(workdir: Path, stage: str, tables: dict[int, pa.Table], input_stage: str | None) -> None:
    """Write a finished stage: shards, verified markers made from ``input_stage``, config."""
    inputs = {}
    if input_stage:
        inputs = {input_stage: lineage.Checks(workdir, len(tables)).digest(input_stage, None) or ""}
    for shard, table in tables.items():
        path = manifest.shard_path(workdir, stage, shard)
        manifest.write_shard(table, path)
        facts = lineage.output_facts(workdir, stage, shard, path, table.num_rows)
        lineage.write_marker(workdir, stage, shard, facts, "test", inputs, scope="all")
    (workdir / stage / "_config.json").write_text(json.dumps({"input_stage": input_stage}))


def test_dedup_after_rank_keeps_the_best_ranked_image_not_the_largest(tmp_path):
    workdir = tmp_path / "w"
    workdir.mkdir()
    (workdir / "_curate.json").write_text(json.dumps({"n_shards": 1}))
    table = _base_table("ann", 3)
    sizes, code = [4000, 100, 900], 0x0123456789ABCDEF  # the same photo three times, at three sizes
    described = table.append_column("width", pa.array(sizes, pa.int32())).append_column(
        "height", pa.array(sizes, pa.int32())
    )
    described = described.append_column("phash_code", pa.array([code] * 3, pa.int64()))
    described = described.append_column("described", pa.array([True] * 3))
    manifest.write_vectors(
        np.zeros((3, 1024), np.uint8), manifest.vectors_path(workdir, "describe", "thumbnail", 0)
    )
    _finished(workdir, "describe", {0: described}, None)
    scores = [0.2, 0.9, 0.6]  # the smallest copy is the one rank trusts most
    ranked = described.append_column("rank_score", pa.array(scores, pa.float32()))
    _finished(workdir, "rank", {0: ranked}, "describe")

    curate("-w", str(workdir), "--workers", "1", "dedup", "--embedding", "")  # no --input: reads rank
    rows = manifest.read_stage(workdir, "dedup").to_pylist()
    assert [r["status"] for r in rows] == [Status.DUPLICATE.value, Status.OK.value, Status.DUPLICATE.value]
    assert rows[0]["dup_of"] == rows[2]["dup_of"] == "ann1"
