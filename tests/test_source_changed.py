"""A collect folder changed after collect planned it: a re-run refuses, naming --overwrite, rather than
skipping the new files (and keeping the gone ones) and reporting the stage done."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from curate.cli import app


def _photos(data_dir: Path, root: Path, subjects: range) -> Path:
    for s in subjects:
        (root / f"s{s}").mkdir(parents=True)
        for k in (1, 2, 3):
            shutil.copyfile(data_dir / "orl_faces" / f"s{s}" / f"{k}.pgm", root / f"s{s}" / f"{k}.pgm")
    return root


def test_a_collect_folder_changed_since_collect_is_refused_until_overwrite(tmp_path, data_dir):
    photos = _photos(data_dir, tmp_path / "photos", range(1, 4))
    runner = CliRunner()
    w = ["-w", str(tmp_path / "work"), "--workers", "0"]
    assert runner.invoke(app, [*w, "collect", str(photos)]).exit_code == 0
    again = runner.invoke(app, [*w, "collect", str(photos)])
    assert again.exit_code == 0, again.output  # nothing changed: the finished stage is skipped

    _photos(data_dir, photos, range(4, 5))  # a new identity, three files
    (photos / "s1" / "2.pgm").unlink()
    refused = runner.invoke(app, [*w, "collect", str(photos)])
    assert refused.exit_code == 1 and refused.output.count("\n") == 1, refused.output
    assert "3 files added, 1 gone" in refused.output and "--overwrite" in refused.output

    redone = runner.invoke(app, [*w, "collect", str(photos), "--overwrite"])
    assert redone.exit_code == 0, redone.output
    sources = set(pd.read_parquet(tmp_path / "work" / "collect")["source"])
    assert len(sources) == 11 and not any(s.endswith("s1/2.pgm") for s in sources)
