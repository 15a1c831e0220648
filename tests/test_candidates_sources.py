"""Name lists in the shapes users hand over: an ``--exclude`` list must exclude, or fail in one line."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from curate.cli import app


def _candidates(workdir: Path, *args: str):
    return CliRunner().invoke(app, ["-w", str(workdir), "candidates", *args])


def _names(tmp_path: Path) -> Path:
    names = tmp_path / "names.txt"
    names.write_bytes("\ufeffAnn Lee\n\n  Bob  \nBob\nJosé Díaz\nCarol\n".encode())
    return names


def test_a_csv_benchmark_with_an_identity_column_excludes_its_names(tmp_path):
    """URL lists call the column ``identity``; such a list used to be read as one name per line
    ("identity,count", "Jose Diaz,3"), matched nothing and excluded no one, silently."""
    bench = tmp_path / "bench.csv"
    bench.write_text("identity,count\nJOSE DIAZ,3\nbob,1\n")
    result = _candidates(tmp_path / "w", str(_names(tmp_path)), "--exclude", str(bench))
    assert result.exit_code == 0, result.output
    assert "2 kept of 4" in result.output and "overlap with bench: 2" in result.output
    table = pd.read_parquet(tmp_path / "w" / "candidates" / "candidates.parquet")
    assert dict(zip(table.name, table.status, strict=True)) == {
        "Ann Lee": "ok",
        "Bob": "excluded",
        "José Díaz": "excluded",
        "Carol": "ok",
    }


def test_a_csv_list_without_a_name_column_is_one_line(tmp_path):
    bench = tmp_path / "bench.csv"
    bench.write_text("person,count\nJose Diaz,3\n")
    result = _candidates(tmp_path / "w", str(_names(tmp_path)), "--exclude", str(bench))
    assert result.exit_code == 1 and result.output.count("\n") == 1, result.output
    assert "no name column" in result.output and "'person,count'" in result.output
    assert not (tmp_path / "w" / "candidates" / "candidates.parquet").exists()


def test_a_benchmark_that_matches_nothing_says_so(tmp_path):
    bench = tmp_path / "other.txt"
    bench.write_text("Zed Zulu\n")
    result = _candidates(tmp_path / "w", str(_names(tmp_path)), "--exclude", str(bench))
    assert result.exit_code == 0, result.output
    assert "4 kept of 4" in result.output and "overlap with other: 0" in result.output


def test_a_list_without_names_is_one_line(tmp_path):
    """An empty source made a candidates list of 0 identities, so select excluded every image; an empty
    (or header-only) benchmark list excluded no one. Both were accepted without a word."""
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"\xef\xbb\xbf\n\n")
    header_only = tmp_path / "bench.csv"
    header_only.write_text("name,gender\n")
    for args in ([str(empty)], [str(_names(tmp_path)), "--exclude", str(header_only)]):
        result = _candidates(tmp_path / "w", *args)
        assert result.exit_code == 1 and result.output.count("\n") == 1, result.output
        assert "holds no names" in result.output
    assert not (tmp_path / "w" / "candidates" / "candidates.parquet").exists()
