"""URL lists that cannot be read line by line fail in one line naming the fix, never by losing rows."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from curate.cli import app


def _download(workdir: Path, source: Path):
    args = ["-w", str(workdir), "--workers", "0", "--shards", "2", "download", str(source)]
    return CliRunner().invoke(app, [*args, "--allowed-networks", "127.0.0.0/8"])


def test_an_unclosed_quote_is_refused_naming_its_line(tmp_path):
    # the quote opened on line 2 is never closed: csv reads lines 3-5 into that URL, and their three
    # rows would vanish without a status
    source = tmp_path / "urls.csv"
    source.write_text(
        'identity,url\nAnn,"http://127.0.0.1:9/1.jpg\nBob,http://127.0.0.1:9/2.jpg\n'
        "Bob,http://127.0.0.1:9/3.jpg\nCarol,http://127.0.0.1:9/4.jpg\n"
    )
    result = _download(tmp_path / "w", source)
    assert result.exit_code == 1, result.output
    error = result.output.strip().splitlines()[-1]
    assert "Traceback" not in result.output
    assert f"{source}:2" in error and "unclosed quote" in error and "next 3 line(s)" in error, error
    assert not (tmp_path / "w" / "collect" / "_SUCCESS").exists()


def test_quoted_commas_still_read(tmp_path):
    source = tmp_path / "urls.csv"
    source.write_text('identity,url\n"Lee, Ann",http://127.0.0.1:9/1.jpg\nBob,http://127.0.0.1:9/2.jpg\n')
    result = _download(tmp_path / "w", source)
    assert result.exit_code == 0, result.output
    frame = pd.read_parquet(tmp_path / "w" / "collect")
    assert sorted(frame.identity_name) == ["Bob", "Lee, Ann"]  # port 9 refuses: failed_download rows


def test_a_list_that_is_not_utf8_is_one_line(tmp_path):
    source = tmp_path / "urls.csv"
    source.write_bytes(b"identity,url\nJos\xe9,http://127.0.0.1:9/1.jpg\n")  # Latin-1
    result = _download(tmp_path / "w", source)
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert "not UTF-8" in result.output and "re-save it as UTF-8" in result.output
