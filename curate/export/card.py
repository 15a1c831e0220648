"""The dataset card of an export: ``card.json`` (every figure) and ``README.md`` (the same, for people).

Its sections follow the Hugging Face dataset card and "Datasheets for Datasets" (Gebru et al. 2021):
collection (sources, candidate lists, the identities left out and why), composition (identities, images
per identity with a histogram), preprocessing (every removal reason with its count, duplicate clusters,
review coverage and agreement), an estimate of label purity with its method, attribute balance, licence,
intended use and known limitations. Every count is computed from the manifests, never typed in.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from curate import __version__, manifest
from curate.export.funnel import funnel, stage_chain, stage_config
from curate.record import Status
from curate.storage import atomic_path, atomic_write_text

logger = logging.getLogger(__name__)

ATTRIBUTES = ("gender", "sex", "age", "age_group", "ethnicity", "race", "skin_tone", "nationality")
HISTOGRAM = "images_per_identity.png"
LICENCE = (
    "The images keep the rights of their owners: curate does not license them. The manifest, card and code "
    "are MIT. Check the terms of every source before redistributing images."
)
INTENDED_USE = (
    "Research on face recognition and on data-set curation. Not for identifying people without their "
    "consent, surveillance, or any decision about a person."
)
LIMITATIONS = [
    "Purity is estimated by a model, not measured: images the ranking model confuses stay in.",
    "Ranking drops hard true images (occluded, small or tightly cropped faces) more often than easy ones, so "
    "the kept set has less pose and occlusion variation than the collection (docs/demo.md measures this).",
    "Web collections over-represent famous, adult, light-skinned people photographed by the press; the "
    "candidate list decides who is in, so its biases carry over.",
    "Near-duplicates are found by hashes and embeddings within the review thresholds; heavier edits pass.",
    "Identity labels come from the names the images were filed or searched under.",
]


def _histogram(per_identity: pd.Series, path: Path) -> None:
    figure = Figure(figsize=(5.5, 3.2))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    bins = min(30, max(1, int(per_identity.max() - per_identity.min() + 1)))
    axes.hist(per_identity.to_numpy(), bins=bins, color="#4c72b0", edgecolor="white")
    axes.set_xlabel("images per identity")
    axes.set_ylabel("identities")
    axes.set_title(f"{len(per_identity)} identities, {int(per_identity.sum())} images")
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=110, bbox_inches="tight")


def _collection(workdir: Path, chain: list[str]) -> dict[str, Any]:
    first = stage_config(workdir, chain[0]).get("config", {}) if chain else {}
    source = first.get("source") or first.get("urls")
    out: dict[str, Any] = {"source_stage": chain[0] if chain else None, "sources": [source] if source else []}
    candidates = Path(workdir) / "candidates" / "candidates.parquet"
    if candidates.is_file():
        table = pd.read_parquet(candidates)
        excluded = table[table["status"] != Status.OK.value]
        out["candidate_list"] = {
            "path": str(candidates),
            "identities": len(table),
            "kept": int((table["status"] == Status.OK.value).sum()),
            "sources": sorted({s for sources in table["sources"] for s in sources}),
        }
        benchmark = excluded[excluded.get("exclusion", pd.Series(dtype=str)) == "benchmark"]
        out["benchmark_exclusions"] = [
            {"identity": str(row["name"]), "reason": str(row["reason"])} for _, row in benchmark.iterrows()
        ]
        out["other_exclusions"] = {
            str(k): int(v) for k, v in excluded.get("exclusion", pd.Series(dtype=str)).value_counts().items()
        }
    return out


def _duplicates(final: pd.DataFrame) -> dict[str, Any]:
    if "dup_cluster" not in final:
        return {"checked": False}
    clusters = final.dropna(subset=["dup_cluster"])
    return {
        "checked": True,
        "clusters": int(clusters["dup_cluster"].nunique()),
        "images_in_clusters": len(clusters),
        "removed_as_duplicate": int((final["status"] == Status.DUPLICATE.value).sum()),
        "cross_identity_conflicts": int((final["status"] == Status.IDENTITY_CONFLICT.value).sum()),
        "left_for_review": int(final.get("needs_review", pd.Series(dtype=bool)).fillna(False).sum()),
    }


def _votes(text: object) -> list[str]:
    """``"alice=reject; bob=accept"`` -> ``["reject", "accept"]`` (nothing for a row without votes)."""
    if not isinstance(text, str):
        return []
    return [part.split("=", 1)[1].strip() for part in text.split(";") if "=" in part]


def _review(workdir: Path, chain: list[str], final: pd.DataFrame) -> dict[str, Any]:
    """Coverage (share of reviewable rows with a settled decision) and agreement between reviewers."""
    if "review" not in chain or "review_decision" not in final:
        return {"reviewed": False, "note": "no review stage ran"}
    before = manifest.read_stage(workdir, chain[chain.index("review") - 1]).to_pandas()
    reviewable = before["status"].isin([Status.OK.value, Status.LOW_SCORE.value])
    decided = final["review_decision"].notna()
    votes = final.get("review_votes", pd.Series(dtype=str)).map(_votes)
    several = votes[votes.map(len) >= 2]
    return {
        "reviewed": True,
        "reviewable_images": int(reviewable.sum()),
        "images_decided": int((decided & reviewable).sum()),
        "coverage": round(float((decided & reviewable).sum() / max(1, reviewable.sum())), 4),
        "rejected": int((final["status"] == Status.REJECTED_REVIEW.value).sum()),
        "restored": int(
            ((before["status"] == Status.LOW_SCORE.value) & (final["status"] == Status.OK.value)).sum()
        ),
        "images_with_several_reviewers": len(several),
        "agreement": round(float(several.map(lambda v: len(set(v)) == 1).mean()), 4)
        if len(several)
        else None,
    }


def _purity(kept: pd.DataFrame) -> dict[str, Any]:
    if "identity_purity" not in kept or kept["identity_purity"].isna().all():
        return {"estimate": None, "method": "no rank stage ran, so purity was not estimated"}
    per_identity = kept.groupby("identity_id")["identity_purity"].first()
    weights = kept.groupby("identity_id").size()
    return {
        "estimate": round(float(np.average(per_identity, weights=weights[per_identity.index])), 4),
        "lowest_identity": round(float(per_identity.min()), 4),
        "identities_below_0.9": int((per_identity < 0.9).sum()),
        "method": (
            "per identity, the share of its images (before ranking dropped any) that the rank stage's "
            "classifier scores at 0.5 or more, averaged over identities weighted by kept images; images "
            "the model believes in but are wrong are not caught, so this is an upper bound"
        ),
    }


def _attributes(workdir: Path, kept: pd.DataFrame) -> dict[str, Any]:
    frame = kept
    candidates = Path(workdir) / "candidates" / "candidates.parquet"
    if candidates.is_file():
        table = pd.read_parquet(candidates)
        extra = [c for c in table.columns if c in ATTRIBUTES and c not in frame]
        if extra:
            frame = frame.merge(table[["identity_id", *extra]], on="identity_id", how="left")
    out = {}
    for column in [c for c in frame.columns if c in ATTRIBUTES or c.startswith("attr_")]:
        values = frame[column].fillna("unknown").astype(str)
        out[column] = {
            value: {
                "images": int((values == value).sum()),
                "identities": int(frame.loc[values == value, "identity_id"].nunique()),
            }
            for value in sorted(values.unique())
        }
    return out


def card_data(workdir: Path, stage: str, rows: pd.DataFrame, out: Path, settings: Any) -> dict[str, Any]:
    """Every figure of the card, computed from the manifests and the exported rows."""
    workdir = Path(workdir)
    chain = stage_chain(workdir, stage)
    final = manifest.read_stage(workdir, stage).to_pandas()
    per_identity = rows.groupby("identity_id").size()
    steps = funnel(workdir, stage)
    # the statuses the rows ended with (a row dropped by one stage may be relabelled by a later one)
    removed = final.loc[final["status"] != Status.OK.value, "status"].value_counts()
    removals = {str(status): int(count) for status, count in removed.items()}
    return {
        "name": Path(out).name,
        "curate_version": __version__,
        "workdir": str(workdir.resolve()),
        "final_stage": stage,
        "stages": chain,
        "images_kind": settings.images.value,
        "formats": [f.value for f in settings.formats],
        "collection": _collection(workdir, chain),
        "composition": {
            "rows_collected": len(final),
            "images": len(rows),
            "identities": int(per_identity.size),
            "images_per_identity": {
                "min": int(per_identity.min()) if len(per_identity) else 0,
                "median": float(per_identity.median()) if len(per_identity) else 0.0,
                "mean": round(float(per_identity.mean()), 2) if len(per_identity) else 0.0,
                "max": int(per_identity.max()) if len(per_identity) else 0,
            },
            "histogram": HISTOGRAM,
        },
        "removals": {"by_status": dict(sorted(removals.items())), "by_stage": [s.to_dict() for s in steps]},
        "duplicates": _duplicates(final),
        "review": _review(workdir, chain, final),
        "purity": _purity(rows),
        "attributes": _attributes(workdir, rows),
        "licence": LICENCE,
        "intended_use": INTENDED_USE,
        "limitations": LIMITATIONS,
    }


def write_card(workdir: Path, stage: str, rows: pd.DataFrame, out: Path, settings: Any) -> Path:
    """Write ``card.json``, ``README.md`` and the histogram into ``out``; return the README's path."""
    from curate.export.card_text import card_markdown

    data = card_data(workdir, stage, rows, out, settings)
    if len(rows):
        _histogram(rows.groupby("identity_id").size(), Path(out) / HISTOGRAM)
    atomic_write_text(Path(out) / "card.json", json.dumps(data, indent=1) + "\n")
    readme = Path(out) / "README.md"
    atomic_write_text(readme, card_markdown(data))
    return readme
