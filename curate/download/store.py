"""The content-addressed image store and the per-shard download journal.

Store: ``<workdir>/store/<sha[:2]>/<sha><ext>``, a :class:`curate.storage.ContentStore`: one file per
distinct byte string, written atomically, so the same image found under many URLs (or identities) is kept
once and a file that exists is complete.

Journal: ``<workdir>/store/_journal/<shard>.jsonl``, one JSON line per finished URL (its outcome), appended
and flushed right after each fetch. A run that is killed and started again reads the journal first and
fetches only the URLs it does not list. A line cut short by the kill is skipped.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from curate.record import Status
from curate.storage import ContentStore  # noqa: F401 -- the download store; re-exported

logger = logging.getLogger(__name__)

EXTENSIONS = {"JPEG": ".jpg", "PNG": ".png", "GIF": ".gif", "WEBP": ".webp", "BMP": ".bmp", "TIFF": ".tif"}
EXTENSIONS |= {"PPM": ".ppm", "AVIF": ".avif"}


@dataclass(frozen=True)
class Outcome:
    """What happened to one URL; the unit written to the journal and turned into manifest columns."""

    url: str
    status: str  # a Status value
    reason: str
    sha256: str | None = None  # of the bytes received, when any were
    extension: str = ""  # of the stored file ("" when nothing was stored)
    http_status: int | None = None
    file_bytes: int | None = None
    width: int | None = None
    height: int | None = None
    format: str | None = None
    mode: str | None = None
    n_frames: int | None = None
    fetch_seconds: float | None = None
    settings: str = ""  # fingerprint of the settings that produced this outcome

    @property
    def stored(self) -> bool:
        """Were the bytes kept in the store (only images that decoded are)?"""
        return self.status == Status.OK.value and self.sha256 is not None

    def to_json(self) -> str:
        """One journal line (without the newline)."""
        return json.dumps(dataclasses.asdict(self), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, line: str) -> Outcome:
        """Parse a journal line; raises ``ValueError``/``TypeError``/``KeyError`` on a damaged one."""
        values = json.loads(line)
        if not isinstance(values, dict):
            raise ValueError("journal line is not an object")
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in values.items() if key in names})


class Journal:
    """An append-only JSON-lines log of finished URLs for one shard; ``append`` is thread-safe.

    Use as a context manager (or call ``close``) so the file handle is released.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._handle: TextIO | None = None

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def load(self) -> dict[str, Outcome]:
        """The recorded outcome per URL (a later line wins); damaged lines are skipped with a warning."""
        outcomes: dict[str, Outcome] = {}
        if not self.path.is_file():
            return outcomes
        with open(self.path, encoding="utf-8", errors="replace") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    outcome = Outcome.from_json(line)
                except (ValueError, TypeError, KeyError) as exc:
                    logger.warning(
                        "%s line %d is damaged (%s); its URL is fetched again", self.path, number, exc
                    )
                    continue
                outcomes[outcome.url] = outcome
        return outcomes

    def append(self, outcome: Outcome) -> None:
        """Add one outcome and flush it to the operating system before returning."""
        line = outcome.to_json() + "\n"
        with self._lock:
            if self._handle is None:
                self._handle = self._open()
            self._handle.write(line)
            self._handle.flush()

    def close(self) -> None:
        """Close the file handle (appending again reopens it)."""
        with self._lock:
            if self._handle is not None:
                self._handle.close()
                self._handle = None

    def _open(self) -> TextIO:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        cut_short = False
        if self.path.is_file() and self.path.stat().st_size > 0:
            with open(self.path, "rb") as existing:
                existing.seek(-1, os.SEEK_END)
                cut_short = existing.read(1) != b"\n"
        handle = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 -- kept open until close()
        if cut_short:
            handle.write("\n")  # end a line cut short by a kill so it cannot swallow the next one
        return handle
