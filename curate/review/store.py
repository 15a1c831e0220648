"""Durable review decisions: an append-only SQLite log in WAL mode, one event per decision.

Every decision is committed before the server answers, so a crash or restart loses nothing. An event is
never rewritten except to mark it undone; the current decision of a reviewer on a target is their latest
event that is not undone. The log is the audit trail: ``apply`` copies it, with each event's outcome, into
the ``review`` stage.

Event kinds (``kind`` follows from ``decision``, see :data:`KINDS`):

- ``image``: ``image_id`` + ``accept`` / ``reject`` / ``wrong_identity`` / ``unsure``;
- ``identity``: ``identity_id`` + ``identity_keep`` / ``identity_drop`` / ``identity_merge``
  (``target`` = the twin identity_id the identity merges into);
- ``pair``: ``image_id`` (the keeper) + ``target`` (the other image) + ``dup_keep``, or ``dup_both``
  (not duplicates: keep both).
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from curate.errors import CurateError

logger = logging.getLogger(__name__)

IMAGE_DECISIONS = ("accept", "reject", "wrong_identity", "unsure")
IDENTITY_DECISIONS = ("identity_keep", "identity_drop", "identity_merge")
PAIR_DECISIONS = ("dup_keep", "dup_both")
KINDS = {
    **dict.fromkeys(IMAGE_DECISIONS, "image"),
    **dict.fromkeys(IDENTITY_DECISIONS, "identity"),
    **dict.fromkeys(PAIR_DECISIONS, "pair"),
}
EVENT_COLUMNS = ["seq", "kind", "image_id", "identity_id", "target", "decision", "reviewer", "time", "note"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    image_id TEXT NOT NULL DEFAULT '',
    identity_id TEXT NOT NULL DEFAULT '',
    target TEXT NOT NULL DEFAULT '',
    decision TEXT NOT NULL,
    reviewer TEXT NOT NULL,
    time TEXT NOT NULL,
    note TEXT NOT NULL DEFAULT '',
    batch TEXT NOT NULL DEFAULT '',
    undone INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS events_reviewer ON events (reviewer, undone, seq);
CREATE INDEX IF NOT EXISTS events_decided ON events (kind, undone, image_id, reviewer);
CREATE TABLE IF NOT EXISTS positions (
    reviewer TEXT PRIMARY KEY,
    identity_id TEXT NOT NULL,
    block INTEGER NOT NULL,
    image_id TEXT NOT NULL DEFAULT '',
    time TEXT NOT NULL
);
"""


def now() -> str:
    """The current UTC time as ISO 8601 with seconds, the format decisions carry."""
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class Event:
    """One decision to record (``time`` defaults to now)."""

    decision: str
    reviewer: str
    image_id: str = ""
    identity_id: str = ""
    target: str = ""
    note: str = ""
    time: str = ""

    def validate(self) -> None:
        """Raise CurateError naming the fix for a decision the store cannot hold."""
        if self.decision not in KINDS:
            raise CurateError(f"decision {self.decision!r}: use one of {', '.join(KINDS)}")
        if not self.reviewer.strip():
            raise CurateError(f"decision {self.decision!r} has no reviewer; give the reviewer's name")
        kind = KINDS[self.decision]
        if kind in ("image", "pair") and not self.image_id:
            raise CurateError(f"decision {self.decision!r} needs an image_id")
        if kind == "identity" and not self.identity_id:
            raise CurateError(f"decision {self.decision!r} needs an identity_id")
        if self.decision in ("identity_merge", "dup_keep", "dup_both") and not self.target:
            raise CurateError(f"decision {self.decision!r} needs a target (twin identity or other image)")


class DecisionStore:
    """The decision log of one workdir; safe to share between the server's threads."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # a committed decision survives a power cut
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the connection (the WAL is checkpointed)."""
        with self._lock:
            self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def record(self, events: Iterable[Event], batch: str = "") -> int:
        """Store events in one transaction (one undo step); returns how many were stored."""
        rows = []
        batch = batch or f"{time.time_ns()}"
        for event in events:
            event.validate()
            rows.append(
                (
                    KINDS[event.decision],
                    event.image_id,
                    event.identity_id,
                    event.target,
                    event.decision,
                    event.reviewer.strip(),
                    event.time or now(),
                    event.note,
                    batch,
                )
            )
        with self._transaction() as db:
            db.executemany(
                "INSERT INTO events (kind, image_id, identity_id, target, decision, reviewer, time, note,"
                " batch) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        return len(rows)

    def undo(self, reviewer: str) -> list[dict]:
        """Mark the reviewer's latest batch undone; returns its events (empty when nothing is left)."""
        with self._transaction() as db:
            last = db.execute(
                "SELECT batch FROM events WHERE reviewer = ? AND undone = 0 ORDER BY seq DESC LIMIT 1",
                (reviewer,),
            ).fetchone()
            if last is None:
                return []
            cursor = db.execute(
                "SELECT kind, image_id, identity_id, target, decision FROM events"
                " WHERE reviewer = ? AND batch = ? AND undone = 0",
                (reviewer, last[0]),
            )
            fields = ("kind", "image_id", "identity_id", "target", "decision")
            undone = [dict(zip(fields, row, strict=True)) for row in cursor]
            db.execute("UPDATE events SET undone = 1 WHERE reviewer = ? AND batch = ?", (reviewer, last[0]))
        return undone

    def events(self, include_undone: bool = True) -> pd.DataFrame:
        """Every event in order, with ``undone`` (the audit trail)."""
        query = f"SELECT {', '.join(EVENT_COLUMNS)}, batch, undone FROM events"
        if not include_undone:
            query += " WHERE undone = 0"
        with self._lock:
            rows = self._db.execute(query + " ORDER BY seq").fetchall()
        # plain Python strings: the resolution code works on them row by row
        frame = pd.DataFrame(rows, columns=[*EVENT_COLUMNS, "batch", "undone"], dtype=object)
        frame["seq"] = frame["seq"].astype("int64")
        frame["undone"] = frame["undone"].astype(bool)
        return frame

    def current(self) -> pd.DataFrame:
        """Each reviewer's latest live decision per target (image, identity or pair)."""
        return latest_per_reviewer(self.events(include_undone=False))

    def image_decisions(self, image_ids: list[str]) -> dict[str, dict[str, str]]:
        """Each image's live decision per reviewer (latest wins), for the given images."""
        found: dict[str, dict[str, str]] = {}
        with self._lock:
            for start in range(0, len(image_ids), 500):
                chunk = image_ids[start : start + 500]
                rows = self._db.execute(
                    "SELECT image_id, reviewer, decision FROM events WHERE kind = 'image' AND undone = 0"
                    f" AND image_id IN ({', '.join('?' * len(chunk))}) ORDER BY seq",
                    chunk,
                ).fetchall()
                for image_id, reviewer, decision in rows:
                    found.setdefault(image_id, {})[reviewer] = decision
        return found

    def choices(self, reviewer: str) -> tuple[dict[str, dict], dict[str, dict]]:
        """The reviewer's live identity verdicts (by identity_id) and pair choices (by sorted "a|b")."""
        identities: dict[str, dict] = {}
        pairs: dict[str, dict] = {}
        with self._lock:
            rows = self._db.execute(
                "SELECT kind, image_id, identity_id, target, decision FROM events"
                " WHERE kind != 'image' AND undone = 0 AND reviewer = ? ORDER BY seq",
                (reviewer,),
            ).fetchall()
        for kind, image_id, identity_id, target, decision in rows:
            choice = {"decision": decision, "image_id": image_id, "target": target}
            if kind == "identity":
                identities[identity_id] = choice
            else:
                pairs["|".join(sorted((image_id, target)))] = choice
        return identities, pairs

    def decided(self) -> list[tuple[str, str]]:
        """(image_id, reviewer) for every image a reviewer has a live decision on."""
        with self._lock:
            return self._db.execute(
                "SELECT DISTINCT image_id, reviewer FROM events WHERE kind = 'image' AND undone = 0"
            ).fetchall()

    def save_position(self, reviewer: str, identity_id: str, block: int, image_id: str = "") -> None:
        """Remember where a reviewer is, so the page reopens there."""
        with self._transaction() as db:
            db.execute(
                "INSERT INTO positions (reviewer, identity_id, block, image_id, time) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (reviewer) DO UPDATE SET identity_id = excluded.identity_id,"
                " block = excluded.block, image_id = excluded.image_id, time = excluded.time",
                (reviewer, identity_id, int(block), image_id, now()),
            )

    def position(self, reviewer: str) -> dict | None:
        """Where the reviewer last was, or None."""
        with self._lock:
            row = self._db.execute(
                "SELECT identity_id, block, image_id FROM positions WHERE reviewer = ?", (reviewer,)
            ).fetchone()
        return None if row is None else {"identity_id": row[0], "block": row[1], "image_id": row[2]}

    def reviewers(self) -> list[str]:
        """Names of everyone who decided something or opened the page."""
        with self._lock:
            rows = self._db.execute(
                "SELECT reviewer FROM events UNION SELECT reviewer FROM positions ORDER BY 1"
            ).fetchall()
        return [r[0] for r in rows]


def target_key(frame: pd.DataFrame) -> pd.Series:
    """What a decision is about: the image, the identity, or the unordered image pair."""
    columns = (frame[c].tolist() for c in ("kind", "image_id", "identity_id", "target"))
    keys = [
        image if kind == "image" else identity if kind == "identity" else "|".join(sorted((image, target)))
        for kind, image, identity, target in zip(*columns, strict=True)
    ]
    return pd.Series(keys, index=frame.index, dtype=object)


def latest_per_reviewer(events: pd.DataFrame) -> pd.DataFrame:
    """Keep each reviewer's last event per (kind, target); earlier ones are superseded."""
    if events.empty:
        return events.assign(key=pd.Series(dtype=object))
    frame = events.assign(key=target_key(events))
    return frame.sort_values("seq").drop_duplicates(["kind", "key", "reviewer"], keep="last")


def decisions_digest(path: Path) -> str:
    """A fingerprint of the decision log's live content (``review apply`` records it in the stage config)."""
    store = DecisionStore(path)
    try:
        events = store.events()
    finally:
        store.close()
    text = events[["seq", "decision", "image_id", "identity_id", "target", "reviewer", "undone"]].to_csv()
    return hashlib.sha256(text.encode()).hexdigest()[:16]
