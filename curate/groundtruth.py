"""Score a curated manifest against a synthetic collection's ground truth (``truth.parquet``).

The figures a dataset builder cares about: how pure the kept set is, how many true images survived, how
many intruders, non-faces, corrupt files and planted near-duplicates were caught — each with what was
planted beside it, so a reader sees both the catch and the miss.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from curate.record import Status


def join_truth(frame: pd.DataFrame, truth: pd.DataFrame, images_dir: Path) -> pd.DataFrame:
    """Attach the truth columns to manifest rows, matched by path relative to ``images_dir``."""
    root = Path(images_dir).resolve()
    relative = frame["source"].map(lambda s: Path(s).resolve().relative_to(root).as_posix())
    joined = frame.assign(file=relative).merge(truth, on="file", how="left", suffixes=("", "_truth"))
    if joined["kind"].isna().any():
        missing = joined.loc[joined["kind"].isna(), "file"].head(3).tolist()
        raise ValueError(f"manifest rows without ground truth, e.g. {missing}")
    return joined


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _purity(rows: pd.DataFrame) -> float | None:
    """Share of rows that show the person their folder names (non-faces count as wrong)."""
    right = (rows["true_identity"] == rows["folder_identity"]).sum()
    return _share(int(right), len(rows))


def _duplicate_pairs(joined: pd.DataFrame) -> dict[str, Any]:
    """Planted near-duplicate pairs: found by dedup, resolved by an earlier stage, or left.

    A pair is *found* when both files end in one duplicate cluster, or — for a copy filed under another
    identity — when both rows are flagged ``identity_conflict`` (the same photo under two names). A pair not
    found is *resolved earlier* when another stage already removed one of its files (e.g. rank's
    ``low_score``), so no duplicate is left to find; it is *left* when both files are still kept: the misses
    that reach the training set.
    """
    planted = joined.loc[joined["kind"] == "near_duplicate", ["file", "duplicate_of"]]
    clusters = joined["dup_cluster"] if "dup_cluster" in joined else pd.Series(None, index=joined.index)
    cluster = dict(zip(joined["file"], clusters, strict=True))
    status = dict(zip(joined["file"], joined["status"], strict=True))
    conflict, ok = Status.IDENTITY_CONFLICT.value, Status.OK.value
    found = resolved_earlier = left = 0
    for copy, original in planted.itertuples(index=False):
        same_cluster = pd.notna(cluster.get(copy)) and cluster.get(copy) == cluster.get(original)
        if same_cluster or status.get(copy) == status.get(original) == conflict:
            found += 1
        elif status.get(copy) == ok and status.get(original) == ok:
            left += 1
        else:
            resolved_earlier += 1
    return {
        "planted": len(planted),
        "found": found,
        "resolved_earlier": resolved_earlier,
        "left": left,
        "recall": _share(found, len(planted)),
    }


def curation_figures(
    collected: pd.DataFrame, final: pd.DataFrame, truth: pd.DataFrame, images_dir: Path
) -> dict:
    """Figures comparing the collected set (before curation) with the final manifest (after)."""
    before = join_truth(collected, truth, images_dir)
    after = join_truth(final, truth, images_dir)
    decodable = before[before["status"] == Status.OK.value]
    kept = after[after["status"] == Status.OK.value]
    removed = after[after["status"] != Status.OK.value]
    originals = after[after["kind"] == "original"]

    def caught(kind: str) -> dict:
        planted = int((after["kind"] == kind).sum())
        hit = int((removed["kind"] == kind).sum())
        return {"planted": planted, "removed": hit, "share_removed": _share(hit, planted)}

    return {
        "rows": len(after),
        "status_counts": {k: int(v) for k, v in after["status"].value_counts().sort_index().items()},
        "purity_before": _purity(decodable),
        "purity_after": _purity(kept),
        "true_images_kept": _share(int((originals["status"] == Status.OK.value).sum()), len(originals)),
        "intruders": caught("intruder"),
        "non_faces": caught("non_face"),
        "corrupt": caught("corrupt"),
        "near_duplicates": caught("near_duplicate"),
        "duplicate_pairs": _duplicate_pairs(after),
    }
