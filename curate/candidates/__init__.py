"""Candidate identity lists: which identities to collect, and which to leave out and why.

``build_candidates`` turns name sources into the candidates manifest (documented in
``manifests/candidates.md``); ``write_candidates`` / ``read_candidates`` store it at
``<workdir>/candidates/candidates.parquet`` with a review list of likely typos beside it.
"""

from __future__ import annotations

import csv
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from curate import manifest
from curate.candidates.build import COLUMNS, CandidatesConfig, build_candidates
from curate.errors import CurateError
from curate.record import Status
from curate.storage import atomic_open

__all__ = [
    "COLUMNS",
    "REVIEW_FILE",
    "CandidatesConfig",
    "CandidatesSummary",
    "build_candidates",
    "candidates_path",
    "read_candidates",
    "summarize",
    "write_candidates",
]

logger = logging.getLogger(__name__)

KIND = "candidates"
REVIEW_FILE = "_likely_duplicates.csv"  # "_" keeps it out of pandas.read_parquet(<folder>)


def candidates_path(workdir: Path) -> Path:
    """Where the candidates manifest of a work folder lives."""
    return Path(workdir) / "candidates" / "candidates.parquet"


def write_candidates(table: pa.Table, workdir: Path) -> Path:
    """Write the manifest atomically, and the likely-typo review list beside it; return the manifest path."""
    path = candidates_path(workdir)
    manifest.write_shard(table, path, kind=KIND)
    _write_review(table, path.with_name(REVIEW_FILE))
    logger.info("wrote %d candidates to %s", table.num_rows, path)
    return path


def _write_review(table: pa.Table, path: Path) -> None:
    rows = table.select(["identity_id", "name", "possible_duplicate_of", "duplicate_distance"]).to_pylist()
    names = dict(zip(table.column("identity_id").to_pylist(), table.column("name").to_pylist(), strict=True))
    with atomic_open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["identity_id", "name", "possible_duplicate_of", "duplicate_name", "edits"])
        for row in rows:
            if row["possible_duplicate_of"] is not None:
                other = row["possible_duplicate_of"]
                writer.writerow(
                    [row["identity_id"], row["name"], other, names[other], row["duplicate_distance"]]
                )


def read_candidates(workdir_or_path: Path) -> pa.Table:
    """Read a candidates manifest (a work folder or the Parquet file itself), checking version and kind."""
    path = Path(workdir_or_path)
    if path.is_dir():
        path = candidates_path(path)
    if not path.is_file():
        raise CurateError(f"no candidates list at {path}; run `curate candidates SOURCES...` first")
    table = manifest.read_shard(path)
    kind = (table.schema.metadata or {}).get(manifest.META_KIND, b"").decode()
    if kind != KIND:
        raise CurateError(f"{path} is a '{kind}' manifest, not a candidates list")
    return table


@dataclass(frozen=True)
class CandidatesSummary:
    """Counts for the CLI's report."""

    total: int
    kept: int
    per_benchmark: dict[str, int]  # excluded identities per benchmark (one may count under several)
    per_exclusion: dict[str, int]  # excluded identities per kind: benchmark, balance, max
    likely_typos: int  # identities flagged with possible_duplicate_of
    benchmark_near_matches: int  # kept identities a typo away from a benchmark name


def summarize(table: pa.Table) -> CandidatesSummary:
    """Count what a candidates manifest kept, excluded and flagged."""
    rows = table.select(
        ["status", "exclusion", "overlaps", "possible_duplicate_of", "benchmark_near_match"]
    ).to_pylist()
    kept = [row for row in rows if row["status"] == Status.OK.value]
    return CandidatesSummary(
        total=len(rows),
        kept=len(kept),
        per_benchmark=dict(Counter(stem for row in rows for stem in row["overlaps"] or [])),
        per_exclusion=dict(Counter(row["exclusion"] for row in rows if row["exclusion"])),
        likely_typos=sum(row["possible_duplicate_of"] is not None for row in rows),
        benchmark_near_matches=sum(row["benchmark_near_match"] is not None for row in kept),
    )
