"""Scripted review: decisions drawn from a synthetic collection's ground truth, standing in for a person.

For the demo and tests only: a real reviewer looks at the images; this reads ``truth.parquet`` (written by
``curate synth``), matched to the planned images by content (``sha256`` = ``image_id``):

- an image showing its folder's person: ``accept``; someone else: ``wrong_identity``; no face: ``reject``;
- a borderline duplicate pair: the planted original is kept (``dup_keep``), else both (``dup_both``);
- a flagged identity: ``identity_drop`` when fewer than half its planned images are right, else keep.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from curate.review.decisions import CSV_COLUMNS
from curate.review.plan import ReviewPlan
from curate.review.store import now

logger = logging.getLogger(__name__)

REVIEWER = "scripted-ground-truth"


def _image_rows(items: pd.DataFrame, truth: pd.DataFrame, reviewer: str, at: str) -> list[dict]:
    known = truth.drop_duplicates("sha256").set_index("sha256")
    rows = []
    for image_id in items["image_id"]:
        if image_id not in known.index:
            continue
        fact = known.loc[image_id]
        if pd.isna(fact["true_identity"]):
            decision = "reject"
        elif fact["true_identity"] != fact["folder_identity"]:
            decision = "wrong_identity"
        else:
            decision = "accept"
        rows.append({"image_id": image_id, "decision": decision, "reviewer": reviewer, "time": at})
    return rows


def _pair_rows(pairs: pd.DataFrame, truth: pd.DataFrame, reviewer: str, at: str) -> list[dict]:
    by_sha = truth.drop_duplicates("sha256").set_index("sha256")
    rows = []
    for a, b in zip(pairs["image_a"], pairs["image_b"], strict=True):
        if a not in by_sha.index or b not in by_sha.index:
            continue
        fa, fb = by_sha.loc[a], by_sha.loc[b]
        if fa["duplicate_of"] == fb["file"] or fb["duplicate_of"] == fa["file"]:
            keeper, other = (b, a) if fa["duplicate_of"] == fb["file"] else (a, b)
            rows.append({"image_id": keeper, "target": other, "decision": "dup_keep"})
        else:
            rows.append({"image_id": a, "target": b, "decision": "dup_both"})
    return [{**r, "reviewer": reviewer, "time": at} for r in rows]


def _identity_rows(plan: ReviewPlan, images: list[dict], reviewer: str, at: str) -> list[dict]:
    verdicts = pd.DataFrame(images, columns=["image_id", "decision"]).merge(
        plan.items[["image_id", "identity_id"]], on="image_id"
    )
    flagged = plan.identities[plan.identities["flags"].fillna("") != ""]
    rows = []
    for identity_id in flagged["identity_id"]:
        own = verdicts[verdicts["identity_id"] == identity_id]
        right = float((own["decision"] == "accept").mean()) if len(own) else 1.0
        decision = "identity_drop" if right < 0.5 else "identity_keep"
        note = f"{right:.0%} of its planned images show the person"
        rows.append(
            {"identity_id": identity_id, "decision": decision, "reviewer": reviewer, "time": at, "note": note}
        )
    return rows


def decide_from_truth(plan: ReviewPlan, truth: pd.DataFrame | Path, reviewer: str = REVIEWER) -> pd.DataFrame:
    """Decisions for every planned image, pair and flagged identity that the truth table knows."""
    if not isinstance(truth, pd.DataFrame):
        truth = pd.read_parquet(truth)
    at = now()
    images = _image_rows(plan.items, truth, reviewer, at)
    rows = images + _pair_rows(plan.pairs, truth, reviewer, at) + _identity_rows(plan, images, reviewer, at)
    frame = pd.DataFrame(rows).reindex(columns=CSV_COLUMNS).astype(object).fillna("")
    frame["note"] = frame["note"].where(frame["note"] != "", "scripted from ground truth, not a person")
    logger.info("scripted review: %d decisions from ground truth", len(frame))
    return frame
