"""Review: plan and export, the decision log, CSV in/out, the conflict rule, apply, the page's gate."""

from __future__ import annotations

import sqlite3
import time
import warnings

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from review_fixtures import make_workdir, write_stage
from sklearn.metrics import cohen_kappa_score

from curate.errors import CurateError
from curate.executor import ExecutorOptions
from curate.review import (
    DecisionStore,
    Event,
    apply_decisions,
    build_plan,
    decide_from_truth,
    export_review,
    read_csv,
    read_plan,
    record_decisions,
    review_input_stage,
    store_path,
    write_csv,
)
from curate.review.decisions import cohen_kappa, import_events, resolve
from curate.review.images import allowed_roots
from curate.review.server import create_app
from curate.review.source import load_rows, training_stage

with warnings.catch_warnings():  # starlette suggests httpx2; the httpx it ships with works
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

LOCAL = ExecutorOptions(workers=1, processes=False)
T = "2026-12-02T10:00:0{}+00:00"


@pytest.fixture
def workdir(tmp_path, data_dir):
    folder = tmp_path / "run"
    make_workdir(folder, data_dir)
    return folder


def test_plan_blocks_follow_score_and_budget_takes_the_most_uncertain(workdir):
    rows = load_rows(workdir, "rank")
    plan = build_plan(rows, block=4)
    first = plan.items[plan.items["identity_id"] == "cfp-002"]  # flagged identities come first
    assert plan.items["identity_id"].iloc[0] == "cfp-002"
    assert first["rank_score"].is_monotonic_decreasing
    assert first["block"].tolist() == [1, 1, 1, 1, 2, 2, 2, 2, 3, 3]
    assert first["position"].tolist()[:5] == [1, 2, 3, 4, 1]
    budget = build_plan(rows, block=4, budget=5)
    assert len(budget.items) == 5
    nearest = (rows["rank_score"] - 0.5).abs()
    pair = set(rows.loc[rows["needs_review"], "image_id"])
    expected = pair | set(
        rows.loc[~rows["image_id"].isin(pair)].assign(d=nearest).nsmallest(3, "d")["image_id"]
    )
    assert set(budget.items["image_id"]) == expected
    assert len(plan.pairs) == 1 and plan.pairs["identity_a"].iloc[0] == "cfp-001"
    flags = plan.identities.set_index("identity_id")
    assert flags.loc["cfp-002", "flags"] == "impure overlap" and flags.loc["cfp-002", "twin_ids"] == "cfp-003"
    with pytest.raises(CurateError, match="--block 0"):
        build_plan(rows, block=0)


def test_export_writes_tables_csv_and_a_contact_sheet_per_block(workdir):
    result = export_review(workdir, block=5)
    out = result.out
    items = pd.read_csv(out / "items.csv")
    assert len(items) == result.items == 30
    assert {"image_id", "identity_id", "block", "position", "rank_score", "flags", "why"} <= set(
        items.columns
    )
    assert pd.read_parquet(out / "pairs.parquet")["reason"].str.contains("near-duplicate").all()
    sheets = sorted((out / "sheets").glob("*.png"))
    assert len(sheets) == result.sheets == 6
    with Image.open(sheets[0]) as sheet:
        grey_levels = sum(1 for count in sheet.convert("L").histogram() if count)
        assert sheet.size[0] > 1000 and grey_levels > 50  # real photos in it
    assert (
        read_plan(out).items["image_id"].tolist()
        == pd.read_parquet(out / "items.parquet")["image_id"].tolist()
    )


def test_input_stage_is_the_newer_curation_stage_or_the_override(workdir):
    assert review_input_stage(workdir) == "rank"
    time.sleep(0.05)
    write_stage(workdir, "dedup", load_rows(workdir, "rank").to_dict("records"))
    assert review_input_stage(workdir) == "dedup"
    assert review_input_stage(workdir, "rank") == "rank"
    with pytest.raises(CurateError, match="--input nope"):
        review_input_stage(workdir, "nope")


def test_store_is_wal_durable_and_undo_reverts_a_whole_batch(tmp_path):
    path = tmp_path / "decisions.sqlite"
    store = DecisionStore(path)
    a, b = "a" * 64, "b" * 64
    store.record([Event("reject", "alice", a)])
    store.record([Event("accept", "alice", a), Event("accept", "alice", b)])  # one step: accept the rest
    store.close()
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    reopened = DecisionStore(path)
    assert len(reopened.undo("alice")) == 2
    current = reopened.current()
    assert current.set_index("image_id")["decision"].to_dict() == {a: "reject"}
    assert reopened.undo("bob") == []
    with pytest.raises(CurateError, match="use one of"):
        reopened.record([Event("maybe", "alice", a)])


def test_csv_round_trip_and_bad_rows_are_refused_with_the_line(tmp_path):
    store = DecisionStore(tmp_path / "d.sqlite")
    events = [
        Event("reject", "alice", "a" * 64, note="blurred, not him", time=T.format(1)),
        Event("identity_merge", "alice", identity_id="x-1", target="y-2", time=T.format(2)),
        Event("dup_keep", "bob", "a" * 64, target="b" * 64, time=T.format(3)),
    ]
    assert import_events(store, events) == 3
    assert import_events(store, events) == 0  # the same rows again are not stored twice
    out = tmp_path / "out.csv"
    assert write_csv(store, out) == 3
    frame = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert list(frame.columns)[:5] == ["image_id", "decision", "reviewer", "time", "note"]
    assert [(e.decision, e.note, e.target) for e in read_csv(out)] == [
        (e.decision, e.note, e.target) for e in events
    ]
    bad = tmp_path / "bad.csv"
    bad.write_text("image_id,decision,reviewer,time,note\n" + "a" * 64 + ",accept,alice,,\nzz,reject,bob,,\n")
    with pytest.raises(CurateError, match="line 3: image_id 'zz'"):
        read_csv(bad)
    bad.write_text("image_id,decision,reviewer,time\n" + "a" * 64 + ",accept,al,yesterday\n")
    with pytest.raises(CurateError, match="line 2: time 'yesterday' is not ISO 8601"):
        read_csv(bad)
    bad.write_text("\ufeffimage_id,decision,reviewer\r\n" + "a" * 64 + ",accept,al\r\n")  # Excel
    assert read_csv(bad)[0].reviewer == "al"
    bad.write_text("image,decision\nx,accept\n")
    with pytest.raises(CurateError, match="missing column"):
        read_csv(bad)


def _events(rows):
    frame = pd.DataFrame(rows)
    for column in ("image_id", "identity_id", "target", "note"):
        frame[column] = frame.get(column, "")
    frame = frame.fillna("")
    frame["kind"] = frame["decision"].map(
        lambda d: "identity" if d.startswith("identity") else "pair" if d.startswith("dup") else "image"
    )
    return frame.assign(seq=range(len(frame)), time=T.format(0), undone=False)


def test_conflict_rule_majority_then_removal_unsure_not_counted():
    a, b, c = "a" * 64, "b" * 64, "c" * 64
    events = _events(
        [
            {"image_id": a, "decision": "accept", "reviewer": "r1"},
            {"image_id": a, "decision": "reject", "reviewer": "r2"},  # tie -> removal
            {"image_id": b, "decision": "accept", "reviewer": "r1"},
            {"image_id": b, "decision": "accept", "reviewer": "r2"},
            {"image_id": b, "decision": "reject", "reviewer": "r3"},  # majority accept
            {"image_id": c, "decision": "reject", "reviewer": "r1"},
            {"image_id": c, "decision": "accept", "reviewer": "r1"},  # r1 changed their mind
            {"image_id": c, "decision": "unsure", "reviewer": "r2"},
            {"image_id": a, "target": b, "decision": "dup_keep", "reviewer": "r1"},
            {"image_id": b, "target": a, "decision": "dup_keep", "reviewer": "r2"},  # tied pair
        ]
    )
    settled = resolve(events).set_index("key")
    assert settled.loc[a, "decision"] == "reject" and settled.loc[a, "how"] == "tie: removal wins"
    assert settled.loc[b, "decision"] == "accept" and settled.loc[b, "conflict"]
    assert settled.loc[c, "decision"] == "accept" and not settled.loc[c, "conflict"]
    assert pd.isna(settled.loc[f"{a}|{b}", "decision"])


def test_cohen_kappa_matches_sklearn():
    first = ["accept", "accept", "reject", "unsure", "accept", "reject", "accept"]
    second = ["accept", "reject", "reject", "unsure", "accept", "accept", "accept"]
    assert cohen_kappa(first, second) == pytest.approx(cohen_kappa_score(first, second))
    assert cohen_kappa(["accept"] * 3, ["accept"] * 3) is None


def test_apply_writes_the_review_stage_and_keeps_decisions_across_an_upstream_rerun(workdir):
    plan = build_plan(load_rows(workdir, "rank"), block=200)
    items = plan.items.set_index("image_id")
    ids = {k: items.index[items["identity_id"] == k].tolist() for k in ("cfp-001", "cfp-002", "cfp-003")}
    low = items.index[(items["status"] == "low_score") & (items["identity_id"] == "cfp-001")][0]
    pair = plan.pairs.iloc[0]
    decisions = pd.DataFrame(
        [
            {"image_id": ids["cfp-001"][2], "decision": "reject", "reviewer": "alice", "note": "a cartoon"},
            {"image_id": low, "decision": "accept", "reviewer": "alice"},
            {
                "identity_id": "cfp-002",
                "decision": "identity_drop",
                "reviewer": "bob",
                "note": "mixed people",
            },
            {"identity_id": "cfp-003", "decision": "identity_merge", "target": "cfp-002", "reviewer": "bob"},
            {
                "image_id": pair["image_b"],
                "target": pair["image_a"],
                "decision": "dup_keep",
                "reviewer": "bob",
            },
        ]
    )
    first = apply_decisions(workdir, decisions, options=LOCAL)
    assert first.changed["low_score->ok"] == 1 and first.changed["ok->duplicate"] == 1
    manifest = pd.read_parquet(workdir / "review").set_index("image_id")
    assert manifest.loc[ids["cfp-001"][2], "status"] == "rejected_review"
    assert "rejected in review by alice" in manifest.loc[ids["cfp-001"][2], "reason"]
    assert "a cartoon" in manifest.loc[ids["cfp-001"][2], "reason"]
    assert manifest.loc[low, "status"] == "ok" and "accepted in review" in manifest.loc[low, "review_note"]
    dropped = manifest[manifest["identity_id"] == "cfp-002"]
    assert set(dropped["status"]) == {"rejected_review", "low_score"}  # every ok row of the identity
    assert (dropped["identity_verdict"] == "drop").all()
    merged = manifest[manifest["identity_id"] == "cfp-003"]
    assert (merged["review_identity_id"] == "cfp-002").all() and (merged["identity_verdict"] == "merge").all()
    assert manifest.loc[pair["image_a"], "status"] == "duplicate"
    assert pair["image_b"] in manifest.loc[pair["image_a"], "reason"]
    assert training_stage(workdir) == "review"

    # re-run upstream without one reviewed image: every other decision still applies, that one is listed
    time.sleep(0.05)
    rows = [r for r in load_rows(workdir, "rank").to_dict("records") if r["image_id"] != ids["cfp-001"][2]]
    write_stage(workdir, "rank", rows)
    assert training_stage(workdir) == "rank"  # the old review is stale now
    result = apply_decisions(workdir, options=LOCAL)
    assert result.gone["image_id"].tolist() == [ids["cfp-001"][2]]
    again = pd.read_parquet(workdir / "review").set_index("image_id")
    assert again.loc[low, "status"] == "ok" and again.loc[pair["image_a"], "status"] == "duplicate"
    assert result.outcomes["applied"] == 4
    audit = pd.read_parquet(workdir / "review" / "_audit.parquet")
    assert len(audit) == 5 and set(audit["reviewer"]) == {"alice", "bob"}


def test_scripted_decisions_from_synthetic_ground_truth(tmp_path):
    from curate.synth import SynthConfig, synthesize

    truth = synthesize(SynthConfig(identities=4, images_per_identity=12, seed=3), tmp_path / "synth")
    rng = np.random.default_rng(0)
    originals = truth.set_index("file")["sha256"]
    rows = []
    for fact in truth.itertuples(index=False):
        partner = originals.get(fact.duplicate_of) if isinstance(fact.duplicate_of, str) else None
        rows.append(
            {
                "image_id": fact.sha256,
                "identity_id": fact.folder_identity,
                "identity_name": fact.folder_identity,
                "source": str(tmp_path / "synth" / "images" / fact.file),
                "path": str(tmp_path / "synth" / "images" / fact.file),
                "status": "failed_decode" if fact.kind == "corrupt" else "ok",
                "reason": "",
                "rank_score": float(rng.uniform(0.3, 1.0)),
                "needs_review": partner is not None,
                "review_reason": f"possible near-duplicate of {partner} (x): cos 0.9" if partner else None,
                "identity_review": True,
            }
        )
    workdir = tmp_path / "run"
    write_stage(workdir, "rank", rows)
    plan = build_plan(load_rows(workdir, "rank"))
    frame = decide_from_truth(plan, tmp_path / "synth" / "truth.parquet")
    by_kind = truth.set_index("sha256")["kind"]
    facts = truth.set_index("sha256")
    images = frame[frame["decision"].isin(["accept", "reject", "wrong_identity"])]
    for image_id, decision in zip(images["image_id"], images["decision"], strict=True):
        fact = facts.loc[image_id]
        right = fact["true_identity"] == fact["folder_identity"]
        assert decision == (
            "reject" if pd.isna(fact["true_identity"]) else "accept" if right else "wrong_identity"
        )
    assert {"wrong_identity", "reject", "accept"} == set(images["decision"])
    assert len(images) == len(plan.items)  # every planned image decided; the corrupt file is not planned
    keeps = frame[frame["decision"] == "dup_keep"]
    assert len(keeps) >= 1 and set(by_kind[keeps["target"]]) == {"near_duplicate"}
    assert set(frame.loc[frame["identity_id"] != "", "decision"]) == {"identity_keep"}
    assert frame["note"].str.contains("not a person|show the person").all()
    assert record_decisions(workdir, frame) == len(frame)
    result = apply_decisions(workdir, options=LOCAL)
    manifest = pd.read_parquet(workdir / "review")
    removed = manifest[manifest["status"] == "rejected_review"]["image_id"]
    assert {"intruder", "non_face"} <= set(by_kind[removed]) <= {"intruder", "non_face", "near_duplicate"}
    assert result.outcomes["applied"] == len(frame)


def test_page_gate_token_and_files_outside_the_run(workdir, tmp_path):
    export_review(workdir, block=5, sheets=False)
    plan = read_plan(workdir / "_review" / "export")
    store = DecisionStore(store_path(workdir))
    app = create_app(workdir, plan, store, allowed_roots(workdir), "s3cret")
    image_id = plan.items["image_id"].iloc[0]
    with TestClient(app) as client:
        assert client.get("/api/state").status_code == 403
        assert client.get(f"/img/{image_id}", headers={"X-Review-Token": "nope"}).status_code == 403
        page = client.get("/?token=s3cret")
        assert page.status_code == 200 and "curate_review_token" in page.headers["set-cookie"]
        assert client.get(f"/img/{image_id}").status_code == 200  # the page's cookie carries the token
        headers = {"X-Review-Token": "s3cret"}
        block = client.get("/api/block", params={"identity": "cfp-001", "block": 1, "reviewer": "al"}).json()
        assert block["server_ms"] >= 0 and len(block["items"]) == 5 and len(block["pairs"]) == 1
        answer = client.post(
            "/api/decide",
            json={"reviewer": "al", "decisions": [{"image_id": "f" * 64, "decision": "reject"}]},
        )
        assert answer.status_code == 400  # not an image of this review
        for reviewer, decision in (("al", "accept"), ("bo", "reject")):
            body = {"reviewer": reviewer, "decisions": [{"image_id": image_id, "decision": decision}]}
            assert client.post("/api/decide", json=body, headers=headers).json() == {"stored": 1}
        agreement = client.get("/api/agreement").json()["blocks"]
        assert agreement[0]["agreement"] == 0.0 and agreement[0]["images"] == 1
        assert client.get("/img/..%2F..%2Fetc%2Fpasswd").status_code == 404
        verdict = {
            "reviewer": "al",
            "identity_id": "cfp-002",
            "decision": "identity_merge",
            "target": "cfp-003",
        }
        assert client.post("/api/identity", json=verdict).json() == {"stored": 1}
        pair = plan.pairs.iloc[0]
        keep = {
            "reviewer": "al",
            "decision": "dup_keep",
            "image_id": pair["image_b"],
            "target": pair["image_a"],
        }
        assert client.post("/api/pair", json=keep).json() == {"stored": 1}
        assert client.post("/api/pair", json={**keep, "target": image_id}).status_code == 400  # not a pair
        shown = client.get("/api/block", params={"identity": "cfp-001", "block": 1, "reviewer": "al"}).json()
        assert shown["pairs"][0]["choice"]["image_id"] == pair["image_b"]
        assert client.post("/api/undo", json={"reviewer": "al"}).json()["undone"][0]["decision"] == "dup_keep"
        position = {"reviewer": "al", "identity_id": "cfp-002", "block": 2, "image_id": image_id}
        assert client.post("/api/position", json=position).json() == {"saved": True}
        state = client.get("/api/state", params={"reviewer": "al"}).json()
        assert state["position"]["block"] == 2 and state["done"] == 1 and state["done_me"] == 1
    settled = resolve(store.events()).set_index("kind")
    assert settled.loc["identity", "target"] == "cfp-003" and "pair" not in settled.index
    store.close()


@pytest.mark.slow  # starts a dask LocalCluster for apply
def test_cli_export_import_decisions_apply_and_one_line_errors(workdir, tmp_path):
    from typer.testing import CliRunner

    from curate.cli import app

    runner = CliRunner()
    w = ["-w", str(workdir), "--workers", "1"]
    missing = runner.invoke(app, [*w, "review", "apply"])
    assert (
        missing.exit_code == 1 and missing.output.count("\n") == 1 and "curate review serve" in missing.output
    )
    exported = runner.invoke(app, [*w, "review", "export", "--block", "5", "--budget", "12", "--no-sheets"])
    assert exported.exit_code == 0, exported.output
    items = pd.read_csv(workdir / "_review" / "export" / "items.csv")
    assert len(items) == 12
    target = items["image_id"].iloc[0]
    csv = tmp_path / "in.csv"
    csv.write_text(
        "image_id,decision,reviewer,time,note\n"
        f"{target},reject,carol,2026-12-02T09:00:00+00:00,not her\n"
        f"{target},accept,dave,2026-12-02T09:01:00+00:00,\n"
    )
    assert runner.invoke(app, [*w, "review", "import", str(csv)]).exit_code == 0
    applied = runner.invoke(app, [*w, "review", "apply"])
    assert applied.exit_code == 0, applied.output
    assert "conflict on image" in applied.output and "tie: removal wins" in applied.output
    row = pd.read_parquet(workdir / "review").set_index("image_id").loc[target]
    assert row["status"] == "rejected_review" and "carol" in row["reason"] and "not her" in row["reason"]
    out = tmp_path / "out.csv"
    assert runner.invoke(app, [*w, "review", "decisions", "--out", str(out)]).exit_code == 0
    assert sorted(pd.read_csv(out)["reviewer"]) == ["carol", "dave"]
    bad = tmp_path / "bad.csv"
    bad.write_text("image_id,decision,reviewer\nabc,maybe,eve\n")
    refused = runner.invoke(app, [*w, "review", "import", str(bad)])
    assert refused.exit_code == 1 and "line 2" in refused.output and refused.output.count("\n") == 1


def test_training_labels_follow_a_review_merge(tmp_path, data_dir):
    import pyarrow as pa

    from curate.manifest import shard_path, write_shard
    from curate.train.data import from_manifest

    orl = data_dir / "orl_faces"
    rows = {
        "identity_id": ["a", "a", "b", "c"],
        "review_identity_id": ["a", "a", "a", "c"],  # b was merged into its twin a in review
        "path": [str(orl / f"s{k}/1.pgm") for k in (1, 2, 3, 4)],
        "status": ["ok", "ok", "ok", "rejected_review"],
    }
    write_shard(pa.table(rows), shard_path(tmp_path, "review", 0))
    images = from_manifest(tmp_path, "review")
    assert images.classes == ["a"] and images.labels == [0, 0, 0]
