"""Lineage and verified shards: what each stage output was made from, and when a shard can be trusted.

The marker ``<stage>/_done/<shard>`` is a JSON record written last, after the shard's files:

- ``rows``, ``parquet`` (bytes, mtime_ns, sha256 of the shard file) and ``vectors`` (the same for each vector
  file of the shard). The task that wrote the files computes the checksums once; later commands compare
  size and mtime (cheap) and hash again only when those disagree, or for ``curate status --verify``.
- ``config``: a fingerprint of the stage key, its resolved config and its code ``version``.
- ``inputs``: ``{stage: digest}`` of what the shard was made from: the same shard of the input stage (and of
  the stages it reads vectors from) for a shard stage, all their shards for a global stage, and the sha256
  of any other file it read (``file:<path>``, e.g. the candidates list).
- ``digest``: sha256 over config, inputs and checksums: the shard's fingerprint, recorded downstream.

A shard is *done* when its marker is well-formed and its files agree with it; *corrupt* when a file is
missing, truncated or changed; *stale* when what it was made from differs from what is there now. A stage
whose every shard is done and fresh gets ``<stage>/_SUCCESS``. See docs/architecture.md, "Lineage and
consistency".
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from curate import manifest, storage
from curate.storage import (  # noqa: F401 -- re-exported: callers know these as lineage.*
    SUCCESS_FILE,
    marker_path,
    staged_path,
    success_path,
)

logger = logging.getLogger(__name__)

MARKER_FORMAT = 1
DONE, ABSENT, CORRUPT = "done", "absent", "corrupt"
FILE_PREFIX = "file:"
# The order stages chain in when no input is named: each reads the last of these run before it.
CANONICAL_ORDER = ("collect", "exact", "faces", "select", "describe", "rank", "dedup")


def sha256_file(path: Path) -> str:
    """The sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def digest_of(value: Any) -> str:
    """sha256 of a JSON-ready value, keys sorted."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def file_facts(path: Path) -> dict[str, Any]:
    """Size, mtime and checksum of a file, as a marker records them."""
    stat = path.stat()
    return {"bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": sha256_file(path)}


def output_facts(workdir: Path, stage: str, shard: int, parquet: Path, rows: int) -> dict[str, Any]:
    """What a marker needs about a shard just written: its Parquet file and its vector files."""
    vectors = {}
    root = storage.vectors_dir(workdir, stage)
    for path in sorted(root.glob(f"*/{manifest.shard_name(shard)}.npy")) if root.is_dir() else []:
        vectors[path.parent.name] = file_facts(path)
    return {"rows": rows, "parquet": file_facts(parquet), "vectors": vectors}


@dataclass(frozen=True)
class ShardCheck:
    """One shard's marker checked against its files."""

    shard: int
    state: str  # DONE, ABSENT or CORRUPT
    reason: str = ""
    marker: dict[str, Any] | None = None


def _file_problem(path: Path, facts: dict[str, Any], full: bool) -> str | None:
    """Why ``path`` does not agree with the facts its marker recorded, or None when it does."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return "missing"
    if stat.st_size != facts["bytes"]:
        return f"{stat.st_size} bytes where its marker says {facts['bytes']} (truncated or changed)"
    if not full and stat.st_mtime_ns == facts["mtime_ns"]:
        return None
    if sha256_file(path) != facts["sha256"]:
        return "content changed since it was written (checksum differs)"
    return None


def check_shard(workdir: Path, stage: str, shard: int, full: bool = False) -> ShardCheck:
    """Check one shard: marker present and well-formed, files of the recorded size (and checksum)."""
    path = marker_path(workdir, stage, shard)
    if not path.exists():
        return ShardCheck(shard, ABSENT)
    try:
        marker = json.loads(path.read_text())
        files = [(manifest.shard_path(workdir, stage, shard), marker["parquet"])]
        files += [
            (manifest.vectors_path(workdir, stage, name, shard), facts)
            for name, facts in marker["vectors"].items()
        ]
        if marker.get("format") != MARKER_FORMAT:
            raise ValueError(marker.get("format"))
    except (ValueError, KeyError, TypeError, AttributeError):
        return ShardCheck(shard, CORRUPT, f"{_rel(workdir, path)}: not a marker this curate wrote")
    for file, facts in files:
        problem = _file_problem(file, facts, full)
        if problem:
            return ShardCheck(shard, CORRUPT, f"{_rel(workdir, file)}: {problem}", marker)
    if full:
        rows = pq.ParquetFile(files[0][0]).metadata.num_rows
        if rows != marker["rows"]:
            reason = f"{_rel(workdir, files[0][0])}: {rows} rows where its marker says {marker['rows']}"
            return ShardCheck(shard, CORRUPT, reason, marker)
    return ShardCheck(shard, DONE, marker=marker)


def _rel(workdir: Path, path: Path) -> str:
    try:
        return str(Path(path).relative_to(workdir))
    except ValueError:
        return str(path)


def file_key(workdir: Path, path: Path) -> str:
    """The ``inputs`` key naming a file a stage read (relative to the workdir when inside it)."""
    return FILE_PREFIX + _rel(Path(workdir).resolve(), Path(path).resolve())


ABSENT_FILE = "absent"  # the digest of a file a stage looked for and did not find


def file_digest(workdir: Path, key: str) -> str:
    """The current sha256 of the file an ``inputs`` key names; :data:`ABSENT_FILE` when there is none.

    A file a stage would have read had it existed (select's default candidates list) is recorded as
    absent, so its appearing later makes the stage stale, as its changing or vanishing does.
    """
    path = Path(workdir) / key[len(FILE_PREFIX) :]
    return sha256_file(path) if path.is_file() else ABSENT_FILE


@dataclass
class Checks:
    """Shard checks of every stage looked at, computed once per command."""

    workdir: Path
    n_shards: int
    full: bool = False
    by_stage: dict[str, list[ShardCheck]] = field(default_factory=dict)
    expected: dict[str, str | None] = field(default_factory=dict)

    def expected_config(self, stage: str) -> str | None:
        """The config fingerprint this release would record for ``stage``'s saved run (None: unknown)."""
        if stage not in self.expected:
            from curate.stageplan import expected_config  # lazy: stageplan imports this module

            self.expected[stage] = expected_config(self.workdir, stage)
        return self.expected[stage]

    def of(self, stage: str) -> list[ShardCheck]:
        """Every shard of ``stage``, checked."""
        if stage not in self.by_stage:
            self.by_stage[stage] = [
                check_shard(self.workdir, stage, s, self.full) for s in range(self.n_shards)
            ]
        return self.by_stage[stage]

    def digest(self, key: str, shard: int | None) -> str | None:
        """The current fingerprint of an input: one shard of a stage, all its shards, or a file."""
        if key.startswith(FILE_PREFIX):
            return file_digest(self.workdir, key)
        checks = self.of(key) if shard is None else [self.of(key)[shard]]
        if any(c.state != DONE for c in checks):
            return None
        digests = [c.marker["digest"] for c in checks if c.marker]
        return digests[0] if shard is not None else digest_of(digests)


def shard_digest(config: str, inputs: dict[str, str], facts: dict[str, Any]) -> str:
    """A shard's fingerprint: its config, what it was made from, and the checksums of its files."""
    vectors = {name: f["sha256"] for name, f in facts["vectors"].items()}
    return digest_of([config, inputs, facts["parquet"]["sha256"], vectors])


def write_marker(
    workdir: Path,
    stage: str,
    shard: int,
    facts: dict[str, Any],
    config: str,
    inputs: dict[str, str],
    scope: str = "shard",
) -> None:
    """Write a shard's marker (atomically) from the facts its task returned and its lineage."""
    marker = {
        "format": MARKER_FORMAT,
        "stage": stage,
        "shard": shard,
        **facts,
        "config": config,
        "scope": scope,
        "inputs": inputs,
        "digest": shard_digest(config, inputs, facts),
    }
    storage.atomic_write_json(marker_path(workdir, stage, shard), marker)


@dataclass
class StageState:
    """A stage's shards sorted into done (verified and fresh), absent, corrupt and stale, with reasons."""

    stage: str
    total: int
    done: list[int] = field(default_factory=list)
    absent: list[int] = field(default_factory=list)
    corrupt: dict[int, str] = field(default_factory=dict)
    stale: dict[int, str] = field(default_factory=dict)
    upstream: str = ""  # why the stage's own inputs cannot be trusted, when they cannot

    @property
    def label(self) -> str:
        """corrupt, stale, partial or done (in that order of precedence)."""
        if self.corrupt:
            return "corrupt"
        if self.stale or self.upstream:
            return "stale"
        return "partial" if self.absent else "done"

    def why(self) -> str:
        """One line: what is wrong with the stage (empty when done)."""
        parts = []
        if self.corrupt:
            first = min(self.corrupt)
            more = f" (+{len(self.corrupt) - 1} more)" if len(self.corrupt) > 1 else ""
            parts.append(f"shard {manifest.shard_name(first)}: {self.corrupt[first]}{more}")
        reasons = sorted(set(self.stale.values()))
        if reasons and not self.upstream:  # a damaged or stale input says it all
            parts.append(f"{len(self.stale)} stale shard(s): {'; '.join(reasons)}")
        if self.upstream:
            parts.append(self.upstream)
        if self.absent and not parts:
            parts.append(f"{len(self.absent)} shard(s) not run")
        return "; ".join(parts)


def _stale_reason(checks: Checks, stage: str, check: ShardCheck) -> str:
    """Why a verified shard of ``stage`` no longer matches what it was made from ('' when it does)."""
    assert check.marker is not None
    expected = checks.expected_config(stage)
    if expected is not None and check.marker["config"] != expected:
        return "made by another curate release (its code or defaults changed since)"
    shard = None if check.marker.get("scope") == "all" else check.shard
    for key, recorded in sorted(check.marker["inputs"].items()):
        current = checks.digest(key, shard)
        name = key[len(FILE_PREFIX) :] if key.startswith(FILE_PREFIX) else f"'{key}'"
        if current is None or (current == ABSENT_FILE != recorded):
            return f"input {name} is missing, unfinished or damaged"
        if recorded == ABSENT_FILE != current:
            return f"input {name} was made after it ran"
        if current != recorded:
            return f"input {name} changed after it ran"
    return ""


def stage_state(checks: Checks, stage: str, memo: dict[str, StageState | None] | None = None) -> StageState:
    """Classify every shard of ``stage``; a stage whose inputs are stale or corrupt is stale too."""
    memo = {} if memo is None else memo
    if stage in memo:
        return memo[stage] or StageState(stage, checks.n_shards, upstream="its inputs form a cycle")
    memo[stage] = None
    state = StageState(stage, checks.n_shards)
    sources: set[str] = set()
    for check in checks.of(stage):
        if check.state == ABSENT:
            state.absent.append(check.shard)
        elif check.state == CORRUPT:
            state.corrupt[check.shard] = check.reason
        else:
            assert check.marker is not None
            reason = _stale_reason(checks, stage, check)
            if reason:
                state.stale[check.shard] = reason
            else:
                state.done.append(check.shard)
            sources |= {k for k in check.marker["inputs"] if not k.startswith(FILE_PREFIX)}
    for source in sorted(sources):
        upstream = stage_state(checks, source, memo)
        if upstream.label in ("stale", "corrupt"):
            state.upstream = f"input '{source}' is {upstream.label}"
            break
    memo[stage] = state
    return state
