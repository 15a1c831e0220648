"""Parquet manifests sharded by identity: shard assignment, atomic writes and version-checked reads.

Where each file of a stage lives is :mod:`curate.storage`'s business (its docstring draws the layout); the
path helpers are re-exported here for the callers that know them as ``manifest.shard_path`` etc. A reader
outside curate knows a stage is complete when ``_SUCCESS`` exists (see manifests/README.md).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curate.errors import CurateError, SchemaVersionError
from curate.record import SCHEMA_VERSION
from curate.storage import (  # noqa: F401 -- re-exported: callers know these as manifest.*
    SUCCESS_FILE,
    atomic_open,
    atomic_path,
    crops_dir,
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


def with_moved_crops(table: pa.Table, workdir: Path) -> pa.Table:
    """``table`` with its ``crop_path`` values pointed into ``workdir``'s crop store, if the workdir moved.

    The faces stage writes absolute crop paths into its own workdir's content-addressed store
    (``<workdir>/crops/<xx>/<sha256>.png``). After the workdir is moved or copied elsewhere those paths
    name the old place; a crop whose file is in this workdir's store under the same name is read from
    here instead. Values under this workdir, or whose file is not here, are left as they are.
    """
    if "crop_path" not in table.column_names:
        return table
    here = str(crops_dir(Path(workdir).resolve()))
    column = table.column("crop_path")
    if pc.all(pc.fill_null(pc.starts_with(column, here + os.sep), True)).as_py() is not False:
        return table  # every crop is in this workdir's store (or there are none)
    values = column.to_pylist()
    moved = [
        value if not value or value.startswith(here + os.sep) else _in_store(here, Path(value)) or value
        for value in values
    ]
    if moved == values:
        return table
    index = table.column_names.index("crop_path")
    return table.set_column(index, table.field(index), pa.array(moved, type=table.field(index).type))


def _in_store(store: str, path: Path) -> str | None:
    """The file of ``path``'s name in the crop store ``store`` (same two-character folder), if it is there."""
    candidate = os.path.join(store, path.parent.name, path.name)
    return candidate if os.path.isfile(candidate) else None


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
        [with_moved_crops(read_shard(shard_path(workdir, stage, s)), workdir) for s in shards],
        promote_options="default",
    )


def read_vectors(workdir: Path, stage: str, name: str, shard: int) -> np.ndarray:
    """Read one shard's vectors written by ``stage`` under ``name``."""
    path = vectors_path(workdir, stage, name, shard)
    if not path.exists():
        raise CurateError(f"no vectors '{name}' at {path}; run the '{stage}' stage first")
    return np.load(path)
