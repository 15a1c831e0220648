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


def test_a_url_list_renaming_an_identity_or_repeating_a_line_is_refused(tmp_path, data_dir):
    """The same URLs under another identity name (or a line added twice) used to answer with the old rows."""
    from httpserver import CaseServer, small_cfp_jpegs

    runner = CliRunner()
    w = ["-w", str(tmp_path / "work"), "--workers", "0", "--shards", "2"]
    source = tmp_path / "urls.csv"
    with CaseServer(small_cfp_jpegs(data_dir, 4)) as server:
        lines = [f"Bob,{server.url(f'/img/{i}.jpg')}" for i in range(4)]
        source.write_text("identity,url\n" + "\n".join(lines) + "\n")
        args = [*w, "download", str(source), "--allowed-networks", "127.0.0.0/8"]
        assert runner.invoke(app, args).exit_code == 0
        assert runner.invoke(app, args).exit_code == 0  # nothing changed: skipped

        source.write_text("identity,url\n" + "\n".join(lines).replace("Bob,", "Robert,") + "\n")
        refused = runner.invoke(app, args)
        assert refused.exit_code == 1 and refused.output.count("\n") == 1, refused.output
        assert "rows differ" in refused.output and "--overwrite" in refused.output
        assert f"e.g. '{server.url('/img/0.jpg')}' under 'Robert'" in refused.output

        source.write_text("identity,url\n" + "\n".join([*lines, lines[0]]) + "\n")  # Bob again, one twice
        refused = runner.invoke(app, args)
        assert refused.exit_code == 1 and "rows differ" in refused.output, refused.output

        source.write_text("identity,url\n" + "\n".join(lines).replace("Bob,", "Robert,") + "\n")
        assert runner.invoke(app, [*args, "--overwrite"]).exit_code == 0
    frame = pd.read_parquet(tmp_path / "work" / "collect")
    assert set(frame.identity_name) == {"Robert"} and set(frame.status) == {"ok"} and len(frame) == 4


def test_a_names_file_renaming_a_folder_is_refused(tmp_path, data_dir):
    """collect's --names-file names folder 001 by its line 1: a changed line used to keep the old name."""
    photos = tmp_path / "photos"
    for number, subject in (("001", 1), ("002", 2)):
        (photos / number).mkdir(parents=True)
        shutil.copyfile(data_dir / "orl_faces" / f"s{subject}" / "1.pgm", photos / number / "1.pgm")
    names = tmp_path / "names.txt"
    names.write_text("Ann Lee\nBob\n")
    runner = CliRunner()
    args = ["-w", str(tmp_path / "work"), "--workers", "0", "collect", str(photos)]
    args += ["--names-file", str(names)]
    assert runner.invoke(app, args).exit_code == 0
    names.write_text("Ann Lee\nRobert\n")
    refused = runner.invoke(app, args)
    assert refused.exit_code == 1 and "rows differ" in refused.output, refused.output
    assert runner.invoke(app, [*args, "--overwrite"]).exit_code == 0
    assert sorted(pd.read_parquet(tmp_path / "work" / "collect").identity_name) == ["Ann Lee", "Robert"]
