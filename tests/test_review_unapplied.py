"""Decisions made after `review apply` ran: review is stale until it runs again, and readers say so."""

from __future__ import annotations

import pandas as pd
from review_fixtures import make_workdir
from typer.testing import CliRunner

from curate.cli import app
from curate.status import workdir_status


def test_a_decision_imported_after_apply_makes_review_stale_until_it_is_applied(tmp_path, data_dir):
    workdir = tmp_path / "run"
    make_workdir(workdir, data_dir)
    runner = CliRunner()
    w = ["-w", str(workdir), "--workers", "0"]
    rows = pd.read_parquet(workdir / "rank")
    first, second = rows[rows["status"] == "ok"]["image_id"].iloc[:2]
    decisions = tmp_path / "first.csv"
    decisions.write_text(f"image_id,decision,reviewer\n{first},reject,alice\n")
    assert runner.invoke(app, [*w, "review", "import", str(decisions)]).exit_code == 0
    assert runner.invoke(app, [*w, "review", "apply"]).exit_code == 0
    review = {s.stage: s for s in workdir_status(workdir)}["review"]
    assert review.state == "done", review.why

    later = tmp_path / "later.csv"
    later.write_text(f"image_id,decision,reviewer\n{second},reject,bob\n")
    assert runner.invoke(app, [*w, "review", "import", str(later)]).exit_code == 0
    review = {s.stage: s for s in workdir_status(workdir)}["review"]
    assert review.state == "stale" and "curate review apply" in review.why
    refused = runner.invoke(app, [*w, "export", str(tmp_path / "out")])
    assert refused.exit_code == 1 and refused.output.count("\n") == 1, refused.output
    assert "review apply" in refused.output  # not the old review, without the later decision

    assert runner.invoke(app, [*w, "review", "apply"]).exit_code == 0
    assert {s.stage: s for s in workdir_status(workdir)}["review"].state == "done"
    exported = runner.invoke(app, [*w, "export", str(tmp_path / "out"), "--images", "originals"])
    assert exported.exit_code == 0, exported.output
    kept = pd.read_parquet(tmp_path / "out" / "manifest.parquet")["image_id"]
    assert first not in set(kept) and second not in set(kept)
