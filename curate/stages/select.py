"""The ``select`` stage: apply the candidate identity list and a minimum number of images per identity.

Per shard, on rows still ``ok``:

1. an identity the candidates list excluded gets ``excluded`` with the list's reason (benchmark overlap,
   balance, cap); an identity missing from the list gets ``excluded`` with "not in the candidate list";
2. an identity left with fewer than ``min_images`` ok rows gets ``too_few_images`` on those rows.

Rows are matched to candidates by ``identity_id``, else by the match key of ``identity_name`` (a name or an
alias in the list), so images collected under an alias still find their identity.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from curate import manifest
from curate.candidates import KIND as CANDIDATES_KIND
from curate.candidates import candidates_path, read_candidates
from curate.errors import ConfigError
from curate.names import match_key
from curate.record import Status, add_columns, ok_mask, set_status
from curate.stage import ShardStage, StageContext
from curate.stages.select_config import SelectConfig

logger = logging.getLogger(__name__)

COLUMNS: dict[str, pa.DataType] = {
    "candidate_id": pa.string(),  # identity_id of the matching candidate; null when none or not checked
    "candidate_status": pa.string(),  # that candidate's status ("ok" / "excluded"); null when none
}

NOT_LISTED = "not in the candidate list"


@dataclass(frozen=True)
class CandidateIndex:
    """Candidates looked up by identity_id and by the match key of every name and alias."""

    by_id: dict[str, tuple[str, str, str]]  # identity_id -> (identity_id, status, reason)
    by_key: dict[str, tuple[str, str, str]]

    @classmethod
    def from_table(cls, table: pa.Table) -> CandidateIndex:
        """Index a candidates manifest."""
        by_id: dict[str, tuple[str, str, str]] = {}
        by_key: dict[str, tuple[str, str, str]] = {}
        columns = ["identity_id", "match_key", "aliases", "status", "reason"]
        for row in table.select(columns).to_pylist():
            entry = (row["identity_id"], row["status"], row["reason"] or "")
            by_id[row["identity_id"]] = entry
            by_key.setdefault(row["match_key"], entry)
            for alias in row["aliases"] or []:
                by_key.setdefault(match_key(alias), entry)
        return cls(by_id, by_key)

    def find(self, identity: str | None, name: str | None) -> tuple[str, str, str] | None:
        """The candidate entry of an image row, or None when the list does not hold it."""
        if identity is not None and identity in self.by_id:
            return self.by_id[identity]
        key = match_key(name) if name else ""
        return self.by_key.get(key) if key else None


class SelectStage(ShardStage):
    """Exclude images of identities the candidate list left out, then those with too few images."""

    name = "select"
    Config = SelectConfig
    default_input = "faces"

    def read_files(self, workdir: Path) -> list[Path]:
        """The candidates list applied (its checksum joins the lineage: a rebuilt list makes this stale).

        The default list is named even while it does not exist: building it later makes this stale.
        """
        return [Path(self.config.candidates or candidates_path(workdir))]

    def check_input(self, workdir: Path, input_stage: str | None) -> None:
        """Refuse, before any work, a candidates file that is not a candidates list."""
        path = Path(self.config.candidates or candidates_path(workdir))
        if not path.is_file():
            return  # no list: only min_images applies
        try:
            metadata = pq.read_schema(path).metadata or {}
        except (pa.ArrowException, OSError):
            raise ConfigError(
                "candidates",
                str(path),
                "not a Parquet file; give the list `curate candidates NAME_LISTS...` builds from name "
                "lists (<workdir>/candidates/candidates.parquet, the default), not a name list",
            ) from None
        kind = metadata.get(manifest.META_KIND, b"").decode()
        if kind != CANDIDATES_KIND:
            raise ConfigError(
                "candidates",
                str(path),
                f"select needs a candidates list and this is a '{kind}' manifest; "
                "build one with `curate candidates SOURCES...`",
            )

    def _index(self, ctx: StageContext) -> CandidateIndex | None:
        path = Path(self.config.candidates or candidates_path(ctx.workdir))
        if self.config.candidates is None and not path.is_file():
            return None
        stamp = path.stat()
        key = f"select.candidates:{path.resolve()}:{stamp.st_mtime_ns}:{stamp.st_size}"
        return ctx.resource(key, lambda: CandidateIndex.from_table(read_candidates(path)))

    def run_shard(self, table: pa.Table, ctx: StageContext) -> pa.Table:
        """Mark excluded and too-few-images rows; add candidate_id / candidate_status."""
        index = self._index(ctx)
        ok = ok_mask(table)
        ids = table.column("identity_id").to_pylist()
        names = table.column("identity_name").to_pylist()
        candidate_ids: list[str | None] = [None] * table.num_rows
        candidate_status: list[str | None] = [None] * table.num_rows
        if index is not None:
            excluded_rows, reasons = [], []
            for row in (r for r in range(table.num_rows) if ok[r]):
                entry = index.find(ids[row], names[row])
                if entry is not None:
                    candidate_ids[row], candidate_status[row] = entry[0], entry[1]
                if entry is None or entry[1] != Status.OK.value:
                    excluded_rows.append(row)
                    reasons.append(
                        NOT_LISTED if entry is None else entry[2] or "excluded by the candidate list"
                    )
                    ok[row] = False
            table = set_status(table, excluded_rows, Status.EXCLUDED, reasons)
            ctx.stats["excluded_by_candidates"] = len(excluded_rows)
        table = self._min_images(table, ok, ids, ctx)
        return add_columns(
            table, {"candidate_id": candidate_ids, "candidate_status": candidate_status}, COLUMNS
        )

    def _min_images(
        self, table: pa.Table, ok: list[bool], ids: list[str | None], ctx: StageContext
    ) -> pa.Table:
        minimum = self.config.min_images
        counts = Counter(ids[row] for row in range(table.num_rows) if ok[row])
        short = [row for row in range(table.num_rows) if ok[row] and counts[ids[row]] < minimum]
        reasons = [
            f"identity has {counts[ids[row]]} usable images, fewer than min_images={minimum}" for row in short
        ]
        ctx.stats["too_few_images"] = len(short)
        ctx.stats["too_few_identities"] = len({ids[row] for row in short})
        return set_status(table, short, Status.TOO_FEW_IMAGES, reasons)
