"""The declared pipelines in pipelines/ parse and validate into stage configs."""

from __future__ import annotations

import json
import shutil
import tomllib
from pathlib import Path

import pytest

from curate.errors import ConfigError
from curate.pipeline import load_pipeline, parse_pipeline

PIPELINES = Path(__file__).resolve().parents[1] / "pipelines"


def test_cfp_pipeline_validates_against_the_real_data(data_dir):
    spec = load_pipeline(PIPELINES / "cfp.toml")
    assert [s.key for s in spec.stages] == [
        "collect",
        "exact",
        "faces",
        "select",
        "describe",
        "rank",
        "dedup",
    ]
    collect = spec.stages[0].settings
    assert Path(collect["source"]) == (data_dir / "cfp" / "Data" / "Images").resolve()
    assert [s.input_stage for s in spec.stages[1:]] == [
        "collect",
        "exact",
        "faces",
        "select",
        "describe",
        "rank",
    ]


def test_vggface_pipeline_validates_with_a_url_list(tmp_path):
    (tmp_path / "urls.csv").write_text("identity,url,rank\nAnn,http://example.org/a.jpg,1\n")
    data = tomllib.loads((PIPELINES / "vggface.toml").read_text())
    spec = parse_pipeline(data, base=tmp_path)
    assert spec.stages[0].key == "download" and spec.shards == 64
    keys = [s.key for s in spec.stages]
    assert keys.index("rank") < keys.index("dedup")  # VGG-Face's order: filter, then near-duplicates
    rank = spec.stages[keys.index("rank")].settings
    assert (rank["positives"], rank["keep"], rank["scorer"]) == (50, 1000, "classifier")
    assert spec.stages[keys.index("dedup")].input_stage == "rank"


def test_demo_pipeline_is_the_packaged_one(tmp_path):
    packaged = Path(__file__).resolve().parents[1] / "curate" / "pipelines" / "demo.toml"
    assert (PIPELINES / "demo.toml").read_text() == packaged.read_text()
    (tmp_path / "synth" / "images" / "someone").mkdir(parents=True)
    spec = parse_pipeline(tomllib.loads(packaged.read_text()), base=tmp_path)
    assert spec.stages[0].settings["source"] == str((tmp_path / "synth" / "images").resolve())


def test_a_source_stage_listed_after_another_is_refused_before_it_reads_that_stage(tmp_path, data_dir):
    """collect listed second once read faces' rows as its input and recorded 'faces' as its input stage."""
    from typer.testing import CliRunner

    from curate.cli import app

    source = tmp_path / "images"
    for name in ("s1", "s2"):
        shutil.copytree(data_dir / "orl_faces" / name, source / name)
    workdir = tmp_path / "w"
    first = tmp_path / "first.toml"
    first.write_text(f'stages = ["collect", "faces"]\n[collect]\nsource = "{source}"\n')
    run = ["-w", str(workdir), "--workers", "0", "--shards", "2", "run"]
    assert CliRunner().invoke(app, [*run, str(first)]).exit_code == 0
    recorded = (workdir / "collect" / "_config.json").read_text()
    swapped = tmp_path / "swapped.toml"
    swapped.write_text(f'stages = ["faces", "collect"]\n[collect]\nsource = "{source}"\n')
    result = CliRunner().invoke(app, [*run, str(swapped)])
    assert result.exit_code == 1 and "\n" not in result.output.strip()
    assert "list it first" in result.output
    assert (workdir / "collect" / "_config.json").read_text() == recorded
    assert json.loads(recorded)["input_stage"] is None


def test_a_stage_listed_twice_an_input_on_a_source_or_a_table_that_is_not_one_is_one_line():
    source = {"source": "."}
    with pytest.raises(ConfigError, match="listed twice"):
        parse_pipeline({"stages": ["collect", "faces", "faces"], "collect": source})
    with pytest.raises(ConfigError, match="no 'input'"):
        parse_pipeline({"stages": ["collect"], "collect": {**source, "input": "faces"}})
    with pytest.raises(ConfigError, match=r"give a table of settings: \[collect\]"):
        parse_pipeline({"stages": ["collect"], "collect": "x"})
