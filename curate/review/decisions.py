"""Decisions as data: CSV in and out, the rule that settles disagreements, and reviewer agreement.

CSV columns (``manifests/review.md``): ``image_id,decision,reviewer,time,note`` and, for the rows that are
not about one image, ``identity_id`` and ``target``. A file with only the first five columns is a valid file
of image decisions.

Conflict rule (:func:`resolve`): each reviewer counts once per target, with their latest decision. ``unsure``
is not a vote. The decision with most votes wins; a tie goes to removal (images: ``wrong_identity`` over
``reject`` over ``accept``; identities: ``drop`` over ``merge`` over ``keep``), and a tied duplicate pair is
left as it was. Every target on which live votes differ is listed as a conflict.
"""

from __future__ import annotations

import logging
import re
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from curate.errors import CurateError
from curate.review.store import KINDS, DecisionStore, Event, latest_per_reviewer
from curate.storage import atomic_open

logger = logging.getLogger(__name__)

CSV_COLUMNS = ["image_id", "decision", "reviewer", "time", "note", "identity_id", "target"]
REQUIRED = ("image_id", "decision", "reviewer")
HISTORY_COLUMNS = ("seq", "undone")  # what 'review decisions --history' adds
IMAGE_ID = re.compile(r"^[0-9a-f]{64}$")
PRECEDENCE = {
    "image": ["wrong_identity", "reject", "accept"],
    "identity": ["identity_drop", "identity_merge", "identity_keep"],
}
RULE = (
    "majority of reviewers' latest decisions, unsure not counted; ties go to removal "
    "(wrong_identity > reject > accept; drop > merge > keep); a tied duplicate pair stays as it was"
)


def event_from_row(line: int, row: dict[str, str]) -> Event:
    """One CSV row as an Event, or a one-line error naming the line and the fix."""
    event = Event(**{k: (row.get(k) or "").strip() for k in CSV_COLUMNS})
    try:
        event.validate()
    except CurateError as error:
        raise CurateError(f"line {line}: {error}") from None
    for name in ("image_id", "target") if KINDS[event.decision] == "pair" else ("image_id",):
        value = getattr(event, name)
        if value and not IMAGE_ID.match(value):
            raise CurateError(f"line {line}: {name} {value!r} is not an image_id (64 lowercase hex digits)")
    if event.target and event.decision in ("identity_merge", "dup_keep", "dup_both"):
        own = event.identity_id if event.decision == "identity_merge" else event.image_id
        if event.target == own:
            raise CurateError(
                f"line {line}: {event.decision} names {own!r} as its own target; give the other one"
            )
    if event.time:
        try:
            datetime.fromisoformat(event.time)
        except ValueError:
            raise CurateError(
                f"line {line}: time {event.time!r} is not ISO 8601; write e.g. 2026-12-02T10:00:00+00:00"
            ) from None
    return event


def read_csv(path: Path) -> list[Event]:
    """Read and validate a decisions CSV; the whole file is refused on the first bad row."""
    return [event for _, event in read_numbered_csv(path)]


def read_numbered_csv(path: Path) -> list[tuple[int, Event]]:
    """:func:`read_csv` with each event's line in the file."""
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")  # Excel's BOM
    except FileNotFoundError:
        raise CurateError(f"decisions file {path} not found; give the path of a CSV file") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise CurateError(
            f"{path} is not a readable CSV ({error}); export one with 'review decisions'"
        ) from None
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise CurateError(
            f"{path}: missing column(s) {', '.join(missing)}; the header needs {','.join(REQUIRED)}"
        )
    unknown = [c for c in frame.columns if c not in (*CSV_COLUMNS, *HISTORY_COLUMNS)]
    if unknown:
        raise CurateError(
            f"{path}: unknown column(s) {', '.join(unknown)}; the columns are {','.join(CSV_COLUMNS)}"
        )
    lines = [(i + 2, row) for i, row in enumerate(frame.to_dict("records"))]
    if "undone" in frame:  # a --history file: undone decisions are not decisions
        lines = [(n, row) for n, row in lines if row["undone"].strip().lower() not in ("true", "1")]
    events = [(n, event_from_row(n, row)) for n, row in lines]
    if "seq" not in frame:  # a --history file lists superseded decisions in order; any other is one a target
        check_one_per_target(events)
    return events


def check_one_per_target(events: list[tuple[int, Event]]) -> None:
    """Refuse a file in which a reviewer decides one target twice, differently (which counts is a guess)."""
    first: dict[tuple[str, str], tuple[int, Event]] = {}
    for line, event in events:
        kind = KINDS[event.decision]
        key = event.identity_id if kind == "identity" else event.image_id
        if kind == "pair":
            key = "|".join(sorted((event.image_id, event.target)))
        seen = first.setdefault((event.reviewer, f"{kind}:{key}"), (line, event))
        if seen[1] != event:
            raise CurateError(
                f"line {line}: {event.reviewer} already decided this {kind} on line {seen[0]} "
                f"({seen[1].decision}); keep one row per reviewer and {kind}"
            )


def fresh_events(store: DecisionStore, events: list[Event]) -> list[Event]:
    """The events not already in the store (same decision, reviewer, target, note and time); a row with no
    time matches a stored one at any time, so importing the same file twice stores nothing new."""
    known = store.events()
    fields = ["image_id", "identity_id", "target", "decision", "reviewer", "note"]
    untimed = set(zip(*(known[f] for f in fields), strict=True))
    seen = set(zip(*(known[f] for f in fields), known["time"], strict=True))
    fresh = []
    for e in events:
        what = (e.image_id, e.identity_id, e.target, e.decision, e.reviewer, e.note)
        stored = (*what, e.time) in seen if e.time else what in untimed
        if not stored:
            fresh.append(e)
            seen.add((*what, e.time))  # a row repeated in the file is stored once
            untimed.add(what)
    return fresh


def import_events(store: DecisionStore, events: list[Event]) -> int:
    """Record events not already in the store (see :func:`fresh_events`); returns how many were new."""
    fresh = fresh_events(store, events)
    return store.record(fresh, batch=f"import-{time.time_ns()}") if fresh else 0


def write_csv(store: DecisionStore, path: Path, history: bool = False) -> int:
    """Write the live decisions (or with ``history`` every event, undone ones included) as CSV."""
    frame = store.events() if history else store.current()
    columns = [*CSV_COLUMNS, "seq", "undone"] if history else CSV_COLUMNS
    with atomic_open(path, "w", newline="", encoding="utf-8") as handle:
        frame.sort_values("seq")[columns].to_csv(handle, index=False)
    return len(frame)


RESOLVED_COLUMNS = ["kind", "key", "image_id", "identity_id", "target", "decision", "reviewer", "time"]
RESOLVED_COLUMNS += ["note", "votes", "conflict", "how"]


def _options(live: pd.DataFrame) -> pd.Series:
    """What each vote chooses: the decision, plus the twin for a merge or the keeper for a pair."""
    option = live["decision"].where(live["decision"] != "identity_merge", "identity_merge:" + live["target"])
    return option.where(live["decision"] != "dup_keep", "dup_keep:" + live["image_id"])


def _winners(votes: pd.DataFrame) -> pd.DataFrame:
    """Per (kind, key) with votes: the winning option (None for a tied pair), how it won, conflict."""
    counts = votes.groupby(["kind", "key", "option"], sort=False).size().rename("n").reset_index()
    group = counts.groupby(["kind", "key"], sort=False)
    counts["options"] = group["n"].transform("size")
    top = counts[counts["n"] == group["n"].transform("max")].copy()
    top["tied"] = top.groupby(["kind", "key"], sort=False)["n"].transform("size") > 1
    order = {d: i for kind in PRECEDENCE.values() for i, d in enumerate(kind)}
    top["priority"] = top["option"].str.split(":").str[0].map(order).fillna(0)
    top = top.sort_values("priority", kind="stable").drop_duplicates(["kind", "key"])
    top["how"] = np.where(top["options"] > 1, "majority", "unanimous")
    top.loc[top["tied"], "how"] = "tie: removal wins"
    tied_pair = top["tied"] & (top["kind"] == "pair")
    top.loc[tied_pair, "how"] = "tie: left as it was"
    top["option"] = top["option"].where(~tied_pair, None)
    top["conflict"] = top["options"] > 1
    return top[["kind", "key", "option", "how", "conflict"]]


def resolve(events: pd.DataFrame) -> pd.DataFrame:
    """Settle each target: one row per (kind, key) with the decision, its basis and any conflict.

    Columns: kind, key, image_id, identity_id, target, decision (null when unresolved), reviewer, time, note
    (of the latest vote for the winner, else of the latest vote), votes ("alice=reject; bob=accept"),
    conflict, how.
    """
    live = latest_per_reviewer(events[~events["undone"]] if "undone" in events else events)
    if live.empty:
        return pd.DataFrame(columns=RESOLVED_COLUMNS)
    live = live.assign(option=_options(live)).sort_values("seq")
    alone = ~live.duplicated(["kind", "key"], keep=False)
    single = live[alone]
    single = single.assign(  # plain arrays: a Series would re-index an empty frame
        votes=(single["reviewer"] + "=" + single["option"]).to_numpy(object),
        conflict=False,
        how=np.where(single["decision"] == "unsure", "unsure only", "unanimous"),
    )
    settled = [single[RESOLVED_COLUMNS]]
    if not alone.all():
        settled.append(_settle_votes(live[~alone]))
    return pd.concat(settled, ignore_index=True)


def _settle_votes(live: pd.DataFrame) -> pd.DataFrame:
    """Targets with votes from more than one reviewer: the rule, the votes, the winning vote's details."""
    winners = _winners(live[live["decision"] != "unsure"])
    keys = live.drop_duplicates(["kind", "key"])[["kind", "key"]]
    settled = keys.merge(winners, on=["kind", "key"], how="left")
    unsure_only = settled["how"].isna()
    settled.loc[unsure_only, ["option", "how", "conflict"]] = ["unsure", "unsure only", False]
    votes: dict[tuple[str, str], list[str]] = {}
    columns = (live[c].tolist() for c in ("kind", "key", "reviewer", "option"))
    for kind, key, reviewer, option in zip(*columns, strict=True):
        votes.setdefault((kind, key), []).append(f"{reviewer}={option}")
    pairs = zip(settled["kind"].tolist(), settled["key"].tolist(), strict=True)
    settled["votes"] = ["; ".join(votes[pair]) for pair in pairs]
    chosen = live.merge(settled[["kind", "key", "option"]], on=["kind", "key", "option"])
    base = pd.concat([live, chosen]).drop_duplicates(["kind", "key"], keep="last")
    fields = ["kind", "key", "image_id", "identity_id", "target", "reviewer", "time", "note"]
    settled = settled.merge(base[fields], on=["kind", "key"])
    settled["decision"] = settled["option"].str.split(":").str[0]
    settled["conflict"] = settled["conflict"].astype(bool)
    return settled[RESOLVED_COLUMNS]


def cohen_kappa(first: list[str], second: list[str]) -> float | None:
    """Cohen's kappa of two raters' labels on the same items; None when chance agreement is total."""
    n = len(first)
    if n == 0:
        return None
    observed = sum(a == b for a, b in zip(first, second, strict=True)) / n
    labels = set(first) | set(second)
    expected = sum((first.count(label) / n) * (second.count(label) / n) for label in labels)
    if expected >= 1.0:
        return None
    return (observed - expected) / (1.0 - expected)


def agreement(events: pd.DataFrame, items: pd.DataFrame) -> pd.DataFrame:
    """Per block and pair of reviewers who both decided images there: shared images, agreement, kappa."""
    live = latest_per_reviewer(events[~events["undone"]])
    live = live[live["kind"] == "image"].merge(
        items[["image_id", "identity_id", "identity_name", "block"]].drop_duplicates("image_id"),
        on="image_id",
        suffixes=("_event", ""),
    )
    records = []
    for (identity_id, name, block), group in live.groupby(["identity_id", "identity_name", "block"]):
        labels = group.pivot_table(index="image_id", columns="reviewer", values="decision", aggfunc="last")
        reviewers = sorted(labels.columns)
        for i, first in enumerate(reviewers):
            for second in reviewers[i + 1 :]:
                both = labels[[first, second]].dropna()
                if both.empty:
                    continue
                a, b = both[first].tolist(), both[second].tolist()
                kappa = cohen_kappa(a, b)
                records.append(
                    {
                        "identity_id": identity_id,
                        "identity_name": name,
                        "block": int(block),
                        "reviewer_a": first,
                        "reviewer_b": second,
                        "images": len(both),
                        "agreement": round(sum(x == y for x, y in zip(a, b, strict=True)) / len(a), 4),
                        "kappa": None if kappa is None else round(kappa, 4),
                    }
                )
    columns = ["identity_id", "identity_name", "block", "reviewer_a", "reviewer_b", "images"]
    return pd.DataFrame.from_records(records, columns=[*columns, "agreement", "kappa"])
