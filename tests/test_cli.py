"""The CLI spine: one-line errors with exit code 1, pipelines with --from/--to, status."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from curate.cli import app

runner = CliRunner()


def _invoke(*args: str):
    return runner.invoke(app, list(args))


def test_bad_option_value_is_one_line_and_exit_1(tmp_path):
    result = _invoke("-w", str(tmp_path), "--workers", "-1", "status")
    assert result.exit_code == 1
    message = result.output.strip()
    assert "\n" not in message and "--workers" in message and "0" in message


def test_missing_path_is_one_line_and_exit_1(tmp_path):
    result = _invoke("-w", str(tmp_path), "collect", str(tmp_path / "nope"))
    assert result.exit_code == 1
    assert result.output.strip().count("\n") == 0
    assert "does not exist" in result.output


def test_bad_pipeline_key_names_key_value_and_fix(tmp_path, data_dir):
    pipeline = tmp_path / "p.toml"
    pipeline.write_text(
        f'stages = ["collect"]\n[collect]\nsource = "{data_dir / "orl_faces"}"\nmax_pixel = 5\n'
    )
    result = _invoke("-w", str(tmp_path / "w"), "run", str(pipeline))
    assert result.exit_code == 1
    line = result.output.strip()
    assert "\n" not in line
    assert "collect.max_pixel" in line and "5" in line and "known keys" in line


def test_run_pipeline_from_to_and_status(tmp_path, data_dir):
    pipeline = tmp_path / "p.toml"
    pipeline.write_text(
        f'shards = 4\nstages = ["collect", "exact"]\n[collect]\nsource = "{data_dir / "orl_faces"}"\n'
    )
    workdir = tmp_path / "w"
    result = _invoke("-w", str(workdir), "--workers", "1", "run", str(pipeline), "--to", "collect")
    assert result.exit_code == 0, result.output
    assert not (workdir / "exact").exists()
    frame = pd.read_parquet(workdir / "collect")
    # 400 ORL images ok; the README beside the identity folders gets a row of its own, never silently skipped
    assert (frame.status == "ok").sum() == 400
    assert frame.loc[frame.status != "ok", "reason"].tolist() == ["not inside an identity folder"]
    result = _invoke("-w", str(workdir), "--workers", "1", "run", str(pipeline), "--from", "exact")
    assert result.exit_code == 0, result.output
    status = _invoke("-w", str(workdir), "status")
    assert status.exit_code == 0
    assert (
        "collect" in status.output
        and "4/4" in status.output
        and "ok=400" in status.output
        and "unsafe_input=1" in status.output
    )
    assert Path(workdir / "collect" / "_config.json").exists()


def test_rerun_skips_finished_shards_and_overwrite_redoes_them(tmp_path, data_dir):
    workdir = tmp_path / "w"
    args = ["-w", str(workdir), "--workers", "1", "--shards", "2", "collect", str(data_dir / "orl_faces")]
    assert _invoke(*args).exit_code == 0
    markers = sorted((workdir / "collect" / "_done").iterdir())
    stamps = [m.read_text() for m in markers]
    again = _invoke(*args)
    assert again.exit_code == 0
    assert [m.read_text() for m in markers] == stamps  # nothing redone
    redone = _invoke(*args, "--overwrite")
    assert redone.exit_code == 0
    assert all(m.read_text() != s for m, s in zip(markers, stamps, strict=True))
    assert (pd.read_parquet(workdir / "collect").status == "ok").sum() == 400


def test_an_input_that_is_no_stage_names_the_stages(tmp_path, data_dir):
    """`--input nonsense` said "which has 8 unfinished shard(s); run 'nonsense' first"."""
    workdir = tmp_path / "w"
    result = _invoke("-w", str(workdir), "--workers", "0", "faces", "--input", "facse")
    assert result.exit_code == 1
    line = result.output.strip()
    assert "\n" not in line and "'facse'" in line and "collect, " in line and "run 'facse'" not in line
