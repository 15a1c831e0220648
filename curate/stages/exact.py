"""The ``exact`` step: the same bytes under two identities is label noise, whichever copy came first.

``collect`` already keeps one copy per identity of byte-identical files (``exact_duplicate``). This
whole-data-set step looks across identities: every ``ok`` row whose ``image_id`` (sha256 of the bytes) also
appears as an ``ok`` row of another identity becomes ``identity_conflict``, all copies alike, so the result
does not depend on shard or row order. The reason names the other identities.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict

import pyarrow as pa

from curate import record
from curate.record import Status
from curate.stage import GlobalStage, StageContext
from curate.stages.exact_config import ExactConfig

logger = logging.getLogger(__name__)

COLUMNS: dict[str, pa.DataType] = {
    # rows in the whole manifest holding these exact bytes (any status, all identities); null for rows
    # that were not ok on input
    "exact_group_size": pa.int32(),
}

MAX_NAMES_IN_REASON = 5


def _conflict_reason(others: dict[str, str]) -> str:
    """``same bytes also under: Ann (ann-1a2b3c4d), Bob (bob-...)``, sorted, at most a few names."""
    listed = [f"{name} ({ident})" for ident, name in sorted(others.items(), key=lambda kv: (kv[1], kv[0]))]
    shown = ", ".join(listed[:MAX_NAMES_IN_REASON])
    more = len(listed) - MAX_NAMES_IN_REASON
    return f"same bytes also under: {shown}" + (f" and {more} more" if more > 0 else "")


class ExactStage(GlobalStage):
    """Mark byte-identical images filed under different identities as ``identity_conflict``."""

    name = "exact"
    Config = ExactConfig
    default_input = "collect"

    def run_all(self, tables: dict[int, pa.Table], ctx: StageContext) -> dict[int, pa.Table]:
        """Return every shard with ``exact_group_size`` added and cross-identity copies marked."""
        group_size: Counter[str] = Counter()
        identities: dict[str, dict[str, str]] = defaultdict(dict)  # image_id -> identity_id -> name
        for table in tables.values():
            rows = zip(
                table.column("image_id").to_pylist(),
                table.column("status").to_pylist(),
                table.column("identity_id").to_pylist(),
                table.column("identity_name").to_pylist(),
                strict=True,
            )
            for image_id, status, ident, name in rows:
                if image_id is None:
                    continue
                group_size[image_id] += 1
                if status == Status.OK.value:
                    identities[image_id][ident] = name

        out: dict[int, pa.Table] = {}
        conflict_rows = 0
        for shard, table in tables.items():
            image_ids = table.column("image_id").to_pylist()
            own_ids = table.column("identity_id").to_pylist()
            sizes: list[int | None] = [None] * table.num_rows
            rows_marked: list[int] = []
            reasons: list[str] = []
            for i, is_ok in enumerate(record.ok_mask(table)):
                if not is_ok or image_ids[i] is None:
                    continue
                sizes[i] = group_size[image_ids[i]]
                others = {k: v for k, v in identities[image_ids[i]].items() if k != own_ids[i]}
                if others:
                    rows_marked.append(i)
                    reasons.append(_conflict_reason(others))
            if rows_marked:
                table = record.set_status(table, rows_marked, Status.IDENTITY_CONFLICT, reasons)
            conflict_rows += len(rows_marked)
            out[shard] = record.add_columns(table, {"exact_group_size": sizes}, COLUMNS)

        conflicted = sum(1 for ids in identities.values() if len(ids) > 1)
        ctx.stats["identity_conflict_rows"] = conflict_rows
        ctx.stats["identity_conflict_images"] = conflicted
        ctx.logger.info("exact: %d rows in %d cross-identity groups marked", conflict_rows, conflicted)
        return out
