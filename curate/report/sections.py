"""The report's sections that need more than a picture: contact sheets, tables and verdicts."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from curate.evaluate.verification import accuracy_text
from curate.record import Status
from curate.report import figures
from curate.report.page import image, paragraph, table

logger = logging.getLogger(__name__)

PER_SHEET = 16
NO_PICTURE = {Status.FAILED_DECODE.value, Status.FAILED_DOWNLOAD.value, Status.UNSAFE_INPUT.value}


def _picture(row: pd.Series) -> str | None:
    for column in ("crop_path", "path"):
        value = row.get(column)
        if isinstance(value, str) and value:
            return value
    return None


def removed_section(frame: pd.DataFrame) -> str:
    """A contact sheet of up to 16 removed images per status (files that never decoded are only counted)."""
    parts = []
    for status, group in frame[frame["status"] != Status.OK.value].groupby("status"):
        if status in NO_PICTURE:
            parts.append(paragraph(f"{status}: {len(group)} rows, no picture (the file never decoded)."))
            continue
        sample = group.sample(min(PER_SHEET, len(group)), random_state=0)
        pictures = [
            (p, str(r.get("identity_name") or "")) for _, r in sample.iterrows() if (p := _picture(r))
        ]
        if not pictures:
            continue
        parts.append(
            paragraph(f"{status}: {len(group)} rows; a sample of {len(pictures)} with their identity:")
        )
        parts.append(image(figures.contact_sheet(*map(list, zip(*pictures, strict=True))), status))
    return "\n".join(parts) or paragraph("Nothing was removed.")


def duplicates_section(frame: pd.DataFrame) -> str:
    """Removed copies nearest the duplicate threshold, each beside the image kept for it."""
    if "dup_of" not in frame:
        return paragraph("No dedup stage ran.")
    pictures = frame.assign(picture=[_picture(r) for _, r in frame.iterrows()])
    by_id = pictures.dropna(subset=["image_id"]).drop_duplicates("image_id").set_index("image_id")["picture"]
    removed = pictures[pictures["dup_of"].notna() & pictures["picture"].notna()]
    if "dup_distance" in removed:
        removed = removed.sort_values("dup_distance", ascending=False, na_position="last")
    paths, captions = [], []
    for _, row in removed.head(12).iterrows():
        kept = by_id.get(row["dup_of"])
        if kept:
            distance = row.get("dup_distance")
            paths += [row["picture"], kept]
            captions += [f"d={distance:.3f}" if pd.notna(distance) else "copy", "kept"]
    review = int(frame.get("needs_review", pd.Series(dtype=bool)).fillna(False).sum())
    text = paragraph(
        f"{int(frame['dup_of'].notna().sum())} rows were removed as copies of a kept image; "
        f"{review} rows are marked for review. The removed copies farthest from their kept image "
        "(closest to the threshold), each beside the image kept for it:"
    )
    return text + (image(figures.contact_sheet(paths, captions), "borderline duplicates") if paths else "")


def purity_section(frame: pd.DataFrame) -> str:
    """The rank stage's purity estimate per identity, lowest first."""
    if "identity_purity" not in frame or frame["identity_purity"].isna().all():
        return paragraph("No rank stage ran, so purity was not estimated.")
    per = (
        frame.dropna(subset=["identity_purity"])
        .groupby("identity_name")["identity_purity"]
        .first()
        .sort_values()
    )
    note = paragraph(
        "Share of each identity's images that the rank stage's classifier scores at 0.5 or more "
        "(an estimate: images the model believes in but are wrong are not caught).",
        "note",
    )
    return note + image(figures.bar_chart(per.to_dict(), "estimated purity"), "purity per identity")


def evaluation_section(evaluations: list[Path], comparison: dict[str, Any] | None) -> str:
    """The accuracy table and ROC curves of every evaluation (and of the demo's comparison)."""
    rows, parts = [], []
    reports = {Path(e).name: json.loads((Path(e) / "report.json").read_text()) for e in evaluations}
    if comparison:
        reports.update({label: figures_ for label, figures_ in comparison.get("models", {}).items()})
    for label, report in reports.items():
        tar = report.get("tar_at_far", {})
        rows.append(
            [
                label,
                accuracy_text(report),
                f"{report['roc_auc']:.4f}",
                *(f"{tar[k]:.4f}" if k in tar else "-" for k in ("1e-1", "1e-2")),
            ]
        )
    if rows:
        parts.append(table(["model", "accuracy", "ROC AUC", "TAR@FAR 1e-1", "TAR@FAR 1e-2"], rows))
    if comparison and comparison.get("roc"):
        curves = {k: (np.asarray(v["fpr"]), np.asarray(v["tpr"])) for k, v in comparison["roc"].items()}
        parts.append(image(figures.roc_chart(curves), "ROC curves"))
    for evaluation in evaluations:
        roc = Path(evaluation) / "roc.png"
        if roc.is_file():
            parts.append(image(roc.read_bytes(), f"ROC of {Path(evaluation).name}"))
    return "\n".join(parts) or paragraph("No evaluation was given (curate report --evaluation DIR).")


def comparison_section(comparison: dict[str, Any] | None) -> str:
    """The demo's verdict: did curation help, by how much, how sure."""
    if not comparison:
        return ""
    return paragraph(comparison["sentence"], "verdict") + paragraph(comparison["method"], "note")


def ground_truth_section(truth: dict[str, Any]) -> str:
    """The demo's curation figures against the synthetic ground truth."""
    rows = [
        ["purity before -> after", f"{truth['purity_before']} -> {truth['purity_after']}"],
        ["true images kept", truth["true_images_kept"]],
    ]
    for kind in ("intruders", "non_faces", "corrupt", "near_duplicates"):
        rows.append(
            [f"{kind.replace('_', ' ')} removed", f"{truth[kind]['removed']} of {truth[kind]['planted']}"]
        )
    pairs = truth["duplicate_pairs"]
    rows.append(["planted duplicate pairs found by dedup", f"{pairs['found']} of {pairs['planted']}"])
    rows.append(["planted duplicate pairs resolved earlier (one copy removed)", pairs["resolved_earlier"]])
    rows.append(["planted duplicate pairs left in the kept set", pairs["left"]])
    return table(["check", "value"], rows)


def review_section(review: dict[str, Any]) -> str:
    """What the review step decided and changed (the demo's review is scripted, and says so)."""
    rows = [["reviewer", review["reviewer"]], ["decisions", review["decisions"]]]
    rows += [[f"changed {change}", count] for change, count in sorted(review["changed"].items())]
    return table(["review", "value"], rows)


def accountability_section(model: Path | None, pairs: list[tuple[Path, Path, bool]]) -> str:
    """Occlusion and gradient saliency of the trained model on a sample of pairs."""
    if model is None or not pairs:
        return paragraph("No trained model and pairs were given, so there are no saliency maps.")
    from curate.report.saliency import explain_pairs

    note = paragraph(
        f"Model {model}. For each pair, the score s is the cosine similarity of the two embeddings; the maps "
        "over image a show |ds/da| (gradient) and how much s drops when a grey square hides each region "
        "(occlusion). Bright regions drive the verdict: they should lie on the face, not on the background, "
        "captions or borders.",
        "note",
    )
    return note + image(explain_pairs(model, pairs), "saliency maps")


def _group_rows(label: str, groups: dict[str, Any]) -> list[list[Any]]:
    rows = []
    for group, figures_ in groups.items():
        if not isinstance(figures_, dict):
            continue
        tar = figures_.get("tar_at_far", {})
        rows.append(
            [
                label,
                group,
                figures_["pairs"],
                f"{figures_['accuracy']:.4f}",
                f"{tar['1e-1']:.4f}" if "1e-1" in tar else "-",
            ]
        )
    return rows


def bias_section(evaluations: list[Path], extra: dict[str, Any] | None) -> str:
    """Per-group verification accuracy and TAR with group sizes, where a group attribute exists."""
    rows, attributes = [], set()
    for evaluation in evaluations:
        report = json.loads((Path(evaluation) / "report.json").read_text())
        if "groups" in report:
            attributes.add(report["groups"].get("by"))
            rows += _group_rows(Path(evaluation).name, report["groups"])
    for label, groups in (extra or {}).items():
        attributes.add(groups.get("by"))
        rows += _group_rows(label, groups)
    if not rows:
        return paragraph(
            "No group attribute was given: run curate evaluate --group-by COLUMN on a manifest that has one "
            "(the VGGFace2 metadata has gender) and pass the folder with --evaluation."
        )
    note = paragraph(
        f"Grouped by {', '.join(sorted(str(a) for a in attributes))}; a pair whose images fall in two groups "
        "counts as 'mixed'. Small groups give noisy figures: read them with their pair counts.",
        "note",
    )
    return note + table(["model", "group", "pairs", "accuracy", "TAR@FAR 1e-1"], rows)
