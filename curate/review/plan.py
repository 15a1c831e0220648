"""The review plan: which images a person looks at, in which blocks and order, and why.

VGG-Face's annotators went through each identity's images in blocks of 200 ordered by the classifier's score;
VGGFace2 sent only the uncertain band to people. Without a budget every ``ok`` or ``low_score`` image of every
identity is planned, ordered by ``rank_score`` (best first). With ``budget = N`` the N most uncertain images
are planned (a pending near-duplicate pair first, then scores nearest 0.5), most uncertain first. Flagged
identities (impure, or overlapping with a twin) come first. Borderline near-duplicate pairs and identity
flags get their own tables.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from curate.errors import CurateError
from curate.record import REVIEWABLE, Status

logger = logging.getLogger(__name__)

DEFAULT_BLOCK = 200
PARTNER = re.compile(r"near-duplicate of ([0-9a-f]{64})")
ITEM_COLUMNS = [
    "image_id",
    "identity_id",
    "identity_name",
    "block",
    "position",
    "order",
    "rank_score",
    "uncertainty",
    "status",
    "flags",
    "why",
    "reason",
    "image_path",
    "source",
]


@dataclass
class ReviewPlan:
    """Items in blocks, borderline duplicate pairs, and per-identity flags."""

    items: pd.DataFrame
    pairs: pd.DataFrame
    identities: pd.DataFrame
    block: int
    budget: int | None


def _uncertainty(frame: pd.DataFrame) -> np.ndarray:
    """1 = a coin toss (score 0.5 or a pending duplicate pair), 0 = the scorer is sure."""
    score = pd.to_numeric(frame["rank_score"], errors="coerce").to_numpy(dtype=float)
    value = 1.0 - 2.0 * np.abs(np.nan_to_num(score, nan=0.75) - 0.5)
    return np.where(frame["needs_review"].to_numpy(), 1.0, value)


def _flags_and_why(frame: pd.DataFrame) -> tuple[list[str], list[str]]:
    """Short flags and a sentence saying why each image is in review."""
    flags, why = [], []
    columns = ("status", "rank_score", "needs_review", "review_reason", "identity_review", "overlap_with")
    values = zip(*(frame[c].tolist() for c in columns), strict=True)  # lists: fast to walk
    for status, score, pending, pair, impure, overlap in values:
        f, w = [], []
        if status == Status.LOW_SCORE.value:
            f.append("low_score")
            w.append("dropped by rank")
        if pd.notna(score) and 0.35 <= score <= 0.65:
            f.append("uncertain")
            w.append(f"score {score:.2f} near the 0.5 boundary")
        if pending:
            f.append("near_duplicate")
            w.append(str(pair or "possible near-duplicate"))
        if impure:
            f.append("impure")
            w.append("identity estimated impure")
        if overlap:
            f.append("overlap")
            w.append(f"identity may be the same person as {overlap}")
        flags.append(" ".join(f))
        why.append("; ".join(w) or ("ranked by score" if pd.notna(score) else "in review (no score)"))
    return flags, why


def _order(frame: pd.DataFrame, budget: int | None) -> pd.DataFrame:
    """Pick and order the planned rows: by score, or the ``budget`` most uncertain."""
    score = pd.to_numeric(frame["rank_score"], errors="coerce").fillna(-1.0)
    frame = frame.assign(_score=score, _flagged=(frame["flags"].str.contains("impure|overlap")))
    if budget is not None:
        frame = frame.sort_values(["uncertainty", "image_id"], ascending=[False, True]).head(budget)
        by = ["_flagged", "identity_name", "identity_id", "uncertainty", "image_id"]
        ascending = [False, True, True, False, True]
    else:
        by = ["_flagged", "identity_name", "identity_id", "_score", "image_id"]
        ascending = [False, True, True, False, True]
    return frame.sort_values(by, ascending=ascending, kind="stable").drop(columns=["_score", "_flagged"])


def build_plan(rows: pd.DataFrame, block: int = DEFAULT_BLOCK, budget: int | None = None) -> ReviewPlan:
    """Plan the review of a manifest's rows (see the module docstring)."""
    if block < 1:
        raise CurateError(f"--block {block}: give a block size of 1 or more (VGG-Face used 200)")
    if budget is not None and budget < 1:
        raise CurateError(f"--budget {budget}: give a number of images of 1 or more, or leave it out")
    frame = rows[rows["status"].isin(list(REVIEWABLE)) & rows["image_id"].notna()]
    frame = frame.drop_duplicates(["identity_id", "image_id"]).copy()
    for column in ("needs_review", "identity_review"):
        frame[column] = frame[column].fillna(False).astype(bool)
    frame["uncertainty"] = _uncertainty(frame)
    frame["flags"], frame["why"] = _flags_and_why(frame)
    frame["image_path"] = frame["crop_path"].where(frame["crop_path"].notna(), frame["path"])
    frame = _order(frame, budget)
    frame["order"] = frame.groupby("identity_id", sort=False).cumcount()
    frame["block"] = frame["order"] // block + 1
    frame["position"] = frame["order"] % block + 1
    items = frame[ITEM_COLUMNS].reset_index(drop=True)
    items["rank_score"] = pd.to_numeric(items["rank_score"], errors="coerce").astype("float32")
    logger.info("review plan: %d images of %d identities", len(items), items["identity_id"].nunique())
    return ReviewPlan(items, plan_pairs(frame), plan_identities(frame, rows), block, budget)


def _rows(frame: pd.DataFrame, columns: list[str]) -> list[dict]:
    """Rows as dicts, built from column lists (far faster than iterating Arrow-backed columns)."""
    values = zip(*(frame[c].tolist() for c in columns), strict=True)
    return [dict(zip(columns, v, strict=True)) for v in values]


def pair_id(a: str, b: str) -> str:
    """A stable id of an unordered image pair."""
    return hashlib.sha1("|".join(sorted((a, b))).encode()).hexdigest()[:16]


def plan_pairs(frame: pd.DataFrame) -> pd.DataFrame:
    """Borderline near-duplicate pairs (from dedup's ``review_reason``) whose two images are planned."""
    fields = ["identity_id", "identity_name", "rank_score", "image_path"]
    columns = {c: frame[c].tolist() for c in fields}
    where = {image: k for k, image in enumerate(frame["image_id"].tolist())}
    seen, records = set(), []
    pending = frame[frame["needs_review"]]
    for image, reason in zip(pending["image_id"].tolist(), pending["review_reason"].tolist(), strict=True):
        match = PARTNER.search(str(reason or ""))
        if match is None or match.group(1) not in where or pair_id(image, match.group(1)) in seen:
            continue
        other = match.group(1)
        seen.add(pair_id(image, other))
        a = {c: columns[c][where[image]] for c in fields}
        b = {c: columns[c][where[other]] for c in fields}
        records.append(
            {
                "pair_id": pair_id(image, other),
                "image_a": image,
                "image_b": other,
                "identity_a": a["identity_id"],
                "identity_b": b["identity_id"],
                "identity_name_a": a["identity_name"],
                "identity_name_b": b["identity_name"],
                "score_a": a["rank_score"],
                "score_b": b["rank_score"],
                "path_a": a["image_path"],
                "path_b": b["image_path"],
                "reason": reason,
            }
        )
    names = ["pair_id", "image_a", "image_b", "identity_a", "identity_b", "identity_name_a"]
    names += ["identity_name_b", "score_a", "score_b", "path_a", "path_b", "reason"]
    return pd.DataFrame(records, columns=names)


def plan_identities(frame: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """One row per planned identity: counts, purity, flags and twins (identity ids of overlap names)."""
    ids_by_name = rows.drop_duplicates("identity_name").set_index("identity_name")["identity_id"].to_dict()
    grouped = frame.groupby("identity_id", sort=False)
    sizes, blocks = grouped.size().to_dict(), grouped["block"].max().to_dict()
    firsts = frame.drop_duplicates("identity_id")
    columns = ["identity_id", "identity_name", "identity_purity", "identity_review", "overlap_with"]
    records = []
    for order, first in enumerate(_rows(firsts, columns)):
        identity_id = first["identity_id"]
        names = [n for n in str(first["overlap_with"] or "").split("; ") if n]
        purity = first["identity_purity"]
        flags = (["impure"] if first["identity_review"] else []) + (["overlap"] if names else [])
        records.append(
            {
                "identity_id": identity_id,
                "identity_name": first["identity_name"],
                "order": order,
                "images": int(sizes[identity_id]),
                "blocks": int(blocks[identity_id]),
                "identity_purity": None if pd.isna(purity) else round(float(purity), 4),
                "flags": " ".join(flags),
                "overlap_with": "; ".join(names),
                "twin_ids": "; ".join(ids_by_name.get(n, "") for n in names),
            }
        )
    names = ["identity_id", "identity_name", "order", "images", "blocks", "identity_purity", "flags"]
    return pd.DataFrame(records, columns=[*names, "overlap_with", "twin_ids"])
