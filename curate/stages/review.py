"""The ``review`` stage: people's decisions applied to the manifest, with an audit of every decision.

A whole-data-set step: decisions name images by content id (``image_id``), identities by ``identity_id`` and
pairs by their two image ids, so they survive a re-run of any upstream stage. The decision log
(:mod:`curate.review.store`) is settled by the rule in :mod:`curate.review.decisions` (majority, ties to
removal), then, on rows that are ``ok`` or ``low_score``:

1. an identity dropped in review: its ``ok`` rows become ``rejected_review``;
2. an image rejected or marked wrong identity: ``rejected_review``, the reason naming reviewer, time, note;
3. a duplicate pair with a chosen keeper: the other image becomes ``duplicate`` (reason names the keeper);
4. an image accepted that rank had dropped (``low_score``): back to ``ok``.

An identity merged with its twin keeps its rows and ``identity_id`` (shards stay by identity);
``review_identity_id`` names the identity the rows count under, which training uses as the label.
Beside the shards: ``_audit.parquet`` (every event with its outcome), ``_conflicts.parquet`` (targets on
which reviewers disagree, with the rule's result), ``_gone.parquet`` (decisions whose image or identity is
no longer in the manifest).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pyarrow as pa

from curate import manifest
from curate.errors import ConfigError
from curate.record import REVIEWABLE, Status, add_columns, set_status
from curate.review.decisions import RULE, resolve
from curate.review.source import store_path
from curate.review.store import DecisionStore, latest_per_reviewer, target_key
from curate.stage import GlobalStage, StageContext
from curate.stages.review_config import ReviewConfig

logger = logging.getLogger(__name__)

COLUMNS: dict[str, pa.DataType] = {
    "review_decision": pa.string(),  # settled image decision: accept, reject, wrong_identity, unsure
    "review_votes": pa.string(),  # every reviewer's latest decision: "alice=reject; bob=accept"
    "identity_verdict": pa.string(),  # keep, drop or merge (settled identity decision)
    "review_identity_id": pa.string(),  # identity the row counts under after review (the twin if merged)
    "review_note": pa.string(),  # what review did to the row: who, when, note
}
OUTCOMES = [
    "undone",
    "superseded by the reviewer's later decision",
    "gone: not in the manifest any more",
    "unresolved (tie)",
    "applied",
]


def _by(resolved: pd.DataFrame, kind: str, column: str) -> dict[str, dict]:
    rows = resolved[(resolved["kind"] == kind) & resolved["decision"].notna()]
    names = list(rows.columns)
    columns = zip(*(rows[c].tolist() for c in names), strict=True)
    records = (dict(zip(names, values, strict=True)) for values in columns)
    return {record[column]: record for record in records}


def _who(decision: dict) -> str:
    note = f": {decision['note']}" if decision.get("note") else ""
    return f"{decision['reviewer']} at {decision['time']}{note}"


class _Outcome:
    """Settled decisions looked up per row: new status, reason and review columns."""

    def __init__(self, resolved: pd.DataFrame, names: dict[str, str]) -> None:
        self.images = _by(resolved, "image", "image_id")
        self.identities = _by(resolved, "identity", "identity_id")
        keep = resolved[(resolved["kind"] == "pair") & (resolved["decision"] == "dup_keep")]
        self.losers = {r["target"]: r for r in keep.to_dict("records")}
        self.names = names

    def row(self, image_id: str, identity_id: str, status: str, reason: str) -> tuple[Any, ...]:
        """(new status or None, reason, review_decision, identity_verdict, review_identity_id, note)."""
        image, identity, pair = (
            self.images.get(image_id),
            self.identities.get(identity_id),
            self.losers.get(image_id),
        )
        verdict = identity["decision"].removeprefix("identity_") if identity else None
        counts_as = identity["target"] if verdict == "merge" else identity_id
        decision = image["decision"] if image else None
        new, why, note = None, reason, None
        if verdict == "merge":
            note = f"identity merged into '{self.names.get(counts_as, counts_as)}' by {_who(identity)}"
        if status not in REVIEWABLE:  # already removed upstream for another reason: review leaves it
            return new, why, decision, verdict, counts_as, note
        if verdict == "drop" and status == Status.OK.value:
            new = Status.REJECTED_REVIEW
            why = note = f"identity dropped in review by {_who(identity)}"
        elif decision in ("reject", "wrong_identity"):
            what = "rejected" if decision == "reject" else "wrong identity"
            new = Status.REJECTED_REVIEW
            why = note = f"{what} in review by {_who(image)}"
        elif pair is not None and status == Status.OK.value:
            new = Status.DUPLICATE
            why = note = f"near-duplicate of {pair['image_id']}, the keeper chosen in review by {_who(pair)}"
        elif decision == "accept" and status == Status.LOW_SCORE.value:
            new, why = Status.OK, ""
            note = f"accepted in review by {_who(image)} (rank had dropped it: {reason})"
        return new, why, decision, verdict, counts_as, note


def _audit(events: pd.DataFrame, resolved: pd.DataFrame, present: dict[str, set]) -> pd.DataFrame:
    """Every event with its outcome: undone, superseded, gone, applied, overruled or unresolved."""
    if events.empty:
        return events.assign(outcome=pd.Series(dtype=object))
    latest = latest_per_reviewer(events[~events["undone"]])["seq"]
    won = resolved[["kind", "key", "decision", "image_id", "target", "how"]].add_prefix("won_")
    keyed = events.assign(key=target_key(events)).merge(
        won, left_on=["kind", "key"], right_on=["won_kind", "won_key"], how="left"
    )
    kind = keyed["kind"]
    images, identities = list(present["image"]), list(present["identity"])
    here = keyed["image_id"].isin(images) & ((kind != "pair") | keyed["target"].isin(images))
    here = here.where(kind != "identity", keyed["identity_id"].isin(identities))
    same = (kind == "image") | (
        (keyed["won_image_id"] == keyed["image_id"]) & (keyed["won_target"] == keyed["target"])
    )
    outcome = np.select(
        [
            keyed["undone"].to_numpy(bool),
            ~keyed["seq"].isin(latest).to_numpy(),
            ~here.to_numpy(bool),
            keyed["won_decision"].isna().to_numpy(),
            ((keyed["won_decision"] == keyed["decision"]) & same).to_numpy(bool),
        ],
        OUTCOMES,
        default="",
    ).astype(object)
    overruled = outcome == ""
    outcome[overruled] = ("overruled: " + keyed["won_how"].astype(str)).to_numpy(object)[overruled]
    return events.assign(outcome=pd.Series(outcome, index=events.index, dtype=object))


class ReviewStage(GlobalStage):
    """Apply the settled review decisions; see the module docstring."""

    name: ClassVar[str] = "review"
    Config: ClassVar[type] = ReviewConfig
    default_input: ClassVar[str | None] = "dedup"

    def check_input(self, workdir: Path, input_stage: str | None) -> None:
        """Refuse, before any work, a run without a decision log to apply."""
        path = Path(self.config.decisions) if self.config.decisions else store_path(workdir)
        if not path.exists():
            raise ConfigError(
                "decisions",
                str(path),
                "review applies people's decisions and there are none yet; make them with "
                "`curate review serve` (or `curate review import`), then run `curate review apply`",
            )

    def run_all(self, tables: dict[int, pa.Table], ctx: StageContext) -> dict[int, pa.Table]:
        """Return every shard with the review columns and statuses; write the audit tables."""
        config: ReviewConfig = self.config
        path = Path(config.decisions) if config.decisions else store_path(ctx.workdir)
        store = DecisionStore(path)
        try:
            events = store.events()
        finally:
            store.close()
        resolved = resolve(events)
        present: dict[str, set] = {"image": set(), "identity": set()}
        names: dict[str, str] = {}
        for table in tables.values():
            present["image"].update(i for i in table.column("image_id").to_pylist() if i)
            ids, labels = table.column("identity_id").to_pylist(), table.column("identity_name").to_pylist()
            present["identity"].update(ids)
            names.update(zip(ids, labels, strict=True))
        outcome = _Outcome(resolved, names)
        outputs = {shard: self._apply(table, outcome) for shard, table in tables.items()}
        audit = _audit(events, resolved, present)
        self._write_reports(ctx, audit, resolved)
        ctx.stats.update(_stats(audit, resolved, tables, outputs))
        return outputs

    @staticmethod
    def _apply(table: pa.Table, outcome: _Outcome) -> pa.Table:
        columns = table.select(["image_id", "identity_id", "status", "reason"]).to_pydict()
        values: dict[str, list] = {name: [] for name in COLUMNS}
        changed: dict[Status, tuple[list[int], list[str]]] = {}
        for row, (image_id, identity_id, status, reason) in enumerate(zip(*columns.values(), strict=True)):
            new, why, decision, verdict, counts_as, note = outcome.row(image_id, identity_id, status, reason)
            votes = outcome.images.get(image_id, {}).get("votes")
            for name, value in zip(COLUMNS, (decision, votes, verdict, counts_as, note), strict=True):
                values[name].append(value)
            if new is not None:
                changed.setdefault(new, ([], []))[0].append(row)
                changed[new][1].append(why)
        table = add_columns(table, values, COLUMNS)
        for status, (rows, reasons) in changed.items():
            table = set_status(table, rows, status, reasons)
        return table

    @staticmethod
    def _write_reports(ctx: StageContext, audit: pd.DataFrame, resolved: pd.DataFrame) -> None:
        folder = manifest.stage_dir(ctx.workdir, ctx.stage)
        conflicts = resolved[resolved["conflict"]].assign(rule=RULE) if len(resolved) else resolved
        gone = audit[audit["outcome"].str.startswith("gone")]
        for name, frame in (("_audit", audit), ("_conflicts", conflicts), ("_gone", gone)):
            table = pa.Table.from_pandas(
                frame.astype(object).where(frame.notna(), None), preserve_index=False
            )
            manifest.write_shard(table, folder / f"{name}.parquet", kind=f"review{name}")


def _stats(audit: pd.DataFrame, resolved: pd.DataFrame, before: dict, after: dict) -> dict[str, Any]:
    """Figures for the stats JSON: decisions by outcome, conflicts, rows changed per new status."""
    changed: dict[str, int] = {}
    for shard, table in after.items():
        old = before[shard].column("status").to_pylist()
        for was, now in zip(old, table.column("status").to_pylist(), strict=True):
            if was != now:
                changed[f"{was}->{now}"] = changed.get(f"{was}->{now}", 0) + 1
    return {
        "review_events": len(audit),
        "review_outcomes": {k: int(v) for k, v in audit["outcome"].value_counts().items()},
        "review_conflicts": int(resolved["conflict"].sum()) if len(resolved) else 0,
        "review_gone": int(audit["outcome"].str.startswith("gone").sum()) if len(audit) else 0,
        "review_changed": changed,
        "review_rule": RULE,
    }
