"""Self-training rounds: score every identity's images, keep the best, retrain on what was kept.

Round 1 trains each identity's scorer on its top ``positives`` images by search rank (or, without a search
rank, the images nearest its robust centre; at most half of its images either way) against a seeded
sample of other identities' images. Every later round trains on the images the previous round kept, with
negatives drawn from the other identities' kept images. The rounds stop early once a round changes
nothing (the next one would repeat it exactly).

Results do not depend on the order of the input rows: each identity's images arrive in a canonical order
(the caller sorts them), identities are processed in ``identity_id`` order, and each identity's random
numbers come from a generator seeded with ``(seed, hash(identity_id))``.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from curate.errors import CurateError
from curate.rank.registry import get_scorer
from curate.rank.scorers import Scorer, nearest_to_centre
from curate.rank.settings import RankSettings

logger = logging.getLogger(__name__)

MAX_POSITIVE_SHARE = 0.5  # round-1 positives are at most this share of an identity's images


@dataclass
class Identity:
    """One identity's ok images, in canonical order."""

    identity_id: str
    name: str
    vectors: np.ndarray  # (n, d) float32, unit rows
    search_rank: np.ndarray  # (n,) float64, NaN where unknown; 1 = top search result
    yaw: np.ndarray | None = None  # (n,) head yaw in degrees from the faces stage, NaN where unknown

    def poses(self) -> np.ndarray:
        """Yaw per image, NaN where unknown (all NaN without a yaw column)."""
        return np.full(len(self.vectors), np.nan) if self.yaw is None else self.yaw


@dataclass
class Ranking:
    """The outcome for one identity's images (same order as :attr:`Identity.vectors`)."""

    scores: np.ndarray  # float32, final round
    ranks: np.ndarray  # int32, 1 = best
    kept: np.ndarray  # bool, final round
    decided_round: np.ndarray  # int32: the last round that changed the row's keep/drop decision
    history: list[np.ndarray] = field(default_factory=list)  # kept mask after each round


def identity_rng(seed: int, identity_id: str) -> np.random.Generator:
    """A generator that depends only on the seed and the identity (not on processing order)."""
    digest = int.from_bytes(hashlib.sha1(identity_id.encode("utf-8")).digest()[:8], "big")
    return np.random.default_rng([seed, digest])


def initial_positives(identity: Identity, count: int) -> np.ndarray:
    """Round-1 positives: the top ``count`` by search rank, topped up with images nearest the centre.

    At most ``MAX_POSITIVE_SHARE`` of the identity's images are taken, so a small identity's positives are
    its most trusted half rather than everything it has, wrong images included.
    """
    count = min(count, max(1, math.ceil(MAX_POSITIVE_SHARE * len(identity.vectors))))
    ranked = np.flatnonzero(~np.isnan(identity.search_rank))
    chosen = ranked[np.argsort(identity.search_rank[ranked], kind="stable")][:count]
    unranked = np.flatnonzero(np.isnan(identity.search_rank))
    if len(chosen) < count and len(unranked):
        extra = nearest_to_centre(identity.vectors[unranked], count - len(chosen))
        chosen = np.concatenate([chosen, unranked[extra]])
    return np.sort(chosen)


def decide(scores: np.ndarray, keep: int, min_score: float) -> tuple[np.ndarray, np.ndarray]:
    """Ranks (1 = highest score; ties by position) and the kept mask (rank <= keep, score >= min_score)."""
    order = np.lexsort((np.arange(len(scores)), -scores.astype(np.float64)))
    ranks = np.empty(len(scores), dtype=np.int32)
    ranks[order] = np.arange(1, len(scores) + 1, dtype=np.int32)
    return ranks, (ranks <= keep) & (scores >= min_score)


class _NegativePool:
    """Other identities' images to draw negatives from; rows grouped by identity in canonical order."""

    def __init__(self, vectors: np.ndarray, yaw: np.ndarray, starts: np.ndarray, rows: np.ndarray) -> None:
        self.vectors = vectors
        self.yaw = yaw
        self.starts = starts  # start row of each identity in ``vectors`` (plus the end)
        self.rows = rows  # sorted rows of ``vectors`` eligible as negatives

    def sample(self, identity: int, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Up to ``count`` eligible rows of identities other than ``identity``, drawn without replacement:
        their vectors and yaw."""
        low, high = np.searchsorted(self.rows, self.starts[identity : identity + 2])
        available = len(self.rows) - (high - low)
        if available == 0:
            return np.empty((0, self.vectors.shape[1]), dtype=np.float32), np.empty(0)
        picks = np.sort(rng.choice(available, size=min(count, available), replace=False))
        picks[picks >= low] += high - low
        return self.vectors[self.rows[picks]], self.yaw[self.rows[picks]]


def rank_identities(
    identities: list[Identity], config: RankSettings, progress: Callable[[int, int], None] | None = None
) -> tuple[list[Ranking], list[dict[str, Any]]]:
    """Run the self-training rounds; returns each identity's ranking and one stats dict per round run.

    ``progress`` is called with (identities ranked, identities x rounds) as identities are scored.

    A round's stats: ``kept``, ``dropped`` (ok images not kept) and ``changed`` (images whose decision
    differs from the previous round; in round 1, from "every ok image kept", so it equals ``dropped``).
    """
    if not identities:
        return [], []
    ids = [identity.identity_id for identity in identities]
    if ids != sorted(ids):
        raise ValueError("identities must be sorted by identity_id")
    scorer = get_scorer(config.scorer, config)
    sizes = np.array([len(identity.vectors) for identity in identities])
    starts = np.concatenate([[0], np.cumsum(sizes)])
    everything = np.concatenate([identity.vectors for identity in identities])
    everything_yaw = np.concatenate([identity.poses() for identity in identities])
    positives = [initial_positives(identity, config.positives) for identity in identities]
    kept = [np.ones(size, dtype=bool) for size in sizes]
    rankings: list[Ranking] = []
    rounds: list[dict[str, Any]] = []
    for round_number in range(1, config.rounds + 1):
        pool_rows = np.flatnonzero(np.concatenate(kept))
        pools = (
            _NegativePool(everything, everything_yaw, starts, pool_rows),
            _NegativePool(everything, everything_yaw, starts, np.arange(len(everything))),
        )
        scored = _score_round(scorer, identities, positives, pools, config, round_number, progress)
        changed = sum(
            int((new_kept != old).sum()) for (_, _, new_kept), old in zip(scored, kept, strict=True)
        )
        kept = [new_kept for _, _, new_kept in scored]
        rankings = _update(rankings, scored, round_number)
        total_kept = int(sum(k.sum() for k in kept))
        rounds.append(
            {
                "round": round_number,
                "kept": total_kept,
                "dropped": int(sizes.sum()) - total_kept,
                "changed": changed,
            }
        )
        logger.info(
            "rank round %d: kept %d, dropped %d, changed %d",
            round_number,
            total_kept,
            rounds[-1]["dropped"],
            changed,
        )
        if round_number > 1 and changed == 0:
            break
        positives = [np.flatnonzero(k) if k.any() else p for k, p in zip(kept, positives, strict=True)]
    return rankings, rounds


def _score_round(
    scorer: Scorer,
    identities: list[Identity],
    positives: list[np.ndarray],
    pools: tuple[_NegativePool, _NegativePool],
    config: RankSettings,
    round_number: int,
    progress: Callable[[int, int], None] | None,
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """One round's :func:`_rank_one` for every identity, counted for ``progress`` across all rounds."""
    scored = []
    with threadpool_limits(limits=1):  # many small fits: threads only add overhead
        for index, identity in enumerate(identities):
            scored.append(_rank_one(scorer, identity, index, positives[index], pools, config))
            if progress is not None:  # out of the most rounds: a run stops early once nothing changes
                progress((round_number - 1) * len(identities) + index + 1, config.rounds * len(identities))
    return scored


def _rank_one(
    scorer: Scorer,
    identity: Identity,
    index: int,
    positives: np.ndarray,
    pools: tuple[_NegativePool, _NegativePool],
    config: RankSettings,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Score, rank and keep one identity's images for one round."""
    rng = identity_rng(config.seed, identity.identity_id)
    negatives, negative_yaw = pools[int(scorer.negatives_from_all)].sample(
        index, config.negatives_per_identity, rng
    )
    if len(negatives) == 0:  # no other identity kept anything last round: fall back to all their images
        negatives, negative_yaw = pools[1].sample(index, config.negatives_per_identity, rng)
    if len(negatives) == 0:
        raise CurateError(
            "rank needs at least two identities with ok images to draw negatives from; with one identity "
            "skip rank: run curate dedup --input describe"
        )
    scores = scorer.score(identity.vectors, positives, negatives, rng, identity.poses(), negative_yaw)
    ranks, kept = decide(scores, config.keep, config.min_score)
    return scores, ranks, kept


def _update(
    previous: list[Ranking], scored: list[tuple[np.ndarray, np.ndarray, np.ndarray]], round_number: int
) -> list[Ranking]:
    """Fold one round's results into the rankings (history and the round that decided each row)."""
    if not previous:
        return [Ranking(s, r, k, np.ones(len(s), dtype=np.int32), [k]) for s, r, k in scored]
    updated = []
    for ranking, (scores, ranks, kept) in zip(previous, scored, strict=True):
        decided = np.where(kept != ranking.kept, round_number, ranking.decided_round).astype(np.int32)
        updated.append(Ranking(scores, ranks, kept, decided, [*ranking.history, kept]))
    return updated
