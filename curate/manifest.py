"""Parquet manifests sharded by identity: shard assignment, atomic writes and version-checked reads.

Where each file of a stage lives is :mod:`curate.storage`'s business (its docstring draws the layout); the
path helpers are re-exported here for the callers that know them as ``manifest.shard_path`` etc. A reader
outside curate knows a stage is complete when ``_SUCCESS`` exists (see manifests/README.md).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from curate.errors import CurateError, SchemaVersionError
from curate.record import SCHEMA_VERSION
from curate.storage import (  # noqa: F401 -- re-exported: callers know these as manifest.*
    SUCCESS_FILE,
    atomic_open,
    atomic_path,
    done_dir,
    shard_name,
    shard_path,
    stage_dir,
    vectors_path,
)

META_VERSION = b"curate.schema_version"
META_KIND = b"curate.manifest_kind"


def shard_of(identity_id: str, n_shards: int) -> int:
    """The shard an identity lives in: a stable hash (sha1), never Python's salted ``hash``."""
    digest = hashlib.sha1(identity_id.encode("utf-8", "surrogateescape")).digest()
    return int.from_bytes(digest[:8], "big") % n_shards


def write_shard(table: pa.Table, path: Path, kind: str = "images") -> None:
    """Write ``table`` to ``path`` atomically (:func:`curate.storage.atomic_path`) with the schema version."""
    metadata = dict(table.schema.metadata or {})
    metadata[META_VERSION] = SCHEMA_VERSION.encode()
    metadata[META_KIND] = kind.encode()
    table = table.replace_schema_metadata(metadata)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression=_compression(table.schema))


def _compression(schema: pa.Schema) -> str | dict[str, str]:
    """zstd, except for binary columns (collect's raw pixel squares): zstd shrinks pixels by about 3%
    and doubles the CPU time of writing and reading them, so they are stored uncompressed."""
    raw = {
        field.name
        for field in schema
        if pa.types.is_binary(field.type) or pa.types.is_large_binary(field.type)
    }
    if not raw:
        return "zstd"
    return {field.name: "none" if field.name in raw else "zstd" for field in schema}


def write_vectors(array: np.ndarray, path: Path) -> None:
    """Write a vector shard atomically."""
    with atomic_open(path) as handle:
        np.save(handle, array)


def check_version(schema: pa.Schema, where: Path) -> None:
    """Refuse a manifest whose schema major version differs from this code's."""
    metadata = schema.metadata or {}
    found = metadata.get(META_VERSION)
    if found is None:
        raise SchemaVersionError(f"{where}: not a curate manifest (no {META_VERSION.decode()} metadata)")
    major = found.decode().split(".")[0]
    if major != SCHEMA_VERSION.split(".")[0]:
        raise SchemaVersionError(
            f"{where}: schema version {found.decode()} is not readable by this curate "
            f"(reads {SCHEMA_VERSION.split('.')[0]}.x); use the curate release that wrote it"
        )


def read_shard(path: Path) -> pa.Table:
    """Read one shard, checking its schema version."""
    table = pq.read_table(path)
    check_version(table.schema, path)
    return table


def list_shards(workdir: Path, stage: str) -> list[int]:
    """Shard numbers present in a stage folder."""
    folder = stage_dir(workdir, stage)
    if not folder.is_dir():
        return []
    return sorted(int(p.stem) for p in folder.glob("[0-9]*.parquet"))


def read_stage(workdir: Path, stage: str) -> pa.Table:
    """Read every shard of a stage as one table (shard order, then row order).

    Refuses a partial stage, and one that is stale or damaged by now (an input redone since it ran).
    """
    shards = list_shards(workdir, stage)
    if not shards:
        raise CurateError(f"no manifest at {stage_dir(workdir, stage)}; run the '{stage}' stage first")
    folder = stage_dir(workdir, stage)
    if done_dir(workdir, stage).is_dir() and not (folder / SUCCESS_FILE).exists():
        raise CurateError(
            f"stage '{stage}' in {workdir} is not complete (no {SUCCESS_FILE}); "
            f"see 'curate status' and run '{stage}' again"
        )
    if done_dir(workdir, stage).is_dir():
        from curate.stageplan import require_current  # lazy: stageplan imports this module

        require_current(workdir, stage)
    return pa.concat_tables(
        [read_shard(shard_path(workdir, stage, s)) for s in shards], promote_options="default"
    )


def read_vectors(workdir: Path, stage: str, name: str, shard: int) -> np.ndarray:
    """Read one shard's vectors written by ``stage`` under ``name``."""
    path = vectors_path(workdir, stage, name, shard)
    if not path.exists():
        raise CurateError(f"no vectors '{name}' at {path}; run the '{stage}' stage first")
    return np.load(path)
