"""The select stage on real CFP image rows: benchmark exclusions from the candidate list, then min_images."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
import typer
from typer.testing import CliRunner

from curate import lineage, manifest
from curate.candidates import CandidatesConfig, build_candidates, write_candidates
from curate.commands import candidates as candidates_commands
from curate.commands import collect as collect_commands
from curate.commands import faces as faces_commands
from curate.commands.common import GlobalOptions
from curate.config import build_config
from curate.errors import ConfigError
from curate.names import identity_id, match_key
from curate.record import BASE_COLUMNS, Status, set_status
from curate.stage import local_context
from curate.stages.select import COLUMNS, NOT_LISTED, SelectConfig, SelectStage

FOLDERS = range(1, 31)  # CFP identities 001..030: 50 Cent ... Alvaro Uribe, several of them in LFW


def image_rows(folder: Path, name: str) -> list[dict]:
    """One ok row per image file of an identity folder, image_id = sha256 of the bytes."""
    rows = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rows.append(
            {
                "image_id": hashlib.sha256(path.read_bytes()).hexdigest(),
                "identity_id": identity_id(name),
                "identity_name": name,
                "source": str(path),
                "path": str(path),
                "status": Status.OK.value,
                "reason": "",
            }
        )
    return rows


@pytest.fixture(scope="module")
def cfp_table(data_dir: Path) -> pa.Table:
    """Image rows for CFP identities, names from Data/list_name.txt (line N names folder N)."""
    names = (data_dir / "cfp" / "Data" / "list_name.txt").read_text().splitlines()
    rows = []
    for number in FOLDERS:
        rows += image_rows(data_dir / "cfp" / "Data" / "Images" / f"{number:03d}", names[number - 1].strip())
    return pa.Table.from_pylist(rows, schema=pa.schema(list(BASE_COLUMNS.items())))


@pytest.fixture(scope="module")
def lfw_keys(data_dir: Path) -> dict[str, str]:
    """LFW names by match key, read independently of the candidates code."""
    lines = (data_dir / "name_lists" / "lfw-names.txt").read_text().splitlines()
    return {match_key(line.split("\t")[0]): line.split("\t")[0].replace("_", " ") for line in lines}


@pytest.fixture()
def workdir(tmp_path: Path, data_dir: Path) -> Path:
    lists = data_dir / "name_lists"
    table = build_candidates([lists / "cfp_names.txt"], CandidatesConfig(exclude=[lists / "lfw-names.txt"]))
    write_candidates(table, tmp_path)
    return tmp_path


def run(table: pa.Table, workdir: Path, **settings) -> pa.Table:
    config = SelectConfig(**settings)
    config.validate()
    return SelectStage(config).run_shard(table, local_context(workdir, "select"))


def test_images_of_lfw_identities_are_excluded_with_the_benchmark(cfp_table, workdir, lfw_keys):
    # two rows already dropped by an earlier stage must pass through untouched
    sandler = [i for i, n in enumerate(cfp_table.column("identity_name").to_pylist()) if n == "Adam Sandler"]
    table = set_status(cfp_table, sandler[:2], Status.NO_FACE, "no face found")
    out = run(table, workdir)
    assert out.num_rows == table.num_rows
    assert out.column("image_id").equals(table.column("image_id"))
    assert out.schema.names == [*BASE_COLUMNS, *COLUMNS]
    overlapping = set()
    for before, row in zip(table.to_pylist(), out.to_pylist(), strict=True):
        if before["status"] != "ok":
            assert (row["status"], row["reason"], row["candidate_id"]) == ("no_face", "no face found", None)
            continue
        assert row["candidate_id"] == row["identity_id"]
        lfw_name = lfw_keys.get(match_key(row["identity_name"]))
        if lfw_name is not None:
            overlapping.add(row["identity_name"])
            assert row["status"] == "excluded" and row["candidate_status"] == "excluded"
            assert row["reason"] == f"overlaps benchmark lfw-names: {lfw_name!r}"
        else:
            assert (row["status"], row["reason"], row["candidate_status"]) == ("ok", "", "ok")
    assert {"Adam Sandler", "Aishwarya Rai", "Al Pacino", "Alicia Keys"} <= overlapping
    assert "50 Cent" not in overlapping and len(overlapping) < len(FOLDERS)


def test_min_images_marks_too_few_images_per_shard(cfp_table, workdir):
    names = cfp_table.column("identity_name").to_pylist()
    fifty = [i for i, n in enumerate(names) if n == "50 Cent"]
    table = set_status(cfp_table, fifty[3:], Status.LOW_QUALITY, "blurred")  # 3 of 14 stay ok
    n_shards = 3
    shards = {}
    for shard in range(n_shards):
        mask = pc.equal(
            pa.array([manifest.shard_of(i, n_shards) for i in table.column("identity_id").to_pylist()]), shard
        )
        stage = SelectStage(SelectConfig(min_images=4))
        shards[shard] = stage.run_shard(table.filter(mask), local_context(workdir, "select", shard, n_shards))
    rows = [row for shard in shards.values() for row in shard.to_pylist()]
    assert len(rows) == table.num_rows
    fifty_rows = [r for r in rows if r["identity_name"] == "50 Cent"]
    assert sorted(r["status"] for r in fifty_rows) == ["low_quality"] * 11 + ["too_few_images"] * 3
    assert {r["reason"] for r in fifty_rows if r["status"] == "too_few_images"} == {
        "identity has 3 usable images, fewer than min_images=4"
    }
    # identities with all 14 images stay ok; excluded ones keep their benchmark reason
    assert {r["status"] for r in rows if r["identity_name"] == "Aaron Rodgers"} == {"ok"}
    assert {r["status"] for r in rows if r["identity_name"] == "Al Pacino"} == {"excluded"}


def test_identities_missing_from_the_list_and_aliases(cfp_table, workdir, data_dir, tmp_path):
    orl = pa.Table.from_pylist(
        image_rows(data_dir / "orl_faces" / "s1", "ORL Subject 1"), schema=cfp_table.schema
    )
    out = run(
        pa.concat_tables([cfp_table, orl]), workdir, candidates=workdir / "candidates" / "candidates.parquet"
    )
    orl_rows = [r for r in out.to_pylist() if r["identity_name"] == "ORL Subject 1"]
    assert len(orl_rows) == 10 and {(r["status"], r["reason"]) for r in orl_rows} == {
        ("excluded", NOT_LISTED)
    }
    # a list that folds "50 Cent" in as an alias of "Curtis Jackson": rows named by the alias still match
    people = tmp_path / "people.jsonl"
    people.write_text(json.dumps({"name": "Curtis Jackson", "aliases": ["50 Cent"]}) + "\n")
    other = tmp_path / "aliased"
    write_candidates(build_candidates([people], CandidatesConfig()), other)
    out = run(cfp_table, other)
    fifty = [r for r in out.to_pylist() if r["identity_name"] == "50 Cent"]
    assert {(r["status"], r["candidate_id"]) for r in fifty} == {("ok", identity_id("Curtis Jackson"))}
    assert set(pc.unique(out.column("status")).to_pylist()) == {"ok", "excluded"}


def test_without_a_list_only_min_images_applies(cfp_table, tmp_path):
    out = run(cfp_table, tmp_path, min_images=15)  # CFP has 14 images per identity
    assert set(out.column("status").to_pylist()) == {"too_few_images"}
    assert out.column("candidate_status").null_count == out.num_rows
    untouched = run(cfp_table, tmp_path)
    assert untouched.select(list(BASE_COLUMNS)).equals(cfp_table)


def test_empty_shard_and_bad_config(workdir):
    empty = pa.schema(list(BASE_COLUMNS.items())).empty_table()
    out = run(empty, workdir, min_images=3)
    assert out.num_rows == 0 and out.schema.names == [*BASE_COLUMNS, *COLUMNS]
    with pytest.raises(ConfigError, match="min_images"):
        build_config(SelectConfig, {"min_images": -1})
    with pytest.raises(ConfigError, match="candidates"):
        SelectConfig(candidates=workdir / "missing.parquet").validate()


def test_select_command_runs_on_the_executor(tmp_path, data_dir):
    app = typer.Typer()

    @app.callback()
    def main(ctx: typer.Context) -> None:
        ctx.obj = GlobalOptions(workdir=tmp_path / "w", scheduler=None, workers=1, shards=2)

    app.add_typer(candidates_commands.app)
    app.add_typer(collect_commands.app)
    app.add_typer(faces_commands.app)
    runner = CliRunner()
    listed = tmp_path / "wanted.txt"
    listed.write_text("\n".join(f"s{i}" for i in range(1, 11)))
    benchmark = tmp_path / "mini_benchmark.txt"
    benchmark.write_text("S2\ns3\n")
    steps = [
        ["candidates", str(listed), "--exclude", str(benchmark)],
        ["collect", str(data_dir / "orl_faces")],
        ["select", "--input", "collect", "--min-images", "10"],
    ]
    for step in steps:
        result = runner.invoke(app, step)
        assert result.exit_code == 0, result.output
    everything = manifest.read_stage(tmp_path / "w", "select").to_pylist()
    readme = [r for r in everything if r["source"].endswith("README")]  # collect's row for the loose file
    assert [r["status"] for r in readme] == ["unsafe_input"] and readme[0]["candidate_status"] is None
    rows = [r for r in everything if r not in readme]
    assert len(rows) == 400
    status = {(r["identity_name"], r["status"], r["reason"]) for r in rows}
    assert ("s2", "excluded", "overlaps benchmark mini_benchmark: 'S2'") in status
    assert {r["identity_name"] for r in rows if r["status"] == "ok"} == {
        "s1",
        *(f"s{i}" for i in range(4, 11)),
    }
    assert {r["reason"] for r in rows if r["identity_name"] == "s40"} == {NOT_LISTED}


def test_a_candidates_list_built_after_select_makes_it_stale(tmp_path, data_dir):
    """select run with no list, then `curate candidates`: status said done, so train used unfiltered rows."""
    from curate.cli import app

    source = tmp_path / "images"
    for name in ("s1", "s2", "s3"):
        shutil.copytree(data_dir / "orl_faces" / name, source / name)
    workdir = tmp_path / "w"
    runner = CliRunner()
    base = ["-w", str(workdir), "--workers", "0", "--shards", "2"]
    for step in (["collect", str(source)], ["select", "--input", "collect"]):
        assert runner.invoke(app, [*base, *step]).exit_code == 0
    listed = tmp_path / "names.txt"
    listed.write_text("s1\ns2\n")
    assert runner.invoke(app, [*base, "candidates", str(listed)]).exit_code == 0
    state = lineage.stage_state(lineage.Checks(workdir, 2), "select")
    assert state.label == "stale" and "candidates.parquet" in state.why()
    assert runner.invoke(app, [*base, "select", "--input", "collect"]).exit_code == 0
    rows = manifest.read_stage(workdir, "select").to_pylist()
    assert {r["identity_name"] for r in rows if r["status"] == "ok"} == {"s1", "s2"}
    assert {r["reason"] for r in rows if r["identity_name"] == "s3"} == {NOT_LISTED}
    assert lineage.stage_state(lineage.Checks(workdir, 2), "select").label == "done"


def test_a_name_list_given_as_candidates_is_one_line(tmp_path, data_dir):
    """``--candidates names.txt`` (the name list, not the list built from it) was a pyarrow traceback."""
    from curate.cli import app

    photos = tmp_path / "photos" / "s1"
    photos.mkdir(parents=True)
    shutil.copyfile(data_dir / "orl_faces" / "s1" / "1.pgm", photos / "1.pgm")
    names = tmp_path / "names.txt"
    names.write_text("s1\n")
    runner = CliRunner()
    w = ["-w", str(tmp_path / "w"), "--workers", "0"]
    assert runner.invoke(app, [*w, "collect", str(tmp_path / "photos")]).exit_code == 0
    result = runner.invoke(app, [*w, "select", "--input", "collect", "--candidates", str(names)])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert result.output.count("\n") == 1 and "not a Parquet file" in result.output
    assert "curate candidates" in result.output
    assert not (tmp_path / "w" / "select" / "_SUCCESS").exists()
