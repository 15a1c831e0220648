"""The declared pipelines in pipelines/ parse and validate into stage configs."""

from __future__ import annotations

import tomllib
from pathlib import Path

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
