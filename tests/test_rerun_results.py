"""Re-runs and edge collections on real files: the same rows every run, and a way on where rank cannot run."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from curate import cli
from curate.decode import decode_bytes

ADDRESS = re.compile(r"0x[0-9a-fA-F]{6,}")


def test_undecodable_file_reason_is_the_same_on_every_run(tmp_path: Path, data_dir: Path) -> None:
    """A broken PNG's reason named a BytesIO's memory address, so collect --overwrite on the same folder
    wrote a different manifest and every later stage became stale."""
    images = tmp_path / "images" / "person"
    images.mkdir(parents=True)
    shutil.copy(data_dir / "cfp/Data/Images/001/frontal/01.jpg", images / "01.jpg")
    (images / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    runner = CliRunner()
    common = ["-w", str(tmp_path / "work"), "--workers", "0", "--shards", "1"]
    reasons = []
    for extra in ([], ["--overwrite"]):
        result = runner.invoke(cli.app, [*common, "collect", str(tmp_path / "images"), *extra])
        assert result.exit_code == 0, result.output
        frame = pd.read_parquet(tmp_path / "work" / "collect").set_index("source")
        reasons.append(frame.loc[str(images / "broken.png"), "reason"])
    assert reasons[0] == reasons[1]
    assert reasons[0].startswith("cannot open PNG: UnidentifiedImageError: cannot identify image file")
    assert not ADDRESS.search(reasons[0]), reasons[0]
    assert not ADDRESS.search(decode_bytes(b"\x89PNG\r\n\x1a\nbroken").reason)


def test_one_identity_collection_rank_names_the_way_on(tmp_path: Path, data_dir: Path) -> None:
    """rank cannot score a lone identity (no negatives); its one-line error names the way on, and that way
    (dedup reading describe) runs and keeps every row."""
    images = tmp_path / "images" / "person"
    images.mkdir(parents=True)
    for k in (1, 2, 3):
        shutil.copy(data_dir / f"cfp/Data/Images/002/frontal/{k:02d}.jpg", images / f"{k:02d}.jpg")
    runner = CliRunner()
    common = ["-w", str(tmp_path / "work"), "--workers", "0", "--shards", "2"]
    for command in (["collect", str(tmp_path / "images")], ["faces"], ["describe"]):
        result = runner.invoke(cli.app, [*common, *command])
        assert result.exit_code == 0, result.output
    rank = runner.invoke(cli.app, [*common, "rank"])
    assert rank.exit_code == 1 and "curate dedup --input describe" in rank.output
    dedup = runner.invoke(cli.app, [*common, "dedup", "--input", "describe"])
    assert dedup.exit_code == 0, dedup.output
    frame = pd.read_parquet(tmp_path / "work" / "dedup")
    assert len(frame) == 3 and set(frame.status) == {"ok"}


def test_a_default_moved_by_a_release_redoes_the_stage_and_a_named_setting_is_refused(
    tmp_path: Path, data_dir: Path
) -> None:
    """A setting left at its default whose default changed (as after an upgrade) redoes the finished
    shards instead of refusing the run; a setting the user named and changed is still refused."""
    images = tmp_path / "images"
    for person in ("001", "002"):
        shutil.copytree(data_dir / "cfp/Data/Images" / person / "frontal", images / person)
    runner = CliRunner()
    common = ["-w", str(tmp_path / "work"), "--workers", "0", "--shards", "2", "collect", str(images)]
    # an earlier release whose default max_pixels was 123,456,789: the run as it recorded it
    assert runner.invoke(cli.app, [*common, "--max-pixels", "123456789"]).exit_code == 0
    saved_path = tmp_path / "work" / "collect" / "_config.json"
    saved = json.loads(saved_path.read_text())
    assert saved["given"] == ["max_pixels", "source"]
    saved_path.write_text(json.dumps({**saved, "given": ["source"]}))
    markers = {p.name: p.read_text() for p in (tmp_path / "work" / "collect" / "_done").iterdir()}
    again = runner.invoke(cli.app, common)  # this release, its own default
    assert again.exit_code == 0, again.output
    redone = {p.name: p.read_text() for p in (tmp_path / "work" / "collect" / "_done").iterdir()}
    assert redone.keys() == markers.keys() and all(redone[k] != markers[k] for k in markers)
    assert json.loads(saved_path.read_text())["config"]["max_pixels"] == 40_000_000
    refused = runner.invoke(cli.app, [*common, "--max-pixels", "1000000"])
    assert refused.exit_code != 0
    assert "max_pixels: 40000000 -> 1000000" in " ".join(refused.output.split())


def test_an_input_made_by_another_release_is_stale_and_not_read(
    tmp_path: Path, data_dir: Path, monkeypatch
) -> None:
    """Squares that collect made under an older code version are stale: describe refuses to read them
    (it would describe them as the old code cut them) until collect runs again."""
    from curate.stages.ingest import IngestStage
    from curate.status import workdir_status

    images = tmp_path / "images"
    for person in ("001", "002"):
        shutil.copytree(data_dir / "cfp/Data/Images" / person / "frontal", images / person)
    runner = CliRunner()
    common = ["-w", str(tmp_path / "work"), "--workers", "0", "--shards", "2"]
    collect = [*common, "collect", str(images), "--squares"]
    describe = [*common, "describe", "--input", "collect", "--embedders", "handcrafted"]
    with monkeypatch.context() as older:
        older.setattr(IngestStage, "version", IngestStage.version - 1)
        assert runner.invoke(cli.app, collect).exit_code == 0
    state = {s.stage: s for s in workdir_status(tmp_path / "work")}["collect"]
    assert state.state == "stale" and "another curate release" in state.why
    refused = runner.invoke(cli.app, describe)
    assert refused.exit_code != 0 and "run 'collect' again first" in " ".join(refused.output.split())
    assert runner.invoke(cli.app, collect).exit_code == 0
    assert runner.invoke(cli.app, describe).exit_code == 0
    states = {s.stage: s.state for s in workdir_status(tmp_path / "work")}
    assert states == {"collect": "done", "describe": "done"}


def test_a_version_that_changed_only_the_squares_leaves_a_collect_without_them_done(
    tmp_path: Path, data_dir: Path, monkeypatch
) -> None:
    """collect's version 4 changed the stored squares only: a run without them made by version 3 is still
    done with this release, so upgrading redoes neither collect nor the stages after it (faces is slow)."""
    from curate.stages.ingest import IngestStage
    from curate.status import workdir_status

    images = tmp_path / "images"
    shutil.copytree(data_dir / "cfp/Data/Images" / "001" / "frontal", images / "001")
    runner = CliRunner()
    work = tmp_path / "work"
    collect = ["-w", str(work), "--workers", "0", "collect", str(images)]
    with monkeypatch.context() as older:
        older.setattr(IngestStage, "version", 3)
        assert runner.invoke(cli.app, collect).exit_code == 0
    assert {s.stage: s.state for s in workdir_status(work)} == {"collect": "done"}
    markers = sorted((work / "collect" / "_done").iterdir())
    before = [marker.read_text() for marker in markers]
    assert runner.invoke(cli.app, collect).exit_code == 0
    assert [marker.read_text() for marker in markers] == before  # nothing was redone
