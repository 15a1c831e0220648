"""``curate review export``: the review plan written as Parquet + CSV, with a PNG contact sheet per block.

Files (documented in ``manifests/review.md``)::

    <out>/items.parquet, items.csv            one row per image to review: identity, block, position, why
    <out>/pairs.parquet, pairs.csv            borderline near-duplicate pairs, side by side
    <out>/identities.parquet, identities.csv  per identity: images, blocks, purity, flags, twins
    <out>/sheets/<identity_id>-<block:03d>.png   contact sheet of one block
    <out>/plan.json                           input stage, block size, budget, counts
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa

from curate import manifest
from curate.errors import CurateError
from curate.review.images import allowed_roots, contact_sheet
from curate.review.plan import DEFAULT_BLOCK, ReviewPlan, build_plan
from curate.review.source import default_export_dir, finished_at, load_rows, review_input_stage
from curate.storage import atomic_open, atomic_write_text

logger = logging.getLogger(__name__)

TABLES = ("items", "pairs", "identities")


@dataclass
class ExportResult:
    """What an export wrote."""

    out: Path
    input_stage: str
    items: int
    pairs: int
    identities: int
    sheets: int
    seconds: float


def _write_table(frame: pd.DataFrame, out: Path, name: str) -> None:
    manifest.write_shard(pa.Table.from_pandas(frame, preserve_index=False), out / f"{name}.parquet", name)
    with atomic_open(out / f"{name}.csv", "w", newline="", encoding="utf-8") as handle:
        frame.to_csv(handle, index=False)


def write_plan(plan: ReviewPlan, out: Path, input_stage: str) -> None:
    """Write the plan's three tables (Parquet and CSV) and ``plan.json`` into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    for name in TABLES:
        _write_table(getattr(plan, name), out, name)
    summary = {
        "input_stage": input_stage,
        "block": plan.block,
        "budget": plan.budget,
        "items": len(plan.items),
        "pairs": len(plan.pairs),
        "identities": len(plan.identities),
    }
    atomic_write_text(out / "plan.json", json.dumps(summary, indent=1))


def read_plan(out: Path) -> ReviewPlan:
    """Read an export folder back into a plan."""
    if not (out / "plan.json").exists():
        raise CurateError(f"no review export at {out}; run 'curate review export' first")
    meta = json.loads((out / "plan.json").read_text())
    tables = {name: manifest.read_shard(out / f"{name}.parquet").to_pandas() for name in TABLES}
    return ReviewPlan(block=meta["block"], budget=meta["budget"], **tables)


def export_is_current(workdir: Path, out: Path) -> bool:
    """Does ``out`` hold an export made after its input stage last finished?"""
    meta = out / "plan.json"
    if not meta.exists():
        return False
    finished = finished_at(workdir, json.loads(meta.read_text())["input_stage"])
    return finished is not None and finished <= meta.stat().st_mtime


def export_review(
    workdir: Path,
    out: Path | None = None,
    block: int = DEFAULT_BLOCK,
    budget: int | None = None,
    input_stage: str | None = None,
    sheets: bool = True,
) -> ExportResult:
    """Plan the review of ``workdir``'s last curation stage and write it to ``out``."""
    started = time.perf_counter()
    stage = review_input_stage(workdir, input_stage)
    out = Path(out) if out is not None else default_export_dir(workdir)
    plan = build_plan(load_rows(workdir, stage), block, budget)
    write_plan(plan, out, stage)
    written = 0
    if sheets:
        roots = allowed_roots(workdir)
        for (identity_id, number), items in plan.items.groupby(["identity_id", "block"], sort=False):
            contact_sheet(workdir, items, roots, out / "sheets" / f"{identity_id}-{number:03d}.png")
            written += 1
    logger.info("review export: %d items, %d sheets in %s", len(plan.items), written, out)
    return ExportResult(
        out,
        stage,
        len(plan.items),
        len(plan.pairs),
        len(plan.identities),
        written,
        time.perf_counter() - started,
    )
