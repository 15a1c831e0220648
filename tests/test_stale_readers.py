"""curate's own readers (train, export, evaluate, report) refuse a stage made stale by an upstream re-run.

``_SUCCESS`` says a stage was complete and consistent when written; an input redone since leaves it in
place, so a reader that trusted it alone trained on rows the current inputs no longer give.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from curate import lineage
from curate.cli import app
from curate.errors import CurateError
from curate.train.data import from_manifest


def test_a_stage_made_stale_upstream_is_refused_by_readers_until_it_is_redone(tmp_path, data_dir):
    source = tmp_path / "images"
    for name in ("s1", "s2", "s3"):
        shutil.copytree(data_dir / "orl_faces" / name, source / name)
    workdir = tmp_path / "w"
    runner = CliRunner()
    base = ["-w", str(workdir), "--workers", "0", "--shards", "2"]
    faces = ["faces", "--keep-whole-if-no-face", "--crop-size", "32"]
    for step in (["collect", str(source)], faces):
        assert runner.invoke(app, [*base, *step]).exit_code == 0
    assert {c[:2] for c in from_manifest(workdir, "faces").classes} == {"s1", "s2", "s3"}
    shutil.rmtree(source / "s3")  # the collection changed: collect redone, faces now stale
    assert runner.invoke(app, [*base, "collect", str(source), "--overwrite"]).exit_code == 0
    assert lineage.success_path(workdir, "faces").exists()  # written when faces was current
    with pytest.raises(CurateError, match="stale") as caught:
        from_manifest(workdir, "faces")
    assert "\n" not in str(caught.value) and "collect" in str(caught.value)
    export = runner.invoke(app, [*base, "export", str(tmp_path / "out"), "--input", "faces"])
    assert export.exit_code == 1 and "stale" in export.output
    assert not Path(tmp_path / "out" / "manifest.parquet").exists()
    assert runner.invoke(app, [*base, *faces]).exit_code == 0
    assert {c[:2] for c in from_manifest(workdir, "faces").classes} == {"s1", "s2"}
