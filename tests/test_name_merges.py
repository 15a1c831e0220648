"""Identity folders whose names fold to one identity are reported, with real ORL images in real folders."""

from __future__ import annotations

import json
import shutil
import unicodedata
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from curate.cli import app
from curate.names import fold_kinds, identity_id, merge_summary, name_merges
from curate.stage import local_context
from curate.stages.ingest import IngestConfig, IngestStage

NFC = unicodedata.normalize("NFC", "José")
NFD = unicodedata.normalize("NFD", "José")
FOLDERS = ["jose", "JOSE", NFC, NFD, "Ann Lee"]


def _tree(data_dir: Path, root: Path, folders: list[str]) -> Path:
    """One folder per name, each holding two ORL images of its own subject (no bytes shared)."""
    for subject, folder in enumerate(folders, start=1):
        (root / folder).mkdir(parents=True)
        for i in (1, 2):
            shutil.copyfile(data_dir / "orl_faces" / f"s{subject}" / f"{i}.pgm", root / folder / f"{i}.pgm")
    assert len(list(root.iterdir())) == len(folders)  # the file system keeps NFC and NFD apart
    return root


def _collect(workdir: Path, source: Path, *extra: str):
    result = CliRunner().invoke(app, ["-w", str(workdir), "--workers", "1", "collect", str(source), *extra])
    assert result.exit_code == 0, result.output
    return result, pd.read_parquet(workdir / "collect")


def _stats_merges(workdir: Path) -> list[dict]:
    merges = []
    for path in sorted((workdir / "collect" / "_stats").glob("*.json")):
        merges += json.loads(path.read_text()).get("name_merges", [])
    return merges


def test_collect_reports_case_unicode_and_accent_merges(tmp_path: Path, data_dir: Path) -> None:
    source = _tree(data_dir, tmp_path / "src", FOLDERS)
    result, frame = _collect(tmp_path / "work", source)
    jose = frame[
        frame.identity_name.str.casefold().map(lambda n: unicodedata.normalize("NFC", n)) != "ann lee"
    ]
    assert len(jose) == 8 and jose.identity_id.nunique() == 1 and (jose.status == "ok").all()
    (merge,) = _stats_merges(tmp_path / "work")
    assert merge["identity_id"] == jose.identity_id.iloc[0]
    assert sorted(merge["origins"]) == sorted(["jose", "JOSE", NFC, NFD])
    assert merge["kinds"] == ["accents", "case", "unicode form"]
    lines = [line for line in result.output.splitlines() if line.startswith("name merges:")]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("name merges: 4 names folded into 1 identity (accents, case, unicode form)")
    for shown in ("'jose'", "'JOSE'", f"'{NFC}'", f"'{NFD}' [NFD]", "--case-sensitive-names"):
        assert shown in lines[0]


def test_case_sensitive_names_keep_case_apart_but_fold_unicode_forms(tmp_path: Path, data_dir: Path) -> None:
    source = _tree(data_dir, tmp_path / "src", FOLDERS)
    result, frame = _collect(tmp_path / "work", source, "--case-sensitive-names")
    assert frame.identity_id.nunique() == 4  # jose, JOSE, José (NFC = NFD), Ann Lee
    (merge,) = _stats_merges(tmp_path / "work")
    assert sorted(merge["origins"]) == sorted([NFC, NFD]) and merge["kinds"] == ["unicode form"]
    lines = [line for line in result.output.splitlines() if line.startswith("name merges:")]
    assert len(lines) == 1 and "(case kept apart;" in lines[0]


def test_names_file_lines_that_fold_are_reported_by_folder(tmp_path: Path, data_dir: Path) -> None:
    source = _tree(data_dir, tmp_path / "src", ["001", "002", "003"])
    names = tmp_path / "names.txt"
    names.write_text("Ann Lee\nann_lee.\nBo Chan\n")
    stage = IngestStage(IngestConfig(source=source, names_file=names))
    ctx = local_context(tmp_path / "work", "collect", 0, 1)
    stage.run_shard(stage.plan(tmp_path / "work", 1)[0], ctx)
    assert ctx.stats["name_merges"] == [
        {
            "identity_id": identity_id("Ann Lee"),
            "names": ["Ann Lee", "ann_lee."],
            "origins": ["001", "002"],
            "kinds": ["punctuation"],
        }
    ]


@pytest.mark.parametrize(
    ("names", "kinds"),
    [
        (["Zoë", unicodedata.normalize("NFD", "Zoë")], ["unicode form"]),
        (["Ann Lee", "ANN LEE"], ["case"]),
        (["Zoe", "Zoë"], ["accents"]),
        (["Ann Lee", "Ann_Lee", "ANN LEE"], ["case", "punctuation"]),
        (["A", "A"], ["same name"]),
    ],
)
def test_fold_kinds(names: list[str], kinds: list[str]) -> None:
    assert fold_kinds(names) == kinds
    assert len({identity_id(name) for name in names}) == 1


def test_summary_lists_the_first_merges_and_counts_the_rest() -> None:
    names = [f"Person {i}" for i in range(5)] + [f"PERSON_{i}" for i in range(5)]
    merges = name_merges([identity_id(n) for n in names], names, names)
    line = merge_summary(merges, case_sensitive=False, limit=3)
    assert line is not None and "\n" not in line
    assert line.startswith("name merges: 10 names folded into 5 identities (punctuation): ")
    assert "and 2 more" in line and merge_summary([], False) is None
