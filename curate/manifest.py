"""Parquet manifests sharded by identity: layout, atomic writes and version-checked reads.

Layout of one stage's output (names starting with ``_`` or ``.`` are invisible to Parquet readers, so
``pandas.read_parquet("<workdir>/<stage>")`` sees exactly the manifest)::

    <workdir>/<stage>/<shard:05d>.parquet        the manifest shards
    <workdir>/<stage>/_vectors/<name>/<shard:05d>.npy   dense vectors, same row order as the shard
    <workdir>/<stage>/_stats/<shard:05d>.json    per-shard counts and timings
    <workdir>/<stage>/_logs/<shard:05d>.log      per-shard log
    <workdir>/<stage>/_done/<shard:05d>          marker: rows, checksums, lineage; written last
    <workdir>/<stage>/_config.json               the resolved stage config
    <workdir>/<stage>/_SUCCESS                   written when every shard is verified and current

A reader outside curate knows a stage is complete when ``_SUCCESS`` exists (see manifests/README.md).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from curate.errors import CurateError, SchemaVersionError
from curate.record import SCHEMA_VERSION

META_VERSION = b"curate.schema_version"
META_KIND = b"curate.manifest_kind"
SUCCESS_FILE = "_SUCCESS"


def shard_of(identity_id: str, n_shards: int) -> int:
    """The shard an identity lives in: a stable hash (sha1), never Python's salted ``hash``."""
    digest = hashlib.sha1(identity_id.encode("utf-8", "surrogateescape")).digest()
    return int.from_bytes(digest[:8], "big") % n_shards


def shard_name(shard: int) -> str:
    """``00042``: the zero-padded shard number used in every per-shard file name."""
    return f"{shard:05d}"


def stage_dir(workdir: Path, stage: str) -> Path:
    """The folder that holds a stage's manifest."""
    return Path(workdir) / stage


def shard_path(workdir: Path, stage: str, shard: int) -> Path:
    """The Parquet file of one shard of a stage."""
    return stage_dir(workdir, stage) / f"{shard_name(shard)}.parquet"


def vectors_path(workdir: Path, stage: str, name: str, shard: int) -> Path:
    """The ``.npy`` file of one shard's dense vectors (row order = the shard's row order)."""
    return stage_dir(workdir, stage) / "_vectors" / name / f"{shard_name(shard)}.npy"


def _atomic_target(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def write_shard(table: pa.Table, path: Path, kind: str = "images") -> None:
    """Write ``table`` to ``path`` atomically (temporary name, fsync, rename) with the schema version."""
    metadata = dict(table.schema.metadata or {})
    metadata[META_VERSION] = SCHEMA_VERSION.encode()
    metadata[META_KIND] = kind.encode()
    table = table.replace_schema_metadata(metadata)
    tmp = _atomic_target(path)
    pq.write_table(table, tmp, compression="zstd")
    with open(tmp, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def write_vectors(array: np.ndarray, path: Path) -> None:
    """Write a vector shard atomically."""
    tmp = _atomic_target(path)
    with open(tmp, "wb") as handle:
        np.save(handle, array)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


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
    """Read every shard of a stage as one table (shard order, then row order); refuse a partial stage."""
    shards = list_shards(workdir, stage)
    if not shards:
        raise CurateError(f"no manifest at {stage_dir(workdir, stage)}; run the '{stage}' stage first")
    folder = stage_dir(workdir, stage)
    if (folder / "_done").is_dir() and not (folder / SUCCESS_FILE).exists():
        raise CurateError(
            f"stage '{stage}' in {workdir} is not complete (no {SUCCESS_FILE}); "
            f"see 'curate status' and run '{stage}' again"
        )
    return pa.concat_tables(
        [read_shard(shard_path(workdir, stage, s)) for s in shards], promote_options="default"
    )


def read_vectors(workdir: Path, stage: str, name: str, shard: int) -> np.ndarray:
    """Read one shard's vectors written by ``stage`` under ``name``."""
    path = vectors_path(workdir, stage, name, shard)
    if not path.exists():
        raise CurateError(f"no vectors '{name}' at {path}; run the '{stage}' stage first")
    return np.load(path)
