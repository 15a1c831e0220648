"""Dedup's input: the described rows of every shard that a review may keep, flattened, with their descriptors.

Those rows are the ``ok`` ones and rank's ``low_score`` ones (:data:`curate.record.REVIEWABLE`): a reviewer
can bring a ``low_score`` image back, so it must already have met its copies. ``Participants.kept`` tells
the two apart.

:func:`gather` reads the rows the decision needs (identity, source, rank score, resolution), the hash codes
from the manifest columns and the embedding and thumbnail vectors the descriptor stage stored, checking
that each vector file lines up with its shard.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pyarrow as pa

from curate import manifest, record
from curate.errors import CurateError
from curate.stage import StageContext
from curate.stages.describe import THUMBNAILS


class DedupInputs(Protocol):
    """The settings of ``curate.stages.dedup.DedupConfig`` that say what to read."""

    descriptor_stage: str
    hashes: list[str]
    embedding: str
    verify: bool


@dataclass
class Participants:
    """The reviewable, described rows of every shard, flattened, with what the decision needs."""

    shard: np.ndarray
    row: np.ndarray
    kept: np.ndarray  # bool: the row is ok (False: set aside as low_score, which a review may undo)
    image_id: list[str]
    identity_id: list[str]
    identity_name: list[str]
    source: list[str]
    rank_score: np.ndarray
    resolution: np.ndarray
    codes: list[np.ndarray]
    vectors: np.ndarray | None
    thumbnails: np.ndarray | None


def column(table: pa.Table, name: str, default: object) -> list:
    """A column as a list, or ``default`` for every row when the table has no such column."""
    return table.column(name).to_pylist() if name in table.column_names else [default] * table.num_rows


def gather(tables: dict[int, pa.Table], ctx: StageContext, config: DedupInputs) -> Participants:
    """Collect the participating rows and their descriptors from all shards (shard order, row order)."""
    parts: dict[str, list] = defaultdict(list)
    for shard in sorted(tables):
        table = tables[shard]
        described = column(table, "described", True)
        statuses = table.column("status").to_pylist()
        rows = [r for r, status in enumerate(statuses) if status in record.REVIEWABLE and described[r]]
        parts["shard"] += [shard] * len(rows)
        parts["row"] += rows
        parts["kept"] += [statuses[r] == record.Status.OK.value for r in rows]
        for name in ("image_id", "identity_id", "identity_name", "source"):
            values = column(table, name, None)
            parts[name] += [values[r] or "" for r in rows]
        scores, widths, heights = (column(table, c, None) for c in ("rank_score", "width", "height"))
        parts["rank_score"] += [np.nan if scores[r] is None else scores[r] for r in rows]
        parts["resolution"] += [(widths[r] or 0) * (heights[r] or 0) for r in rows]
        for kind in config.hashes:
            if f"{kind}_code" not in table.column_names:
                raise CurateError(
                    f"shard {shard} has no '{kind}_code' column: add '{kind}' to the hashes of the "
                    f"'{config.descriptor_stage}' stage, or remove it from dedup's hashes"
                )
            values = table.column(f"{kind}_code").to_pylist()
            parts[f"code:{kind}"].append(np.array([values[r] for r in rows], dtype=np.int64))
        if config.embedding:
            parts["vectors"].append(rows_of(ctx, config, config.embedding, shard, table.num_rows, rows))
        if config.verify:
            parts["thumbnails"].append(rows_of(ctx, config, THUMBNAILS, shard, table.num_rows, rows))
    vectors = thumbs = None
    if config.embedding:
        stacked = np.concatenate(parts["vectors"]).astype(np.float32)
        vectors = stacked / np.maximum(np.linalg.norm(stacked, axis=1, keepdims=True), 1e-12)
    if config.verify:
        thumbs = np.concatenate(parts["thumbnails"])  # uint8; verification converts the pairs it needs
    return Participants(
        np.array(parts["shard"], dtype=np.int64),
        np.array(parts["row"], dtype=np.int64),
        np.array(parts["kept"], dtype=bool),
        parts["image_id"],
        parts["identity_id"],
        parts["identity_name"],
        parts["source"],
        np.array(parts["rank_score"], dtype=np.float64),
        np.array(parts["resolution"], dtype=np.float64),
        [np.concatenate(parts[f"code:{kind}"]) for kind in config.hashes],
        vectors,
        thumbs,
    )


def rows_of(
    ctx: StageContext, config: DedupInputs, name: str, shard: int, n_rows: int, rows: list[int]
) -> np.ndarray:
    """The given rows of one shard's vectors ``name`` from the descriptor stage (checked to line up)."""
    if not manifest.vectors_path(ctx.workdir, config.descriptor_stage, name, shard).exists():
        fix = (
            "run it with thumbnails on, or set dedup verify = false" if name == THUMBNAILS else "run it first"
        )
        raise CurateError(
            f"stage '{config.descriptor_stage}' wrote no '{name}' vectors for shard {shard}: {fix}"
        )
    array = ctx.read_vectors(config.descriptor_stage, name, shard)
    if len(array) != n_rows:
        raise CurateError(
            f"shard {shard}: {len(array)} '{name}' vectors for {n_rows} rows; "
            f"re-run the '{config.descriptor_stage}' stage"
        )
    return array[rows]
