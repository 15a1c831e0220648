"""Reading URL lists: the offline stand-in for a search engine's exported results.

Two formats, one row per result:

- CSV with a header naming at least an identity column (``identity``, ``name`` or ``identity_name``) and
  ``url``; optional ``rank`` (or ``search_rank``) and ``query``. Column names are case-insensitive.
- JSON lines: one object per line with the same keys.

``rank`` is the result's position in the search engine's answer (1 = top). When no row of the file gives
a rank, each row's rank is its 1-based position among its identity's rows in the file, since exported
results come in rank order. A row without a name or URL, or with a rank that is not a whole number, still
becomes a row: with a status and reason instead of being dropped. A file that cannot be read as a whole
(not UTF-8, a bad header or JSON line, an unclosed quote that would swallow the lines after it) is a
``ConfigError`` naming the line.
"""

from __future__ import annotations

import csv
import json
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from curate.errors import ConfigError
from curate.names import identity_id
from curate.record import Status

logger = logging.getLogger(__name__)

NAME_KEYS = ("identity", "name", "identity_name")
RANK_KEYS = ("rank", "search_rank")
INT32_MAX = 2**31 - 1


@dataclass(frozen=True)
class UrlRow:
    """One result from the list. ``problem`` is (status, reason) for a row that cannot be fetched."""

    line: int
    name: str
    url: str
    rank: int | None
    query: str | None
    problem: tuple[Status, str] | None = None


def read_url_list(path: Path, case_sensitive_names: bool = False) -> list[UrlRow]:
    """Read a ``.csv`` or ``.jsonl`` URL list; a missing file, header or bad JSON line is a ConfigError.

    Rows without a rank are numbered per identity (names folded as :func:`~curate.names.identity_id` does).
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError("source", str(path), "no such file; give a .csv or .jsonl URL list")
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".jsonl", ".ndjson"):
        raise ConfigError("source", str(path), "a URL list must be a .csv or .jsonl file")
    try:
        records = _csv_records(path) if suffix == ".csv" else _jsonl_records(path)
    except UnicodeDecodeError as exc:
        why = f"not UTF-8 text ({exc.reason}); re-save it as UTF-8"
        raise ConfigError("source", str(path), why) from None
    except csv.Error as exc:
        raise ConfigError("source", str(path), f"not a readable CSV file ({exc})") from None
    rows = [_row(line, record) for line, record in records]
    if rows and all(row.rank is None for row in rows):
        seen: Counter[str] = Counter()
        ranked = []
        for row in rows:
            key = identity_id(row.name, case_sensitive_names)
            seen[key] += 1
            ranked.append(UrlRow(row.line, row.name, row.url, seen[key], row.query, row.problem))
        rows = ranked
    logger.info("read %d URL rows from %s", len(rows), path)
    return rows


def _csv_records(path: Path) -> list[tuple[int, dict[str, Any]]]:
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        header = [(name or "").strip().lower() for name in reader.fieldnames or []]
        if "url" not in header or not any(key in header for key in NAME_KEYS):
            raise ConfigError(
                "source",
                str(path),
                f"the CSV header needs an identity (or name) column and a url column; found {header}",
            )
        reader.fieldnames = header
        records = []
        start = reader.line_num + 1
        for record in reader:
            _check_one_line(path, start, reader.line_num, record)
            records.append((reader.line_num, record))
            start = reader.line_num + 1
        return records


def _check_one_line(path: Path, start: int, end: int, record: dict[Any, Any]) -> None:
    """Refuse a name or URL holding a line break: an unclosed quote that swallowed the lines after it."""
    for key in ("url", *NAME_KEYS):
        value = record.get(key)
        if isinstance(value, str) and ("\n" in value or "\r" in value):
            raise ConfigError(
                "source",
                f"{path}:{start}",
                f"an unclosed quote: the {key} runs over the next {max(end - start, 1)} line(s), which "
                "would swallow their rows; close or remove the quote",
            )


def _jsonl_records(path: Path) -> list[tuple[int, dict[str, Any]]]:
    records = []
    with open(path, encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ConfigError(
                    "source", f"{path}:{number}", f"line is not valid JSON ({exc.msg})"
                ) from None
            if not isinstance(record, dict):
                raise ConfigError("source", f"{path}:{number}", "each line must be a JSON object")
            records.append((number, {str(key).strip().lower(): value for key, value in record.items()}))
    return records


def _first(record: dict[str, Any], keys: tuple[str, ...]) -> Any:
    return next((record[key] for key in keys if record.get(key) not in (None, "")), None)


def _row(line: int, record: dict[str, Any]) -> UrlRow:
    name = str(_first(record, NAME_KEYS) or "").strip()
    url = str(record.get("url") or "").strip()
    query = record.get("query")
    query = None if query in (None, "") else str(query)
    rank, rank_problem = _rank(_first(record, RANK_KEYS))
    problem: tuple[Status, str] | None = None
    if not name:
        problem = (Status.UNSAFE_INPUT, f"line {line}: no identity name")
    elif not url:
        problem = (Status.FAILED_DOWNLOAD, f"line {line}: empty URL")
    elif rank_problem:
        problem = (Status.UNSAFE_INPUT, f"line {line}: {rank_problem}")
    return UrlRow(line, name, url, rank, query, problem)


def _rank(value: Any) -> tuple[int | None, str]:
    if value is None:
        return None, ""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None, f"search rank {value!r} is not a whole number"
    if not number.is_integer() or not 0 <= number <= INT32_MAX:
        return None, f"search rank {value!r} is not a whole number from 0 to {INT32_MAX}"
    return int(number), ""
