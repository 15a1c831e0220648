"""``curate demo`` does the whole job on a small synthetic collection and reports against the truth."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from curate.cli import app
from curate.demo import demo_pipeline_data, matching_epochs


def test_demo_runs_end_to_end_and_reports(tmp_path, caplog):
    workdir = tmp_path / "demo"
    args = ["-w", str(workdir), "--workers", "2", "demo", "--identities", "8", "--images-per-identity", "14"]
    result = CliRunner().invoke(app, [*args, "--epochs", "3", "--training-seeds", "2"])
    assert result.exit_code == 0, result.output
    report = json.loads((workdir / "report.json").read_text())
    curation = report["curation"]
    assert curation["rows"] == 8 * 14
    assert curation["corrupt"]["removed"] == curation["corrupt"]["planted"] > 0  # corrupt files never pass
    assert curation["purity_after"] >= curation["purity_before"]
    assert curation["duplicate_pairs"]["planted"] > 0
    assert 0.0 <= curation["true_images_kept"] <= 1.0
    for label in ("uncurated", "curated"):
        figures = report["verification_heldout"][label]
        assert 0.0 <= figures["accuracy_mean"] <= 1.0 and 0.0 <= figures["roc_auc"] <= 1.0
        # two models per set, seeds 0 and 1; the set's accuracy is their mean
        assert len(figures["accuracy_by_seed"]) == 2 == report["training"][label]["seeds"]
        assert figures["accuracy_mean"] == pytest.approx(np.mean(figures["accuracy_by_seed"]))
        assert (workdir / "models" / f"{label}-seed1" / "model" / "embedder.json").is_file()
    assert "purity before -> after" in result.output
    # the whole recipe: export of the final manifest, the comparison with its uncertainty, the report
    # scripted review ran on the last curation stage and export read the review stage
    assert report["final_stage"] == "review"
    review = report["review"]
    assert review["decisions"] > 0 and "standing in for a person" in " ".join(result.output.split())
    final = pd.read_parquet(workdir / report["final_stage"])
    reviewed_from = pd.read_parquet(workdir / demo_pipeline_data()["stages"][-1])
    rejected = sum(n for change, n in review["changed"].items() if change.endswith("->rejected_review"))
    assert (final["status"] == "rejected_review").sum() == rejected > 0
    assert (final["status"] == "ok").sum() == (reviewed_from["status"] == "ok").sum() + sum(
        n for change, n in review["changed"].items() if change.endswith("->ok")
    ) - sum(n for change, n in review["changed"].items() if change.startswith("ok->"))
    assert report["export"]["images"] == (final["status"] == "ok").sum()
    assert len(list((workdir / "export" / "images").rglob("*.png"))) == report["export"]["images"]
    # both models get the same training budget in optimiser steps (the smaller curated set never trains less)
    budgets = report["training"]
    assert budgets["uncurated"]["epochs"] == 3 and budgets["curated"]["images"] == report["export"]["images"]
    assert budgets["curated"]["images"] < budgets["uncurated"]["images"]
    assert budgets["curated"]["epochs"] >= budgets["uncurated"]["epochs"]
    per_epoch = budgets["curated"]["steps"] // budgets["curated"]["epochs"]
    assert 0 <= budgets["curated"]["steps"] - budgets["uncurated"]["steps"] < per_epoch
    comparison = report["comparison"]
    assert "±" in comparison["sentence"] and comparison["sentence"] in " ".join(result.output.split())
    assert "2 training seeds" in comparison["method"] and "training runs included" in comparison["method"]
    low, high = comparison["difference"]["ci95"]
    assert low <= comparison["difference"]["accuracy"] <= high
    html = Path(report["report_html"]).read_text()
    assert "Ground-truth checks" in html and ">Review<" in html and "what the model looks at" in html
    assert "<td>curated</td><td>lighter</td>" in html and "<td>uncurated</td><td>darker</td>" in html
    assert f"report: {report['report_html']}" in " ".join(result.output.split())
    # a second run resumes: every stage skips its finished shards and the report is the same
    again = CliRunner().invoke(app, [*args, "--epochs", "3", "--training-seeds", "2"])
    assert again.exit_code == 0, again.output
    assert json.loads((workdir / "report.json").read_text())["curation"] == curation
    # other settings in the same workdir are refused in one line, never answered with the stored run
    for changed, named in ((["--epochs", "4"], "epochs 3 -> 4"), (["--seed", "1"], "seed 0 -> 1")):
        other = CliRunner().invoke(app, [*args, "--epochs", "3", "--training-seeds", "2", *changed])
        assert other.exit_code == 1, other.output
        assert named in other.output and "pass another --workdir" in other.output
    assert json.loads((workdir / "report.json").read_text())["curation"] == curation
    # a model trained on other data than this run's (an upstream stage ran again, or an older demo made
    # it) is trained again, never reported as this data's: here the curated seed-1 model's record says so
    stamp = workdir / "models" / "curated-seed1" / "demo_data.json"
    kept_model = workdir / "models" / "uncurated-seed1" / "model" / "embedder.json"
    kept_time, stale_time = kept_model.stat().st_mtime_ns, stamp.stat().st_mtime_ns
    stamp.write_text(json.dumps({"data": "what an earlier export held"}))
    retrained = CliRunner().invoke(app, [*args, "--epochs", "3", "--training-seeds", "2"])
    assert retrained.exit_code == 0, retrained.output
    assert "demo model curated-seed1 was trained on other data" in caplog.text
    assert json.loads(stamp.read_text())["data"] != "what an earlier export held"
    assert stamp.stat().st_mtime_ns > stale_time and kept_model.stat().st_mtime_ns == kept_time


def test_curated_model_trains_as_many_steps_as_the_uncurated_one():
    # 585 images: batches of 64, 9 steps an epoch; 240 images: 3 steps an epoch
    assert matching_epochs(12, 585, 240) == 36
    assert matching_epochs(12, 585, 585) == 12
    assert matching_epochs(12, 585, 200) == 36  # 3 steps an epoch: 108 steps exactly
    assert matching_epochs(12, 585, 150) == 54  # batches of 64: 2 steps an epoch
    assert matching_epochs(3, 100, 50) == 3  # tiny sets train in halves: 2 steps an epoch either way
