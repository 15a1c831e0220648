"""The export's image files: an ImageFolder tree and WebDataset tar shards, written only where they changed.

``_export.json`` in the export folder records what every written file holds (sha256 and size of each tree
file; a digest of each shard's members). A re-export skips a file whose record matches the plan and whose
size on disk agrees, rewrites the rest (temporary name, then rename), and deletes files the plan no longer
has. A killed export leaves whole files only, so running it again finishes the job.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from curate.errors import CurateError
from curate.storage import atomic_open, atomic_write_bytes, atomic_write_json

logger = logging.getLogger(__name__)

STATE_FILE = "_export.json"
IMAGES_DIR = "images"
SHARDS_DIR = "webdataset"
TAR_MTIME = 946684800.0  # a fixed time stamp (2000-01-01) so the same shard is always the same bytes
Progress = Callable[[str, int, int], None]


def load_state(out: Path) -> dict[str, Any]:
    """The record of the last export into ``out`` (empty when there was none)."""
    path = out / STATE_FILE
    if not path.is_file():
        return {"files": {}, "shards": {}}
    return json.loads(path.read_text())


def save_state(out: Path, state: dict[str, Any]) -> None:
    """Write ``_export.json`` atomically."""
    atomic_write_json(out / STATE_FILE, state)


def read_checked(source: Path, expected: str | None) -> tuple[bytes, str]:
    """The bytes of ``source`` and their sha256; refuse a content-addressed file whose bytes changed."""
    try:
        data = Path(source).read_bytes()
    except OSError as error:
        raise CurateError(f"cannot read {source}: {error}; re-run the stage that wrote it") from error
    digest = hashlib.sha256(data).hexdigest()
    if expected and digest != expected:
        raise CurateError(f"{source} does not hold the bytes its manifest names (sha256 {digest[:12]}...)")
    return data, digest


def _is_current(out: Path, relative: str, record: list | None, expected: str | None) -> bool:
    if record is None or (expected and record[0] != expected):
        return False
    target = out / relative
    return target.is_file() and target.stat().st_size == record[1]


def write_tree(rows: pd.DataFrame, out: Path, state: dict[str, Any], progress: Progress | None) -> dict:
    """Write ``images/<identity>/<name>`` for every row; fill ``file`` and ``sha256``; return counts."""
    files: dict[str, list] = state.setdefault("files", {})
    relatives, digests, written = [], [], 0
    for done, row in enumerate(rows.itertuples(index=False), start=1):
        relative = f"{IMAGES_DIR}/{row.identity_id}/{row.export_name}"
        record = files.get(relative)
        if record is not None and _is_current(out, relative, record, row.export_sha256):
            digest = record[0]
        else:
            data, digest = read_checked(Path(row.export_source), row.export_sha256)
            atomic_write_bytes(out / relative, data)
            files[relative] = [digest, len(data)]
            written += 1
        relatives.append(relative)
        digests.append(digest)
        if progress is not None:
            progress("images", done, len(rows))
    rows["file"], rows["sha256"] = relatives, digests
    removed = _remove_stale(out / IMAGES_DIR, set(relatives), out, files)
    return {"written": written, "kept": len(rows) - written, "removed": removed}


def _remove_stale(root: Path, wanted: set[str], out: Path, records: dict[str, Any]) -> int:
    """Delete files under ``root`` that the plan no longer has, and folders left empty."""
    removed = 0
    if not root.is_dir():
        return 0
    for path in sorted(root.rglob("*"), reverse=True):
        relative = path.relative_to(out).as_posix()
        if path.is_file() and relative not in wanted:
            path.unlink()
            records.pop(relative, None)
            removed += 1
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()
    for relative in [r for r in records if r.startswith(f"{root.name}/") and r not in wanted]:
        records.pop(relative)
    return removed


def shard_of(identity_id: str, n_shards: int) -> int:
    """An identity's shard: a stable hash, so an upstream change to one identity rewrites one shard."""
    return int.from_bytes(hashlib.sha1(identity_id.encode()).digest()[:8], "big") % n_shards


def sample_key(identity_id: str, name: str) -> str:
    """``<identity>/<stem>``: unpacking a shard gives the ImageFolder tree plus one JSON per image."""
    return f"{identity_id}/{name.split('.')[0]}"


def write_shards(
    rows: pd.DataFrame,
    records: list[dict[str, Any]],
    out: Path,
    shard_size: int,
    state: dict[str, Any],
    progress: Progress | None,
) -> dict:
    """WebDataset shards ``webdataset/shard-NNNNN.tar``: per sample the image and its row as JSON."""
    n_shards = max(1, math.ceil(len(rows) / shard_size))
    members: dict[int, list[int]] = {s: [] for s in range(n_shards)}
    for position, identity in enumerate(rows["identity_id"]):
        members[shard_of(identity, n_shards)].append(position)
    names = [f"shard-{s:05d}.tar" for s in range(n_shards)]
    shard_column, key_column = [""] * len(rows), [""] * len(rows)
    for s, positions in members.items():
        for position in positions:
            shard_column[position] = f"{SHARDS_DIR}/{names[s]}"
            key_column[position] = sample_key(
                rows["identity_id"].iat[position], rows["export_name"].iat[position]
            )
    rows["shard"], rows["key"] = shard_column, key_column
    shards: dict[str, Any] = state.setdefault("shards", {})
    written = 0
    for s, positions in members.items():
        samples = [(key_column[p], rows["export_name"].iat[p], records[p]) for p in positions]
        digest = hashlib.sha256(json.dumps(samples, sort_keys=True, default=str).encode()).hexdigest()
        target = out / SHARDS_DIR / names[s]
        if shards.get(names[s]) != digest or not target.is_file():
            _write_tar(
                target,
                [(rows["export_source"].iat[p], rows["export_sha256"].iat[p]) for p in positions],
                samples,
            )
            shards[names[s]] = digest
            written += 1
        if progress is not None:
            progress("shards", s + 1, n_shards)
    wanted = {f"{SHARDS_DIR}/{name}" for name in names}
    removed = _remove_stale(out / SHARDS_DIR, wanted, out, {})
    for name in [n for n in shards if n not in names]:
        shards.pop(name)
    return {"shards": n_shards, "written": written, "kept": n_shards - written, "removed": removed}


def _write_tar(target: Path, sources: list[tuple[str, str | None]], samples: list[tuple]) -> None:
    import webdataset as wds  # imported here so the CLI starts without it

    with atomic_open(target) as handle:
        writer = wds.TarWriter(handle, mtime=TAR_MTIME)
        for (source, expected), (key, name, record) in zip(sources, samples, strict=True):
            data, _ = read_checked(Path(source), expected)
            extension = name.split(".", 1)[1]
            writer.write({"__key__": key, extension: data, "json": json.dumps(record).encode()})
        writer.close()


def json_ready(value: Any) -> Any:
    """A manifest value as plain JSON: NaN and NA become null, numpy scalars and arrays plain Python."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, list):
        return [json_ready(v) for v in value]
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def row_records(rows: pd.DataFrame, columns: list[str]) -> list[dict[str, Any]]:
    """The rows as JSON-ready dicts (the JSON stored beside each WebDataset sample)."""
    return [
        {column: json_ready(value) for column, value in zip(columns, values, strict=True)}
        for values in rows[columns].itertuples(index=False)
    ]


def remove_tree(out: Path, state: dict[str, Any]) -> int:
    """Delete an earlier export's ImageFolder tree (this export does not ask for one)."""
    return _remove_stale(out / IMAGES_DIR, set(), out, state.setdefault("files", {}))


def remove_shards(out: Path, state: dict[str, Any]) -> int:
    """Delete an earlier export's WebDataset shards (this export does not ask for them)."""
    state["shards"] = {}
    return _remove_stale(out / SHARDS_DIR, set(), out, {})
