"""``curate report``: one self-contained HTML page about a run (every picture embedded; opens from disk).

Sections: the stage funnel (rows kept and dropped per stage, by reason), score histograms, contact sheets of
removed images per status and of borderline duplicates, per-identity purity estimates, training curves,
the accuracy table and ROC curves, accountability (saliency maps of the trained model on genuine and
impostor pairs), bias (per-group accuracy and TAR where the evaluation grouped pairs), and, on the demo,
its checks against the ground truth and the curated-vs-uncurated comparison.
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curate import manifest
from curate.embedders.exported import MODEL_FILE
from curate.export.funnel import dropped_text, funnel, stage_chain
from curate.export.source import chosen_stage
from curate.report import figures
from curate.report.page import Page, image, paragraph, table
from curate.report.sections import (
    accountability_section,
    bias_section,
    comparison_section,
    duplicates_section,
    evaluation_section,
    ground_truth_section,
    purity_section,
    removed_section,
    review_section,
)
from curate.storage import atomic_write_text

logger = logging.getLogger(__name__)

SCORES = {
    "rank_score": "rank score",
    "dup_distance": "duplicate distance (1 - cosine)",
    "det_score": "face detector score",
    "blur": "sharpness (Laplacian variance)",
}


@dataclass
class ReportInputs:
    """What the report is about; everything but ``workdir`` is optional."""

    workdir: Path
    stage: str | None = None  # default: the export's final stage
    models: list[Path] = field(default_factory=list)  # training output folders (metrics.jsonl, model/)
    evaluations: list[Path] = field(default_factory=list)  # evaluate output folders (report.json, roc.png)
    saliency_pairs: list[tuple[Path, Path, bool]] = field(default_factory=list)  # (a, b, same) to explain
    saliency_model: Path | None = None  # exported model dir; default: the last of ``models`` with one
    extra: dict[str, Any] = field(default_factory=dict)  # the demo's ground truth and comparison


def _funnel_section(page: Page, workdir: Path, stage: str) -> None:
    steps = funnel(workdir, stage)
    rows = [[s.stage, s.rows_in, s.kept, dropped_text(s.dropped, s.restored, s.relabelled)] for s in steps]
    reasons = [
        [s.stage, status, reason, count]
        for s in steps
        for status, patterns in s.reasons.items()
        for reason, count in list(patterns.items())[:8]
    ]
    page.add(
        "funnel",
        "Stage funnel",
        paragraph(
            f"Stages: {' -> '.join(stage_chain(workdir, stage))}. "
            "Each row is counted at the stage that dropped it."
        ),
        image(figures.funnel_chart(steps), "stage funnel"),
        table(["stage", "rows in", "kept", "dropped by status"], rows),
        paragraph("Reasons (numbers and names blanked so alike reasons count together):", "note"),
        table(["stage", "status", "reason", "rows"], reasons),
    )


def build_page(inputs: ReportInputs) -> str:
    """The HTML document for ``inputs``."""
    workdir = Path(inputs.workdir)
    stage = chosen_stage(workdir, inputs.stage)
    frame = manifest.read_stage(workdir, stage).to_pandas()
    page = Page(f"curate report: {workdir.name}")
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    page.add(
        "summary",
        "Summary",
        paragraph(f"Workdir {workdir.resolve()}, final manifest '{stage}', written {stamp}."),
        table(["status", "rows"], frame["status"].value_counts().sort_index().items()),
        comparison_section(inputs.extra.get("comparison")),
    )
    _funnel_section(page, workdir, stage)
    page.add("scores", "Score histograms", image(figures.score_histograms(frame, SCORES), "score histograms"))
    page.add("removed", "Removed images", removed_section(frame))
    page.add("duplicates", "Borderline duplicates", duplicates_section(frame))
    page.add("purity", "Per-identity purity estimates", purity_section(frame))
    runs = {Path(m).name: Path(m) for m in inputs.models}
    page.add("training", "Training curves", image(figures.training_curves(runs), "training curves"))
    page.add(
        "evaluation", "Verification", evaluation_section(inputs.evaluations, inputs.extra.get("comparison"))
    )
    if inputs.extra.get("review"):
        page.add("review", "Review", review_section(inputs.extra["review"]))
    if inputs.extra.get("ground_truth"):
        page.add("truth", "Ground-truth checks (demo)", ground_truth_section(inputs.extra["ground_truth"]))
    model = inputs.saliency_model or next(
        (Path(m) / "model" for m in reversed(inputs.models) if (Path(m) / "model" / MODEL_FILE).is_file()),
        None,
    )
    page.add(
        "accountability",
        "Accountability: what the model looks at",
        accountability_section(model, inputs.saliency_pairs),
    )
    page.add(
        "bias", "Bias: verification per group", bias_section(inputs.evaluations, inputs.extra.get("groups"))
    )
    return page.render()


def write_report(inputs: ReportInputs, out: Path) -> Path:
    """Write the page to ``out`` atomically and return its path."""
    out = Path(out)
    atomic_write_text(out, build_page(inputs))
    logger.info("wrote %s", out)
    return out
