"""The ``rank`` stage: score every identity's images, keep the best K, flag doubtful identities.

A whole-data-set step (negatives come from other identities, which live in other shards). For the ok rows:

1. read the descriptors the ``describe`` stage stored (``embedder`` names which vectors), and the head yaw
   the faces stage measured (``yaw_deg``, when the column exists; the ``cohort`` scorer uses it);
2. run the self-training rounds (:mod:`curate.rank.selftrain`) with the configured scorer: round 1 trains
   on the top ``positives`` images by ``search_rank`` (or nearest the robust centre when there is none),
   later rounds on what the previous round kept;
3. keep each identity's top ``keep`` images scoring at least ``min_score``; the rest become ``low_score``
   with the score in the reason;
4. flag identities whose centres nearly coincide (``overlap_with``) and identities whose estimated purity
   (the share of their ok images scoring at least ``min_score``) is below ``min_purity``
   (``identity_review``); see :mod:`curate.rank.overlap`.

Rows that are not ok pass through untouched, with the new columns null.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from curate.errors import CurateError
from curate.preflight import require_planned, require_vectors
from curate.rank.overlap import find_overlaps, identity_centres, partners, purity
from curate.rank.scorers import normalise
from curate.rank.selftrain import Identity, Ranking, rank_identities
from curate.rank.settings import ScorerName as ScorerName  # re-exported
from curate.record import Status, add_columns, ok_mask, set_status
from curate.stage import GlobalStage, Stage, StageContext
from curate.stages.rank_config import RankConfig

logger = logging.getLogger(__name__)

COLUMNS: dict[str, pa.DataType] = {
    "rank_score": pa.float32(),  # in [0, 1], higher = more likely the identity; 0.5 = decision boundary
    "rank_in_identity": pa.int32(),  # 1 = the identity's best-scored ok image
    "rank_round": pa.int32(),  # the round that decided the keep/drop outcome
    "rank_history": pa.list_(pa.bool_()),  # kept (true) or dropped after each round run
    "identity_purity": pa.float32(),  # estimated share of the identity's ok images that show it
    "identity_review": pa.bool_(),  # identity_purity < min_purity: look at this identity
    "overlap_with": pa.string(),  # names of identities that may be the same person, "; "-joined ("" = none)
}


@dataclass
class _Location:
    """Where an identity's rows are: its shard and row positions in canonical order."""

    shard: int
    rows: list[int]


def _gather(
    tables: dict[int, pa.Table], ctx: StageContext, config: RankConfig
) -> tuple[list[Identity], list[_Location]]:
    """Each identity's ok rows with their vectors, identities sorted by id, rows in canonical order."""
    grouped: dict[str, _Location] = {}
    vectors: dict[int, np.ndarray] = {}
    names: dict[str, str] = {}
    for shard, table in sorted(tables.items()):
        ok = ok_mask(table)
        if not any(ok):
            continue
        vectors[shard] = ctx.read_vectors(config.descriptor_stage, config.embedder, shard)
        if len(vectors[shard]) != table.num_rows:
            raise CurateError(
                f"shard {shard}: {len(vectors[shard])} '{config.embedder}' vectors for "
                f"{table.num_rows} rows; re-run the '{config.descriptor_stage}' stage"
            )
        columns = table.select(["identity_id", "identity_name", "image_id", "source", "path"]).to_pydict()
        by_identity: dict[str, list[int]] = defaultdict(list)
        for row in np.flatnonzero(ok):
            by_identity[columns["identity_id"][row]].append(int(row))
        for identity_id, rows in by_identity.items():
            if identity_id in grouped:
                raise CurateError(
                    f"identity {identity_id} has rows in shards {grouped[identity_id].shard} and {shard}"
                )
            key = [tuple(columns[c][r] or "" for c in ("image_id", "source", "path")) for r in rows]
            grouped[identity_id] = _Location(
                shard, [rows[i] for i in sorted(range(len(rows)), key=key.__getitem__)]
            )
            names[identity_id] = columns["identity_name"][rows[0]] or identity_id
    identities, locations = [], []
    for identity_id in sorted(grouped):
        location = grouped[identity_id]
        table = tables[location.shard]
        search = _floats(table, "search_rank", location.rows)
        vectors_of = normalise(vectors[location.shard][location.rows])
        yaw = _floats(table, "yaw_deg", location.rows)
        identities.append(Identity(identity_id, names[identity_id], vectors_of, search, yaw))
        locations.append(location)
    return identities, locations


def _floats(table: pa.Table, column: str, rows: list[int]) -> np.ndarray:
    """A numeric column's values at ``rows`` as float64, NaN where null or when the column is absent."""
    if column not in table.column_names:
        return np.full(len(rows), np.nan)
    values = table.column(column).to_pylist()
    return np.array([np.nan if values[r] is None else float(values[r]) for r in rows], dtype=np.float64)


class RankStage(GlobalStage):
    """Per identity: score, rank and keep the top images; flag overlapping and impure identities."""

    name = "rank"
    Config = RankConfig
    default_input = "describe"

    def reads(self) -> list[str]:
        """The descriptor stage, whose vectors the scorers train on."""
        return [self.config.descriptor_stage]

    def check_input(self, workdir: Path, input_stage: str | None) -> None:
        """Refuse, before any work, a descriptor stage that did not store the ``embedder`` vectors."""
        config: RankConfig = self.config
        require_vectors(workdir, "rank", "embedder", config.embedder, config.descriptor_stage, "embedder")

    def check_plan(self, earlier: dict[str, Stage]) -> None:
        """In a pipeline: the descriptor stage listed before rank must be set to store ``embedder``."""
        config: RankConfig = self.config
        producer = earlier.get(config.descriptor_stage)
        if producer is not None:
            produced = producer.vectors_written()
            instead = f"rank.embedder to one of {[v for v in produced if v != 'thumbnail']}"
            require_planned(
                "rank", "embedder", config.embedder, producer.name, produced, "embedders", instead
            )

    def run_all(self, tables: dict[int, pa.Table], ctx: StageContext) -> dict[int, pa.Table]:
        """See the module docstring."""
        config: RankConfig = self.config
        identities, locations = _gather(tables, ctx, config)
        rankings, rounds = rank_identities(identities, config, ctx.progress)
        overlaps = find_overlaps(identity_centres(identities, rankings), config.overlap_min_cosine)
        overlapping = partners(overlaps, len(identities))
        values: dict[int, dict[str, list[Any]]] = {
            shard: {column: [None] * table.num_rows for column in COLUMNS} for shard, table in tables.items()
        }
        dropped: dict[int, tuple[list[int], list[str]]] = defaultdict(lambda: ([], []))
        review = []
        for identity, ranking, location, others in zip(
            identities, rankings, locations, overlapping, strict=True
        ):
            identity_purity = purity(ranking, config.min_score)
            if identity_purity < config.min_purity:
                review.append({"identity": identity.name, "purity": round(identity_purity, 4)})
            overlap_names = "; ".join(sorted(identities[o].name for o in others))
            columns = values[location.shard]
            for i, row in enumerate(location.rows):
                columns["rank_score"][row] = float(ranking.scores[i])
                columns["rank_in_identity"][row] = int(ranking.ranks[i])
                columns["rank_round"][row] = int(ranking.decided_round[i])
                columns["rank_history"][row] = [bool(h[i]) for h in ranking.history]
                columns["identity_purity"][row] = identity_purity
                columns["identity_review"][row] = identity_purity < config.min_purity
                columns["overlap_with"][row] = overlap_names
                if not ranking.kept[i]:
                    dropped[location.shard][0].append(row)
                    dropped[location.shard][1].append(_reason(ranking, i, config))
        outputs = {}
        for shard, table in tables.items():
            table = add_columns(table, values[shard], COLUMNS)
            if dropped[shard][0]:
                table = set_status(table, dropped[shard][0], Status.LOW_SCORE, dropped[shard][1])
            outputs[shard] = table
        ctx.stats.update(_stats(identities, rankings, rounds, overlaps, review))
        return outputs


def _reason(ranking: Ranking, i: int, config: RankConfig) -> str:
    """Why row ``i`` of an identity was dropped, with its score."""
    score = float(ranking.scores[i])
    if score < config.min_score:
        return f"rank score {score:.3f} below min_score {config.min_score:g}"
    return f"rank {int(ranking.ranks[i])} beyond keep {config.keep} (rank score {score:.3f})"


def _stats(
    identities: list[Identity],
    rankings: list[Ranking],
    rounds: list[dict[str, Any]],
    overlaps: list,
    review: list,
) -> dict[str, Any]:
    """The figures the stage adds to its stats JSON."""
    return {
        "rank_identities": len(identities),
        "rank_kept": int(sum(int(r.kept.sum()) for r in rankings)),
        "rank_dropped": int(sum(int((~r.kept).sum()) for r in rankings)),
        "rank_rounds": rounds,
        "rank_overlaps": [
            {
                "identity_a": identities[o.first].name,
                "identity_b": identities[o.second].name,
                "cosine": round(o.cosine, 4),
            }
            for o in overlaps
        ],
        "rank_review": review,
    }
