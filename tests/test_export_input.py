"""``export --input STAGE`` and ``report --input STAGE`` read only a complete and current stage, as the
default (final) stage is: a stage whose input was re-run since is refused in one line naming the fix."""

from __future__ import annotations

import shutil
from pathlib import Path

from typer.testing import CliRunner

from curate.cli import app


def test_export_and_report_refuse_a_named_stage_left_stale_by_an_upstream_rerun(
    curated_workdir: Path, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    shutil.copytree(curated_workdir, work)
    runner = CliRunner()
    w = ["-w", str(work), "--workers", "0"]
    fresh = runner.invoke(app, [*w, "export", str(tmp_path / "fresh"), "--input", "dedup", "--no-card"])
    assert fresh.exit_code == 0, fresh.output
    rerun = runner.invoke(
        app, [*w, "rank", "--embedder", "handcrafted", "--keep", "3", "--overwrite"]
    )  # dedup now reads an old rank
    assert rerun.exit_code == 0, rerun.output
    for command in (["export", str(tmp_path / "out"), "--input", "dedup"], ["report", "--input", "dedup"]):
        result = runner.invoke(app, [*w, *command])
        assert result.exit_code == 1, result.output
        assert (
            "'dedup'" in result.output and "stale" in result.output and "run 'dedup' again" in result.output
        )
        assert result.output.count("\n") == 1
    assert not (tmp_path / "out" / "manifest.parquet").exists()
    assert not (work / "report.html").exists()
    missing = runner.invoke(app, [*w, "export", str(tmp_path / "out"), "--input", "bogus"])
    assert missing.exit_code == 1 and "--input bogus: no manifest" in missing.output
