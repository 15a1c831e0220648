"""The folder ``collect`` stage and the ``exact`` step on real folders: ORL, CFP and a tree of bad files."""

from __future__ import annotations

import filecmp
import os
import re
import shutil
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from curate import manifest
from curate.config import build_config
from curate.errors import ConfigError
from curate.names import identity_id
from curate.record import BASE_COLUMNS
from curate.stage import local_context
from curate.stages.exact import ExactStage
from curate.stages.ingest import COLUMNS, IngestConfig, IngestStage


def collect(config: IngestConfig, workdir: Path, n_shards: int) -> dict[int, pa.Table]:
    """plan + run_shard per shard, written and read back as real Parquet shards."""
    stage = IngestStage(config)
    planned = stage.plan(workdir, n_shards)
    assert sorted(planned) == list(range(n_shards))
    out = {}
    for shard, table in planned.items():
        ctx = local_context(workdir, "collect", shard, n_shards)
        result = stage.run_shard(table, ctx)
        assert result.num_rows == table.num_rows
        assert result.column("source").to_pylist() == table.column("source").to_pylist()
        assert sum(ctx.stats["status"].values()) == table.num_rows
        path = manifest.shard_path(workdir, "collect", shard)
        manifest.write_shard(result, path)
        out[shard] = manifest.read_shard(path)
        assert out[shard].equals(result)
    return out


def by_name(tables: dict[int, pa.Table]) -> dict[str, dict]:
    rows = pa.concat_tables(tables.values()).to_pylist()
    return {os.path.basename(row["source"]): row for row in rows}


def test_orl_faces(data_dir: Path, tmp_path: Path) -> None:
    tables = collect(IngestConfig(source=data_dir / "orl_faces"), tmp_path, n_shards=4)
    for shard, table in tables.items():
        assert set(COLUMNS) | set(BASE_COLUMNS) == set(table.column_names)
        assert all(manifest.shard_of(i, 4) == shard for i in table.column("identity_id").to_pylist())
        keys = list(
            zip(table.column("identity_id").to_pylist(), table.column("source").to_pylist(), strict=True)
        )
        assert keys == sorted(keys)
    frame = pd.read_parquet(tmp_path / "collect")
    images = frame[frame["identity_name"] != ""]
    assert len(images) == 400 and images["identity_name"].nunique() == 40
    assert (images["status"] == "ok").all() and (images["reason"] == "").all()
    assert set(images["format"]) == {"PPM"} and set(images["mode"]) == {"L"}
    assert (images["width"] == 92).all() and (images["height"] == 112).all()
    assert images["search_rank"].isna().all() and (images["n_frames"] == 1).all()
    assert images["image_id"].str.fullmatch(r"[0-9a-f]{64}").all()
    readme = frame[frame["identity_name"] == ""]  # the data set's README sits beside the folders
    assert list(readme["status"]) == ["unsafe_input"] and list(readme["reason"]) == [
        "not inside an identity folder"
    ]


def test_cfp_with_names_file(data_dir: Path, tmp_path: Path) -> None:
    config = IngestConfig(source=data_dir / "cfp/Data/Images", names_file=data_dir / "cfp/Data/list_name.txt")
    stage = IngestStage(config)
    planned = stage.plan(tmp_path, 64)
    everything = pa.concat_tables(planned.values())
    assert everything.num_rows == 7000
    names = set(everything.column("identity_name").to_pylist())
    assert len(names) == 500 and "50 Cent" in names and "001" not in names
    fifty = identity_id("50 Cent")
    shard = manifest.shard_of(fifty, 64)
    table = stage.run_shard(planned[shard], local_context(tmp_path, "collect", shard, 64))
    rows = [r for r in table.to_pylist() if r["identity_id"] == fifty]
    assert len(rows) == 14 and {r["identity_name"] for r in rows} == {"50 Cent"}
    assert sum("/frontal/" in r["source"] for r in rows) == 10
    assert sum("/profile/" in r["source"] for r in rows) == 4
    assert all(r["status"] == "ok" and r["format"] == "JPEG" and r["width"] > 0 for r in rows)
    # CFP holds byte-identical frontal photos within some identities: each must point at a real twin
    everyone = table.to_pylist()
    kept = {(r["identity_id"], r["image_id"]) for r in everyone if r["status"] == "ok"}
    assert len(kept) == sum(r["status"] == "ok" for r in everyone)
    for row in everyone:
        if row["status"] == "exact_duplicate":
            twin = row["reason"].removeprefix("same bytes as ")
            assert twin < row["source"] and filecmp.cmp(twin, row["source"], shallow=False)
            assert (row["identity_id"], row["image_id"]) in kept


def test_names_file_must_cover_numbered_folders(tmp_path: Path) -> None:
    (tmp_path / "src/001").mkdir(parents=True)
    (tmp_path / "src/002").mkdir()
    (tmp_path / "names.txt").write_text("Only One\n")
    stage = IngestStage(IngestConfig(source=tmp_path / "src", names_file=tmp_path / "names.txt"))
    with pytest.raises(ConfigError, match="line 2"):
        stage.plan(tmp_path, 1)


def test_config_errors_name_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as missing:
        IngestConfig(source=tmp_path / "nope").validate()
    assert missing.value.key == "source" and "existing folder" in missing.value.fix
    with pytest.raises(ConfigError) as names:
        IngestConfig(source=tmp_path, names_file=tmp_path / "none.txt").validate()
    assert names.value.key == "names_file"
    with pytest.raises(ConfigError) as pixels:
        build_config(IngestConfig, {"source": tmp_path, "max_pixels": 0})
    assert pixels.value.key == "max_pixels"


@pytest.fixture
def bad_tree(data_dir: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A source folder with every kind of bad file, plus a names file for its numbered folders."""
    face = (data_dir / "cfp/Data/Images/007/frontal/01.jpg").read_bytes()
    src = tmp_path / "src"
    for folder in ("001/sub/deeper", "002", "a b", "Ünïcödé", "...", "lonely"):
        (src / folder).mkdir(parents=True)
    (src / "README.txt").write_text("images are below\n")
    (src / "001/a_original.jpg").write_bytes(face)
    (src / "001/b_copy.jpg").write_bytes(face)  # exact duplicate within the identity
    (src / "001/sub/deeper/nested.pgm").write_bytes((data_dir / "orl_faces/s2/3.pgm").read_bytes())
    shutil.copy(data_dir / "orl_faces/s3/1.pgm", src / "002/dots.pgm")
    bad = src / "a b"
    (bad / "zero.jpg").write_bytes(b"")
    (bad / "truncated.jpg").write_bytes(face[: len(face) // 2])
    (bad / "random.jpg").write_bytes(bytes(range(256)) * 8)
    (bad / "page.jpg").write_bytes(b"<!doctype html><html><title>Not found</title></html>")
    huge = (data_dir / "cfp/Data/Images/006/frontal/01.jpg").read_bytes()
    (bad / "huge.jpg").write_bytes(huge)
    (bad / "later_a_dir.jpg").write_bytes(face[:100])
    os.symlink(src / "missing.jpg", bad / "broken.jpg")
    outside = tmp_path / "outside.jpg"
    outside.write_bytes(face)
    os.symlink(outside, bad / "escape.jpg")
    os.symlink("../001/a_original.jpg", bad / "inside_link.jpg")  # same bytes as 001: identity conflict
    os.symlink(tmp_path / "elsewhere", src / "linked_folder")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere/x.jpg").write_bytes(face)
    os.mkfifo(bad / "pipe.jpg")
    with open(os.fsencode(bad) + b"/caf\xe9.jpg", "wb") as handle:
        handle.write(face)
    os.mkdir(os.fsencode(src) + b"/bad\xff")
    shutil.copy(data_dir / "orl_faces/s6/1.pgm", os.fsencode(src) + b"/bad\xff/inside.pgm")
    shutil.copy(data_dir / "orl_faces/s4/1.pgm", src / "Ünïcödé/u.pgm")
    shutil.copy(data_dir / "orl_faces/s5/1.pgm", src / ".../three_dots.pgm")
    names = tmp_path / "names.txt"
    names.write_text("Zoë Ünïcode\n..\n", encoding="utf-8")
    return src, names


def test_bad_tree_every_file_gets_a_row(bad_tree: tuple[Path, Path], tmp_path: Path) -> None:
    src, names = bad_tree
    config = IngestConfig(source=src, names_file=names, max_pixels=20_000)
    stage = IngestStage(config)
    planned = stage.plan(tmp_path / "work", 3)
    (src / "a b/later_a_dir.jpg").unlink()  # swapped for a folder between plan and read
    (src / "a b/later_a_dir.jpg").mkdir()
    tables = {}
    for shard, table in planned.items():
        tables[shard] = stage.run_shard(table, local_context(tmp_path / "work", "collect", shard, 3))
    rows = by_name(tables)
    assert len(rows) == 20
    expected = {
        "README.txt": ("unsafe_input", "not inside an identity folder"),
        "a_original.jpg": ("ok", ""),
        "nested.pgm": ("ok", ""),
        "dots.pgm": ("ok", ""),
        "u.pgm": ("ok", ""),
        "three_dots.pgm": ("ok", ""),
        "inside_link.jpg": ("ok", ""),
        "zero.jpg": ("failed_decode", "empty file"),
        "truncated.jpg": ("failed_decode", "cannot decode JPEG"),
        "random.jpg": ("failed_decode", "not an image: unknown binary"),
        "page.jpg": ("failed_decode", "not an image: HTML document"),
        "huge.jpg": ("unsafe_input", "too many pixels"),
        "later_a_dir.jpg": ("unsafe_input", "not a regular file (directory)"),
        "pipe.jpg": ("unsafe_input", "not a regular file (named pipe)"),
        "broken.jpg": ("failed_decode", "broken symlink"),
        "escape.jpg": ("unsafe_input", "symlink points outside the source folder"),
        "linked_folder": ("unsafe_input", "symlinked folder not followed"),
        "caf\\xe9.jpg": ("unsafe_input", "file name is not valid UTF-8"),
        "inside.pgm": ("unsafe_input", "folder name is not valid UTF-8"),
        "b_copy.jpg": ("exact_duplicate", f"same bytes as {src / '001/a_original.jpg'}"),
    }
    for name, (status, reason) in expected.items():
        assert rows[name]["status"] == status, (name, rows[name]["reason"])
        assert rows[name]["reason"].startswith(reason), (name, rows[name]["reason"])
    assert rows["nested.pgm"]["identity_name"] == "Zoë Ünïcode"
    assert rows["dots.pgm"]["identity_name"] == ".."
    assert rows["u.pgm"]["identity_name"] == "Ünïcödé"
    assert rows["inside.pgm"]["identity_name"] == "bad\\xff" and rows["inside.pgm"]["path"] is None
    assert rows["zero.jpg"]["identity_name"] == "a b" and rows["zero.jpg"]["image_id"] is not None
    assert rows["huge.jpg"]["width"] > 100 and rows["huge.jpg"]["file_bytes"] > 0
    assert rows["inside_link.jpg"]["path"] == str((src / "001/a_original.jpg").resolve())
    assert rows["b_copy.jpg"]["image_id"] == rows["a_original.jpg"]["image_id"]
    for row in rows.values():
        assert re.fullmatch(r"[a-z0-9-]+", row["identity_id"]), row
        assert row["identity_id"] == identity_id(row["identity_name"])
    for shard, table in tables.items():  # every odd name survives a real Parquet round trip
        manifest.write_shard(table, manifest.shard_path(tmp_path / "work", "collect", shard))
    frame = pd.read_parquet(tmp_path / "work/collect")
    assert len(frame) == 20 and "caf\\xe9.jpg" in {os.path.basename(s) for s in frame["source"]}


def test_permission_denied_row(bad_tree: tuple[Path, Path], tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("running as root, which reads chmod-000 files; test_decode checks this as 'nobody'")
    src, _ = bad_tree
    locked = src / "lonely/locked.jpg"
    locked.write_bytes(b"\xff\xd8\xff")
    locked.chmod(0)
    stage = IngestStage(IngestConfig(source=src))
    table = pa.concat_tables(stage.plan(tmp_path, 1).values())
    rows = by_name({0: stage.run_shard(table, local_context(tmp_path, "collect", 0, 1))})
    assert (rows["locked.jpg"]["status"], rows["locked.jpg"]["reason"]) == (
        "failed_decode",
        "unreadable: permission denied",
    )


def test_follow_symlinks_reads_linked_folder(bad_tree: tuple[Path, Path], tmp_path: Path) -> None:
    src, names = bad_tree
    os.symlink("..", src / "lonely/up")
    os.symlink(".", src / "001/sub/here")
    stage = IngestStage(IngestConfig(source=src, names_file=names, follow_symlinks=True))
    rows = by_name(stage.plan(tmp_path, 1))
    for loop in ("up", "here"):
        assert (rows[loop]["status"], rows[loop]["reason"]) == (
            "unsafe_input",
            "symlink loop: folder contains itself",
        )
    assert rows["x.jpg"]["identity_name"] == "linked_folder" and rows["x.jpg"]["status"] == "ok"
    assert rows["escape.jpg"]["status"] == "ok"  # allowed out of the tree when asked for


def test_exact_marks_cross_identity_copies_in_any_order(bad_tree: tuple[Path, Path], tmp_path: Path) -> None:
    src, names = bad_tree
    config = IngestConfig(source=src, names_file=names)
    results = []
    for n_shards, reverse in ((1, False), (4, True)):
        tables = collect(config, tmp_path / f"w{n_shards}", n_shards)
        if reverse:
            tables = dict(reversed(list(tables.items())))
        ctx = local_context(tmp_path / f"w{n_shards}", "exact", None, n_shards)
        out = ExactStage(ExactStage.Config()).run_all(tables, ctx)
        assert {s: t.num_rows for s, t in out.items()} == {s: t.num_rows for s, t in tables.items()}
        results.append(by_name(out))
        assert ctx.stats["identity_conflict_rows"] == 2
    one, four = results
    assert {k: (v["status"], v["reason"]) for k, v in one.items()} == {
        k: (v["status"], v["reason"]) for k, v in four.items()
    }
    a_b = f"a b ({identity_id('a b')})"
    zoe = f"Zoë Ünïcode ({identity_id('Zoë Ünïcode')})"
    assert (one["a_original.jpg"]["status"], one["a_original.jpg"]["reason"]) == (
        "identity_conflict",
        f"same bytes also under: {a_b}",
    )
    assert one["inside_link.jpg"]["reason"] == f"same bytes also under: {zoe}"
    assert one["a_original.jpg"]["exact_group_size"] == 3  # original, its copy and the link
    assert one["b_copy.jpg"]["status"] == "exact_duplicate" and one["b_copy.jpg"]["exact_group_size"] is None
    assert one["dots.pgm"]["status"] == "ok" and one["dots.pgm"]["exact_group_size"] == 1
    assert one["zero.jpg"]["exact_group_size"] is None


def test_empty_shard_keeps_schema(tmp_path: Path) -> None:
    (tmp_path / "src/only").mkdir(parents=True)
    stage = IngestStage(IngestConfig(source=tmp_path / "src"))
    planned = stage.plan(tmp_path, 2)
    assert sum(t.num_rows for t in planned.values()) == 0
    out = stage.run_shard(planned[0], local_context(tmp_path, "collect", 0, 2))
    assert out.num_rows == 0 and out.schema == pa.schema(list({**BASE_COLUMNS, **COLUMNS}.items()))
    exact = ExactStage(ExactStage.Config()).run_all({0: out}, local_context(tmp_path, "exact", None, 2))
    assert exact[0].num_rows == 0 and "exact_group_size" in exact[0].column_names
