"""``curate export``: every format holds exactly the manifest's ok rows; the card's counts are the manifest's;
re-exports are idempotent and replace what changed; ``curate train`` reads the WebDataset shards."""

from __future__ import annotations

import hashlib
import json
import shutil
import tarfile
from pathlib import Path

import pandas as pd
from stage_helpers import seal_stage
from typer.testing import CliRunner

from curate import manifest
from curate.cli import app
from curate.export import final_stage
from curate.record import Status, set_status


def _export(workdir: Path, out: Path, *extra: str) -> None:
    result = CliRunner().invoke(app, ["-w", str(workdir), "export", str(out), *extra])
    assert result.exit_code == 0, result.output


def _ok_rows(workdir: Path, stage: str = "dedup") -> pd.DataFrame:
    frame = manifest.read_stage(workdir, stage).to_pandas()
    return frame[frame["status"] == Status.OK.value]


def _shard_samples(folder: Path) -> dict[str, set[str]]:
    samples: dict[str, set[str]] = {}
    for shard in sorted(folder.glob("*.tar")):
        with tarfile.open(shard) as tar:
            for name in tar.getnames():
                key, extension = name.split(".", 1)
                samples.setdefault(key, set()).add(extension)
    return samples


def test_every_format_holds_exactly_the_ok_rows(curated_workdir: Path, tmp_path: Path) -> None:
    assert final_stage(curated_workdir) == "dedup"  # the stage no other stage read
    out = tmp_path / "out"
    _export(curated_workdir, out, "--format", "imagefolder", "--format", "webdataset", "--shard-size", "20")
    ok = _ok_rows(curated_workdir)
    assert 0 < len(ok) < len(manifest.read_stage(curated_workdir, "dedup"))
    exported = pd.read_parquet(out / "manifest.parquet")
    assert sorted(exported["image_id"]) == sorted(ok["image_id"])
    files = sorted(p.relative_to(out).as_posix() for p in (out / "images").rglob("*") if p.is_file())
    assert files == sorted(exported["file"])
    for row in exported.itertuples():
        assert hashlib.sha256((out / row.file).read_bytes()).hexdigest() == row.sha256
        assert row.file.split("/")[1] == row.identity_id  # ImageFolder: images/<identity>/<image>
    listed = (out / "list.txt").read_text().splitlines()
    assert sorted(line.split()[0] for line in listed) == files
    samples = _shard_samples(out / "webdataset")
    assert len(samples) == len(ok) and all(ext == {"png", "json"} for ext in samples.values())
    assert sorted(samples) == sorted(exported["key"])
    assert "path" not in exported and "crop_path" not in exported  # no absolute paths travel
    assert set(exported["identity_id"]) <= {i for i in ok["identity_id"]}

    originals = tmp_path / "originals"
    _export(curated_workdir, originals, "--images", "originals", "--no-card")
    by_original = pd.read_parquet(originals / "manifest.parquet")
    assert len(by_original) == len(ok) and (by_original["sha256"] == by_original["image_id"]).all()
    assert all(name.endswith(".pgm") for name in by_original["file"])


def test_card_counts_are_the_manifests(curated_workdir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    _export(curated_workdir, out)
    card = json.loads((out / "card.json").read_text())
    final = manifest.read_stage(curated_workdir, "dedup").to_pandas()
    ok = final[final["status"] == Status.OK.value]
    assert card["composition"]["images"] == len(ok)
    assert card["composition"]["identities"] == ok["identity_id"].nunique()
    assert card["composition"]["rows_collected"] == len(final)
    removed = final[final["status"] != Status.OK.value]["status"].value_counts().to_dict()
    assert card["removals"]["by_status"] == removed
    steps = {step["stage"]: step for step in card["removals"]["by_stage"]}
    assert steps["collect"]["dropped"] == {"exact_duplicate": 1, "failed_decode": 1}
    # rank's low_score copies of kept images become duplicates in dedup: relabelled, not dropped twice
    ranked = manifest.read_stage(curated_workdir, "rank").to_pandas()["status"]
    relabelled = int(((ranked == "low_score") & (final["status"] == "duplicate")).sum())
    assert relabelled > 0 and steps["dedup"]["relabelled"] == relabelled
    assert sum(sum(step["dropped"].values()) for step in steps.values()) == sum(removed.values())
    assert steps["select"]["dropped"]["excluded"] == 10  # the benchmark identity's ten images
    assert [e["identity"] for e in card["collection"]["benchmark_exclusions"]] == ["s6"]
    gender = card["attributes"]["gender"]
    assert sum(v["images"] for v in gender.values()) == len(ok)
    assert card["purity"]["estimate"] is not None and "classifier" in card["purity"]["method"]
    text = (out / "README.md").read_text()
    assert text.startswith("---\n") and "## Known limitations" in text and "s6" in text
    assert (out / "images_per_identity.png").stat().st_size > 1000


def test_reexport_is_idempotent_and_replaces_what_changed(curated_workdir: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    shutil.copytree(curated_workdir, work)
    out = tmp_path / "out"
    args = ("--format", "imagefolder", "--format", "webdataset", "--shard-size", "15")
    _export(work, out, *args)
    before = {p.name: p.read_bytes() for p in (out / "webdataset").glob("*.tar")}
    assert len(before) > 1
    _export(work, out, *args)
    state = json.loads((out / "_export.json").read_text())
    assert {p.name: p.read_bytes() for p in (out / "webdataset").glob("*.tar")} == before

    # upstream change: review rejects one kept image in the last stage
    exported = pd.read_parquet(out / "manifest.parquet")
    victim = exported.iloc[0]
    shard = manifest.shard_of(victim["identity_id"], 2)
    path = manifest.shard_path(work, "dedup", shard)
    table = manifest.read_shard(path)
    row = table.column("image_id").to_pylist().index(victim["image_id"])
    manifest.write_shard(set_status(table, [row], Status.REJECTED_REVIEW, "test"), path)
    seal_stage(work, "dedup", 2)  # as a re-run of the stage would leave it
    _export(work, out, *args)
    again = pd.read_parquet(out / "manifest.parquet")
    assert len(again) == len(exported) - 1 and victim["image_id"] not in set(again["image_id"])
    assert not (out / victim["file"]).exists()
    after = {p.name: p.read_bytes() for p in (out / "webdataset").glob("*.tar")}
    changed = [name for name in before if after.get(name) != before[name]]
    assert changed == [victim["shard"].split("/")[1]]  # only the victim's shard was rewritten
    assert json.loads((out / "_export.json").read_text())["files"] != state["files"]


def test_curate_train_reads_the_webdataset_shards(curated_workdir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    _export(curated_workdir, out, "--format", "webdataset", "--no-card")
    assert not (out / "images").exists() and not (out / "list.txt").exists()
    args = ["-w", str(tmp_path), "train", "--images", str(out / "webdataset"), "--out", str(tmp_path / "t")]
    settings = [
        "--epochs",
        "1",
        "--input-size",
        "32",
        "--batch-size",
        "8",
        "--head",
        "softmax",
        "--threads",
        "1",
    ]
    result = CliRunner().invoke(app, [*args, *settings, "--no-progress"])
    assert result.exit_code == 0, result.output
    config = json.loads((tmp_path / "t" / "model" / "embedder.json").read_text())
    assert config["input_size"] == [32, 32]
    from curate.train.data import load_images

    loaded = load_images(out / "webdataset", None, "dedup")
    ok = _ok_rows(curated_workdir)
    assert len(loaded.paths) == len(ok) and loaded.classes == sorted(ok["identity_id"].unique())


def test_export_refuses_a_foreign_folder_and_reads_review_first(
    curated_workdir: Path, tmp_path: Path
) -> None:
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    result = CliRunner().invoke(app, ["-w", str(curated_workdir), "export", str(foreign)])
    assert result.exit_code == 1 and "choose an empty or new folder" in result.output
    assert (foreign / "notes.txt").read_text() == "mine"
    work = tmp_path / "work"
    shutil.copytree(curated_workdir, work)
    shutil.copytree(work / "rank", work / "review")
    config = json.loads((work / "review" / "_config.json").read_text())
    (work / "review" / "_config.json").write_text(
        json.dumps({**config, "stage": "review", "input_stage": "dedup"})
    )
    seal_stage(work, "review", len(manifest.list_shards(work, "review")))
    assert final_stage(work) == "review"


def test_card_reports_review_coverage_agreement_and_restored_rows(
    curated_workdir: Path, tmp_path: Path
) -> None:
    """A review stage's columns (as the review stage writes them) become the card's review figures."""
    import pyarrow as pa

    work = tmp_path / "work"
    shutil.copytree(curated_workdir, work)
    shutil.copytree(work / "dedup", work / "review")
    config = json.loads((work / "review" / "_config.json").read_text())
    (work / "review" / "_config.json").write_text(
        json.dumps({**config, "stage": "review", "input_stage": "dedup"})
    )
    decided = {"ok": 0, "low_score": 0}
    for shard in manifest.list_shards(work, "review"):
        path = manifest.shard_path(work, "review", shard)
        table = manifest.read_shard(path)
        status = table.column("status").to_pylist()
        decisions, votes = [None] * table.num_rows, [None] * table.num_rows
        first_ok = status.index("ok") if "ok" in status else None
        first_low = status.index("low_score") if "low_score" in status else None
        if first_ok is not None and not decided["ok"]:
            decisions[first_ok], votes[first_ok] = "reject", "alice=reject; bob=accept"
            table = set_status(table, [first_ok], Status.REJECTED_REVIEW, "alice: not this person")
            decided["ok"] += 1
        if first_low is not None and not decided["low_score"]:
            decisions[first_low], votes[first_low] = "accept", "alice=accept; bob=accept"
            table = set_status(table, [first_low], Status.OK, "")
            decided["low_score"] += 1
        table = table.append_column("review_decision", pa.array(decisions, pa.string()))
        table = table.append_column("review_votes", pa.array(votes, pa.string()))
        manifest.write_shard(table, path)
    seal_stage(work, "review", len(manifest.list_shards(work, "review")))
    assert decided == {"ok": 1, "low_score": 1}
    out = tmp_path / "out"
    _export(work, out)
    card = json.loads((out / "card.json").read_text())
    review = card["review"]
    reviewable = manifest.read_stage(work, "dedup").to_pandas()["status"].isin(["ok", "low_score"]).sum()
    assert review["reviewable_images"] == reviewable and review["images_decided"] == 2
    assert review["coverage"] == round(2 / reviewable, 4)
    assert review["rejected"] == 1 and review["restored"] == 1 and review["agreement"] == 0.5
    step = card["removals"]["by_stage"][-1]
    assert step["stage"] == "review" and step["restored"] == 1 and step["dropped"] == {"rejected_review": 1}
    assert card["composition"]["images"] == len(_ok_rows(work, "review"))


def test_a_moved_workdir_reads_and_exports_its_own_crops(curated_workdir: Path, tmp_path: Path) -> None:
    """Crop paths name the workdir they were written in; a moved copy reads the crops it carries."""
    moved = tmp_path / "elsewhere" / "work"
    shutil.copytree(curated_workdir, moved)
    store = str(moved.resolve() / "crops")
    written = manifest.read_shard(manifest.shard_path(moved, "dedup", 0)).column("crop_path").to_pylist()
    assert any(value and not value.startswith(store) for value in written)  # as the faces stage wrote them
    crops = [value for value in _ok_rows(moved)["crop_path"] if value]
    assert crops and all(value.startswith(store) and Path(value).is_file() for value in crops)
    _export(moved, tmp_path / "out")
    exported = sorted((tmp_path / "out" / "images").rglob("*.png"))
    digests = {hashlib.sha256(path.read_bytes()).hexdigest() for path in exported}
    assert digests == {Path(value).stem for value in crops}
    result = CliRunner().invoke(app, ["-w", str(moved), "describe", "--overwrite"])
    assert result.exit_code == 0, result.output
    described = manifest.read_shard(manifest.shard_path(moved, "describe", 0)).column("crop_path").to_pylist()
    assert all(value.startswith(store) for value in described if value)
