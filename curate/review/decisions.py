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
from pathlib import Path

import pandas as pd

from curate.errors import CurateError
from curate.review.store import KINDS, DecisionStore, Event, latest_per_reviewer

logger = logging.getLogger(__name__)

CSV_COLUMNS = ["image_id", "decision", "reviewer", "time", "note", "identity_id", "target"]
REQUIRED = ("image_id", "decision", "reviewer")
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
    return event


def read_csv(path: Path) -> list[Event]:
    """Read and validate a decisions CSV; the whole file is refused on the first bad row."""
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
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
    return [event_from_row(i + 2, row) for i, row in enumerate(frame.to_dict("records"))]


def import_events(store: DecisionStore, events: list[Event]) -> int:
    """Record events not already in the store (same decision, reviewer, time, target, note); returns new."""
    known = store.events()
    seen = set(
        zip(
            known["image_id"],
            known["identity_id"],
            known["target"],
            known["decision"],
            known["reviewer"],
            known["time"],
            known["note"],
            strict=True,
        )
    )
    fresh = [
        e
        for e in events
        if (e.image_id, e.identity_id, e.target, e.decision, e.reviewer, e.time, e.note) not in seen
    ]
    return store.record(fresh, batch=f"import-{time.time_ns()}") if fresh else 0


def write_csv(store: DecisionStore, path: Path, history: bool = False) -> int:
    """Write the live decisions (or with ``history`` every event, undone ones included) as CSV."""
    frame = store.events() if history else store.current()
    columns = [*CSV_COLUMNS, "seq", "undone"] if history else CSV_COLUMNS
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.sort_values("seq")[columns].to_csv(path, index=False)
    return len(frame)


def _winner(votes: pd.DataFrame, kind: str) -> tuple[str | None, str]:
    """The winning option of one target's votes, and how it won."""
    counts = votes["option"].value_counts()
    top = counts[counts == counts.max()].index.tolist()
    if len(top) == 1:
        return top[0], "majority" if len(counts) > 1 else "unanimous"
    if kind == "pair":
        return None, "tie: left as it was"
    order = PRECEDENCE[kind]
    return min(top, key=lambda o: order.index(o.split(":")[0])), "tie: removal wins"


def resolve(events: pd.DataFrame) -> pd.DataFrame:
    """Settle each target: one row per (kind, key) with the decision, its basis and any conflict.

    Columns: kind, key, image_id, identity_id, target, decision (null when unresolved), reviewer, time, note
    (of the latest vote for the winner), votes ("alice=reject; bob=accept"), conflict, how.
    """
    live = latest_per_reviewer(events[~events["undone"]] if "undone" in events else events)
    if live.empty:
        return pd.DataFrame(columns=["kind", "key", "decision", "votes", "conflict", "how"])
    option = live["decision"].where(live["kind"] != "identity", live["decision"] + ":" + live["target"])
    keep_pair = live["decision"].eq("dup_keep")
    option = option.where(~keep_pair, "dup_keep:" + live["image_id"])
    live = live.assign(option=option.where(live["decision"] != "identity_keep", "identity_keep"))
    records = []
    for (kind, key), group in live.groupby(["kind", "key"], sort=False):
        votes = group[group["decision"] != "unsure"]
        summary = "; ".join(f"{r}={d}" for r, d in zip(group["reviewer"], group["option"], strict=True))
        if votes.empty:
            winner, how = "unsure", "unsure only"
        else:
            winner, how = _winner(votes, kind)
        chosen = group[group["option"] == winner].sort_values("seq").tail(1)
        base = chosen.iloc[0] if len(chosen) else group.sort_values("seq").iloc[-1]
        records.append(
            {
                "kind": kind,
                "key": key,
                "image_id": base["image_id"],
                "identity_id": base["identity_id"],
                "target": base["target"],
                "decision": None if winner is None else str(winner).split(":")[0],
                "reviewer": base["reviewer"],
                "time": base["time"],
                "note": base["note"],
                "votes": summary,
                "conflict": votes["option"].nunique() > 1,
                "how": how,
            }
        )
    return pd.DataFrame.from_records(records)


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
