"""Readers for identity-name sources, each format detected from the file's content.

Formats (checked in this order on the first non-empty line):

- **JSONL** (starts with ``{``): an object a line: ``name``, optional ``aliases`` (list or ``|``-separated
  string), ``popularity``, ``external_id`` (or ``id``), ``attributes`` (an object) and any other key as an
  attribute.
- **VGGFace2 identity meta** (header with ``Class_ID`` and ``Name``): ``Class_ID, Name, [Sample_Num,] Flag,
  Gender``. Only the first rows carry ``Sample_Num``; the others put ``Flag, Gender`` one column early and
  leave the last empty, so each row is read by its shape. Names are quoted with a leading space and use
  underscores for spaces.
- **CSV** (header with a ``name`` column, or ``identity`` / ``identity_name`` as in URL lists): ``aliases``
  (``|``-separated), ``popularity``, ``external_id`` (or ``id``); any other column is an attribute. A
  ``.csv`` file whose comma-separated header has none of those columns is an error, not a text list.
- **Name TAB count** (LFW's ``lfw-names.txt``): underscores for spaces; the count becomes the popularity.
- **Text**: one name a line.
"""

from __future__ import annotations

import csv
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

from curate.errors import CurateError

logger = logging.getLogger(__name__)

ALIAS_SEPARATOR = "|"
NAME_COLUMNS = ("name", "identity", "identity_name")  # the first one present names the row


@dataclass
class NameRecord:
    """One name as a source gives it, before folding into identities."""

    name: str
    source: str  # the source file's stem, e.g. "lfw-names"
    aliases: list[str] = field(default_factory=list)
    popularity: float | None = None
    attributes: dict[str, str] = field(default_factory=dict)
    external_id: str | None = None


def _first_line(text: str) -> str:
    return next((line for line in text.splitlines() if line.strip()), "")


def detect_format(text: str) -> str:
    """Name the format of a source's text: ``jsonl``, ``vggface2``, ``csv``, ``name_count`` or ``text``."""
    first = _first_line(text).strip()
    header = [cell.strip().casefold() for cell in first.split(",")]
    if first.startswith("{"):
        return "jsonl"
    if "class_id" in header and "name" in header:
        return "vggface2"
    if any(column in header for column in NAME_COLUMNS):
        return "csv"
    parts = first.split("\t")
    if len(parts) == 2 and parts[1].strip().isdigit():
        return "name_count"
    return "text"


def _clean(name: str, underscores: bool = False) -> str:
    """Strip whitespace and wrapping quotes; optionally turn underscores into spaces."""
    name = name.strip().strip('"').strip()
    if underscores:
        name = " ".join(name.replace("_", " ").split())
    return name


def _number(value: object, where: str) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise CurateError(f"{where}: popularity {value!r} is not a number") from None
    return number if math.isfinite(number) else None


def _take(fields: dict, *keys: str) -> object:
    """Remove every one of ``keys`` from ``fields``; return the first non-empty value among them."""
    values = [fields.pop(key, None) for key in keys]
    return next((value for value in values if value not in (None, "")), None)


def _aliases(value: object) -> list[str]:
    if value is None:
        return []
    items = value if isinstance(value, list) else str(value).split(ALIAS_SEPARATOR)
    return [alias for alias in (_clean(str(item)) for item in items) if alias]


def _read_jsonl(text: str, stem: str) -> list[NameRecord]:
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{stem}.jsonl line {number}"
        try:
            item = json.loads(line)
        except json.JSONDecodeError as error:
            raise CurateError(f"{where}: not JSON ({error.msg})") from None
        if not isinstance(item, dict) or not str(item.get("name") or "").strip():
            raise CurateError(f"{where}: each line must be an object with a non-empty 'name'")
        extra = item.pop("attributes", None) or {}
        if not isinstance(extra, dict):
            raise CurateError(f"{where}: 'attributes' must be an object")
        attributes = {str(k): str(v) for k, v in extra.items() if v is not None}
        name = _clean(str(item.pop("name")))
        aliases = _aliases(_take(item, "aliases", "alias"))
        popularity = _number(item.pop("popularity", None), where)
        external = _take(item, "external_id", "id")
        attributes.update({str(k): str(v) for k, v in item.items() if v is not None})
        records.append(
            NameRecord(
                name, stem, aliases, popularity, attributes, None if external is None else str(external)
            )
        )
    return records


def _read_vggface2(text: str, stem: str) -> list[NameRecord]:
    rows = list(csv.reader(text.splitlines()))
    records = []
    for number, row in enumerate(rows[1:], start=2):
        cells = [cell.strip() for cell in row]
        if not any(cells):
            continue
        if len(cells) == 5 and cells[4]:  # Class_ID, Name, Sample_Num, Flag, Gender
            class_id, name, samples, flag, gender = cells
        elif len(cells) >= 4:  # Class_ID, Name, Flag, Gender, (empty)
            class_id, name, flag, gender = cells[:4]
            samples = ""
        else:
            raise CurateError(f"{stem}.csv line {number}: expected 4 or 5 columns, found {len(cells)}")
        attributes = {"gender": gender, "flag": flag}
        popularity = _number(samples, f"{stem}.csv line {number}")
        records.append(NameRecord(_clean(name, True), stem, [], popularity, attributes, class_id))
    return records


def _read_csv(text: str, stem: str) -> list[NameRecord]:
    reader = csv.DictReader(text.splitlines())
    records = []
    for number, row in enumerate(reader, start=2):
        fields = {(k or "").strip().casefold(): (v or "").strip() for k, v in row.items() if k is not None}
        name = _clean(str(_take(fields, *NAME_COLUMNS) or ""))
        if not name:
            continue
        aliases = _aliases(_take(fields, "aliases", "alias"))
        popularity = _number(fields.pop("popularity", None), f"{stem}.csv line {number}")
        external = _take(fields, "external_id", "id")
        attributes = {k: v for k, v in fields.items() if k and v}
        records.append(
            NameRecord(
                name, stem, aliases, popularity, attributes, None if external is None else str(external)
            )
        )
    return records


def _read_name_count(text: str, stem: str) -> list[NameRecord]:
    records = []
    for line in text.splitlines():
        name, _, count = line.partition("\t")
        if name.strip():
            popularity = _number(count, f"{stem}: {name!r}")
            records.append(NameRecord(_clean(name, True), stem, popularity=popularity))
    return records


def _read_text(text: str, stem: str) -> list[NameRecord]:
    return [NameRecord(_clean(line), stem) for line in text.splitlines() if _clean(line)]


_READERS = {
    "jsonl": _read_jsonl,
    "vggface2": _read_vggface2,
    "csv": _read_csv,
    "name_count": _read_name_count,
    "text": _read_text,
}


def read_source(path: Path) -> list[NameRecord]:
    """Read every name of one source file (format detected from its content), in file order."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as error:
        raise CurateError(f"cannot read name source {path}: {error.strerror}") from None
    except UnicodeDecodeError:
        raise CurateError(f"name source {path} is not UTF-8 text; re-save it as UTF-8") from None
    kind = detect_format(text)
    first = _first_line(text)
    if kind == "text" and path.suffix.lower() == ".csv" and "," in first:
        raise CurateError(
            f"name source {path} has no name column (header {first.strip()!r}); "
            f"name it one of {', '.join(NAME_COLUMNS)}, or give one name a line"
        )
    records = _READERS[kind](text, path.stem)
    if not records:  # an empty candidates list would exclude every image, an empty benchmark no one
        raise CurateError(f"name source {path} holds no names (read as {kind}); give a list of names")
    logger.info("read %d names from %s (%s)", len(records), path, kind)
    return records
