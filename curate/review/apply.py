"""Library entry points for scripted review: record decisions, then apply them as the ``review`` stage."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from curate import manifest
from curate.errors import CurateError
from curate.executor import ExecutorOptions, StageResult, stats_path
from curate.pipeline import StageSpec, run_specs
from curate.review.decisions import CSV_COLUMNS, event_from_row, fresh_events, import_events
from curate.review.source import review_input_stage, store_path
from curate.review.store import DecisionStore, Event, decisions_digest

logger = logging.getLogger(__name__)


@dataclass
class ApplyResult:
    """What ``apply`` did: the stage run, decisions by outcome, rows changed, conflicts, gone decisions."""

    stage: StageResult
    input_stage: str
    outcomes: dict[str, int]  # decisions by outcome: applied, overruled..., undone, gone...
    changed: dict[str, int]  # rows whose status review changed, by "old->new"
    conflicts: pd.DataFrame
    gone: pd.DataFrame


def record_decisions(workdir: Path, decisions: pd.DataFrame) -> int:
    """Validate and store decisions (columns as in the CSV: image_id, decision, reviewer, time, note[,
    identity_id, target]) in the workdir's log; rows already stored are skipped. Returns rows stored."""
    rows = decisions.reindex(columns=CSV_COLUMNS).astype(object).where(decisions.notna(), "")
    numbered = [
        (i + 1, event_from_row(i + 1, {k: str(v) for k, v in row.items()}))
        for i, row in enumerate(rows.to_dict("records"))
    ]
    return store_events(workdir, numbered)


def store_events(workdir: Path, numbered: list[tuple[int, Event]]) -> int:
    """Store the events (each with its line) not already in the workdir's log, after checking that they
    name images and identities of the workdir. Returns how many were new."""
    events = [event for _, event in numbered]
    store = DecisionStore(store_path(workdir))
    try:
        fresh = {id(e) for e in fresh_events(store, events)}
        check_known(workdir, [(line, e) for line, e in numbered if id(e) in fresh])
        return import_events(store, events)
    finally:
        store.close()


def check_known(workdir: Path, numbered: list[tuple[int, Event]]) -> None:
    """Refuse a decision naming an image or identity that the stage review reads does not hold (a typo, or
    a file from another workdir), with its line; nothing to check against before rank or dedup ran."""
    try:
        stage = review_input_stage(workdir)
    except CurateError:
        return
    columns = ["image_id", "identity_id"]
    shards = [manifest.shard_path(workdir, stage, s) for s in manifest.list_shards(workdir, stage)]
    table = pa.concat_tables([pq.read_table(path, columns=columns) for path in shards])
    images, identities = (set(table.column(c).to_pylist()) for c in columns)
    for line, event in numbered:
        names = {"image_id": images, "identity_id": identities, "target": images}
        if event.decision == "identity_merge":
            names["target"] = identities
        for field, known in names.items():
            value = getattr(event, field)
            if value and value not in known:
                raise CurateError(
                    f"line {line}: {field} {value!r} is not in {workdir}/{stage}; decisions name images and "
                    "identities of this workdir: fix the row or import into the workdir it came from"
                )


def review_spec(workdir: Path, input_stage: str | None = None, decisions: str = "") -> StageSpec:
    """The ``review`` stage spec reading the last curation stage and the decision log (default: the
    workdir's)."""
    path = Path(decisions) if decisions else store_path(workdir)
    if not path.exists():
        raise CurateError(
            f"no review decisions in {workdir}; review with 'curate review serve' or 'review import'"
        )
    settings = {"decisions": str(path.resolve()), "digest": decisions_digest(path)}
    return StageSpec("review", settings, review_input_stage(workdir, input_stage))


def read_reports(workdir: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The audit, conflicts and gone tables the last ``review`` run wrote."""
    folder = manifest.stage_dir(workdir, "review")
    return tuple(
        manifest.read_shard(folder / f"{name}.parquet").to_pandas()
        for name in ("_audit", "_conflicts", "_gone")
    )  # type: ignore[return-value]


def apply_decisions(
    workdir: Path,
    decisions: pd.DataFrame | None = None,
    input_stage: str | None = None,
    options: ExecutorOptions | None = None,
    shards: int | None = None,
) -> ApplyResult:
    """Store ``decisions`` (if given), then (re)write the ``review`` stage from the whole decision log."""
    if decisions is not None:
        record_decisions(workdir, decisions)
    spec = review_spec(workdir, input_stage)
    result = run_specs([spec], Path(workdir), options or ExecutorOptions(), shards, overwrite=True)[0]
    return summarize(workdir, result, spec.input_stage or "")


def summarize(workdir: Path, result: StageResult, input_stage: str) -> ApplyResult:
    """Gather the reports of a finished ``review`` run."""
    audit, conflicts, gone = read_reports(workdir)
    outcomes = {k: int(v) for k, v in audit["outcome"].value_counts().items()} if len(audit) else {}
    stats = json.loads(stats_path(workdir, "review", 0).read_text())  # a global step: every shard has them
    return ApplyResult(result, input_stage, outcomes, stats.get("review_changed", {}), conflicts, gone)
