"""The manifest ``curate train`` reads by default: never a stage whose reader was left stale by a re-run."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from curate.cli import app
from curate.commands.train import train_settings
from curate.errors import CurateError
from curate.review.source import training_stage


def test_a_rerun_rank_is_not_trained_on_in_place_of_its_stale_dedup(
    curated_workdir: Path, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    shutil.copytree(curated_workdir, work)
    assert training_stage(work) == "dedup"
    w = ["-w", str(work), "--workers", "0"]
    rerun = CliRunner().invoke(app, [*w, "rank", "--embedder", "handcrafted", "--keep", "3", "--overwrite"])
    assert rerun.exit_code == 0, rerun.output
    with pytest.raises(CurateError, match="run 'curate dedup' again"):
        training_stage(work)  # rank alone would bring back dedup's duplicates
    assert train_settings(work, {"manifest_stage": "rank"}, None)["manifest_stage"] == "rank"  # asked for
    redo = CliRunner().invoke(app, [*w, "dedup"])
    assert redo.exit_code == 0, redo.output
    assert training_stage(work) == "dedup"
