"""Input preflight: what a stage needs from the stages before it, checked before any shard runs.

A stage's :meth:`~curate.stage.Stage.check_input` uses these helpers to look at its inputs cheaply (the
Parquet footers, the vector folders, the saved configs; no rows are read) and to refuse, in one line, an
input that lacks what it needs, naming the option of the stage that produces it, e.g.::

    config key 'embedder' = 'dlib': rank needs 'dlib' vectors from describe, which stored only
    ['handcrafted']; run `curate describe --embedders handcrafted,dlib --overwrite`, or
    `curate rank --embedder handcrafted`
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from curate import manifest
from curate.errors import ConfigError

VECTORS_DIR = "_vectors"


def input_columns(workdir: Path, stage: str) -> set[str]:
    """The column names of a stage's manifest (the union over its shards' schemas)."""
    columns: set[str] = set()
    for shard in manifest.list_shards(workdir, stage):
        columns.update(pq.read_schema(manifest.shard_path(workdir, stage, shard)).names)
    return columns


def stored_vectors(workdir: Path, stage: str) -> list[str]:
    """Names of the vectors a stage stored (folders under ``_vectors`` holding at least one shard)."""
    folder = manifest.stage_dir(workdir, stage) / VECTORS_DIR
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and any(p.glob("*.npy")))


def saved_setting(workdir: Path, stage: str, key: str) -> Any:
    """A setting from the config a stage was last run with (``_config.json``), or None."""
    try:
        saved = json.loads((manifest.stage_dir(workdir, stage) / "_config.json").read_text())
        return saved["config"].get(key)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def producer_fix(workdir: Path, producer: str, option: str, wanted: str) -> str:
    """How to make ``producer`` store ``wanted`` too: its command with ``option`` listing it."""
    if producer != "describe":
        return f"add '{wanted}' to the {option} of the '{producer}' stage and run it again"
    settings = saved_setting(workdir, producer, option)
    current = [str(v) for v in settings] if isinstance(settings, list) else []
    listed = ",".join([*current, wanted] if wanted not in current else current)
    return f"run `curate describe --{option} {listed} --overwrite`"


def require_vectors(
    workdir: Path, consumer: str, key: str, name: str, producer: str, alternative: str = ""
) -> None:
    """Raise ConfigError unless ``producer`` stored vectors ``name`` (``key``: the consumer's setting)."""
    stored = stored_vectors(workdir, producer)
    if name in stored:
        return
    spec = name.removeprefix("model:")
    fix = producer_fix(workdir, producer, "embedders", spec if spec == name else f"<{spec} model folder>")
    others = [s for s in stored if s != "thumbnail"]
    if alternative and others:
        fix += f", or `curate {consumer} --{alternative} {others[0]}`"
    raise ConfigError(
        key, name, f"{consumer} needs '{name}' vectors from {producer}, which stored only {stored}; {fix}"
    )


def require_descriptors(
    workdir: Path,
    consumer: str,
    input_stage: str | None,
    producer: str,
    hashes: list[str],
    embedding: str,
    thumbnails: bool,
) -> None:
    """Raise ConfigError unless ``input_stage`` has each hash's code column and ``producer`` the vectors
    (``embedding``, and the thumbnails when ``thumbnails``)."""
    columns = input_columns(workdir, input_stage) if input_stage else set()
    for kind in hashes if input_stage else []:
        if f"{kind}_code" not in columns:
            present = [k for k in hashes if f"{k}_code" in columns]
            fix = producer_fix(workdir, producer, "hashes", kind)
            also = f", or `curate {consumer} --hashes {','.join(present)}`" if present else ""
            raise ConfigError(
                "hashes",
                hashes,
                f"{consumer} needs '{kind}' hashes from {producer} ('{input_stage}' has no '{kind}_code' "
                f"column); {fix}{also}",
            )
    if embedding:
        require_vectors(workdir, consumer, "embedding", embedding, producer, "embedding")
    if thumbnails and "thumbnail" not in stored_vectors(workdir, producer):
        raise ConfigError(
            "verify",
            True,
            f"{consumer} verifies borderline pairs on the thumbnails {producer} stores, and it stored none; "
            f"run {producer} with thumbnails = true (its default) and --overwrite, or set {consumer}'s "
            "verify = false",
        )


def vector_name(spec: str) -> str:
    """The vector name an embedder spec writes: ``dlib``, ``handcrafted`` or ``model:<folder name>``."""
    return spec if spec in ("dlib", "handcrafted") else f"model:{Path(spec).name}"


def require_planned(
    consumer: str, key: str, wanted: str, producer: str, produced: list[str], option: str, instead: str
) -> None:
    """In a pipeline, before anything runs: raise ConfigError when ``producer`` (a stage listed before
    ``consumer``) is set to produce only ``produced``, not the ``wanted`` that ``consumer.key`` reads."""
    if wanted in produced:
        return
    raise ConfigError(
        f"{consumer}.{key}",
        wanted,
        f"{consumer} reads '{wanted}' from {producer}, which this pipeline sets to produce only {produced}; "
        f"add it to {producer}.{option}, or set {instead}",
    )


def planned_descriptors(
    consumer: str, producer: Any, hashes: list[str], embedding: str, thumbnails: bool
) -> None:
    """:func:`require_descriptors` for a pipeline, against the config of ``producer`` (a Stage listed
    before ``consumer``) rather than its output."""
    made = producer.vectors_written()
    for kind in hashes:
        planned = list(getattr(producer.config, "hashes", [kind]))
        require_planned(consumer, "hashes", kind, producer.name, planned, "hashes", f"{consumer}.hashes")
    if embedding:
        instead = f"{consumer}.embedding"
        require_planned(consumer, "embedding", embedding, producer.name, made, "embedders", instead)
    if thumbnails:
        instead = f"{consumer}.verify = false"
        require_planned(consumer, "verify", "thumbnail", producer.name, made, "thumbnails", instead)
