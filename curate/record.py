"""The image record: one row per input image, carried through every stage.

Stages add columns and never drop or reorder rows. A row that a stage excludes keeps its place with a
non-``ok`` :class:`Status` and a human-readable ``reason``; later stages pass such rows through untouched.
Every column's Arrow type is declared once, by the module that adds it, so shards always share one schema.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import Enum
from typing import Any

import pyarrow as pa

SCHEMA_VERSION = "1.0"
"""``major.minor``: readers refuse another major; a minor bump only adds optional columns."""


class Status(str, Enum):
    """Why a row is (or is not) in the curated set. ``ok`` rows go on to the next stage."""

    OK = "ok"
    EXCLUDED = "excluded"  # identity removed by the candidate list (benchmark overlap, cap, balance)
    FAILED_DOWNLOAD = "failed_download"
    FAILED_DECODE = "failed_decode"
    UNSAFE_INPUT = "unsafe_input"  # too many pixels, symlink out of the tree, unreadable name...
    EXACT_DUPLICATE = "exact_duplicate"  # same sha256 as a kept row
    IDENTITY_CONFLICT = "identity_conflict"  # same photo under two identities
    NO_FACE = "no_face"
    LOW_QUALITY = "low_quality"
    LOW_SCORE = "low_score"
    DUPLICATE = "duplicate"  # near-duplicate of a kept image
    TOO_FEW_IMAGES = "too_few_images"
    REJECTED_REVIEW = "rejected_review"


BASE_COLUMNS: dict[str, pa.DataType] = {
    "image_id": pa.string(),  # sha256 hex of the original bytes; null when no bytes were read
    "identity_id": pa.string(),  # stable id from curate.names.identity_id
    "identity_name": pa.string(),  # the display name the id was made from
    "source": pa.string(),  # original path or URL
    "path": pa.string(),  # local file holding the original bytes; null when none
    "status": pa.string(),  # a Status value
    "reason": pa.string(),  # why the status is what it is; empty for ok rows
}


def typed_column(values: Sequence[Any] | pa.Array, dtype: pa.DataType) -> pa.Array:
    """Build an Arrow array of exactly ``dtype`` (all-null lists included)."""
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        return values.cast(dtype)
    return pa.array(list(values), type=dtype)


def add_columns(
    table: pa.Table, values: Mapping[str, Sequence[Any]], types: Mapping[str, pa.DataType]
) -> pa.Table:
    """Return ``table`` with ``values`` set as columns of the declared ``types``.

    A column already present is replaced in place (so re-running a stage does not duplicate it).
    """
    for name, column in values.items():
        if name not in types:
            raise KeyError(f"column {name!r} has no declared type; add it to the stage's COLUMNS")
        array = typed_column(column, types[name])
        if len(array) != table.num_rows:
            raise ValueError(f"column {name!r} has {len(array)} values for {table.num_rows} rows")
        if name in table.column_names:
            table = table.set_column(table.column_names.index(name), name, array)
        else:
            table = table.append_column(name, array)
    return table


def empty_table(types: Mapping[str, pa.DataType] = BASE_COLUMNS) -> pa.Table:
    """An empty table with the given columns, for shards that hold no identities."""
    return pa.schema(list(types.items())).empty_table()


REVIEWABLE: frozenset[str] = frozenset({Status.OK.value, Status.LOW_SCORE.value})
"""Statuses a review may keep: ``ok``, and rank's ``low_score``, which a reviewer's accept brings back (so
dedup clusters these rows too: a row brought back must not be a copy of one already kept)."""


def ok_mask(table: pa.Table) -> list[bool]:
    """Per row: is its status ``ok`` (so this stage should process it)?"""
    return [status == Status.OK.value for status in table.column("status").to_pylist()]


def set_status(
    table: pa.Table, rows: Sequence[int], status: Status, reasons: Sequence[str] | str
) -> pa.Table:
    """Return ``table`` with ``status``/``reason`` replaced on the given row positions."""
    statuses = table.column("status").to_pylist()
    reason_list = table.column("reason").to_pylist()
    for i, row in enumerate(rows):
        statuses[row] = status.value
        reason_list[row] = reasons if isinstance(reasons, str) else reasons[i]
    table = add_columns(table, {"status": statuses, "reason": reason_list}, BASE_COLUMNS)
    return table
