"""The review plan indexed for the page: blocks by identity, pairs, and progress counts."""

from __future__ import annotations

import math
from collections import Counter

import pandas as pd

from curate.review.plan import ReviewPlan

ITEM_FIELDS = ["image_id", "position", "rank_score", "status", "flags", "why", "reason"]
PAIR_FIELDS = ["pair_id", "image_a", "image_b", "identity_a", "identity_b", "identity_name_a"]
PAIR_FIELDS += ["identity_name_b", "score_a", "score_b", "reason"]


def _records(frame: pd.DataFrame, fields: list[str]) -> list[dict]:
    """JSON-ready records: NaN becomes None, numpy scalars become Python ones."""
    rows = frame[fields].astype(object).where(frame[fields].notna(), None).to_dict("records")
    for row in rows:
        for key, value in row.items():
            if isinstance(value, float) and math.isnan(value):
                row[key] = None
            elif hasattr(value, "item"):
                row[key] = value.item()
    return rows


class Progress:
    """Look-ups the page needs, built once per server start."""

    def __init__(self, plan: ReviewPlan) -> None:
        items = plan.items
        self.identity_of: dict[str, str] = dict(zip(items["image_id"], items["identity_id"], strict=True))
        self.identities: dict[str, dict] = {
            r["identity_id"]: r for r in _records(plan.identities, list(plan.identities.columns))
        }
        self._blocks: dict[tuple[str, int], list[dict]] = {}
        for (identity_id, block), group in items.groupby(["identity_id", "block"], sort=False):
            self._blocks[(identity_id, int(block))] = _records(group, ITEM_FIELDS)
        self._pairs: dict[str, list[dict]] = {}
        self._pair_keys: set[str] = set()
        for pair in _records(plan.pairs, PAIR_FIELDS):
            self._pair_keys.add("|".join(sorted((pair["image_a"], pair["image_b"]))))
            for identity_id in {pair["identity_a"], pair["identity_b"]}:
                self._pairs.setdefault(identity_id, []).append(pair)
        self.sizes = Counter(items["identity_id"])

    def block(self, identity_id: str, number: int) -> tuple[dict, list[dict]] | None:
        """The identity and fresh copies of one block's items, or None."""
        items = self._blocks.get((identity_id, number))
        if items is None:
            return None
        return dict(self.identities[identity_id]), [dict(item) for item in items]

    def pairs(self, identity_id: str) -> list[dict]:
        """Fresh copies of the borderline pairs that involve the identity."""
        return [dict(pair) for pair in self._pairs.get(identity_id, [])]

    def is_pair(self, a: str, b: str) -> bool:
        """Is (a, b) a planned pair, in either order?"""
        return "|".join(sorted((a, b))) in self._pair_keys

    def summary(self, decided: list[tuple[str, str]], reviewer: str) -> dict:
        """Identities in plan order with images decided by anyone and by ``reviewer``; overall totals."""
        anyone: Counter = Counter()
        mine: Counter = Counter()
        seen: set[str] = set()
        for image_id, who in decided:
            identity_id = self.identity_of.get(image_id)
            if identity_id is None:
                continue
            if image_id not in seen:
                seen.add(image_id)
                anyone[identity_id] += 1
            if who == reviewer:
                mine[identity_id] += 1
        identities = [
            {**record, "done": anyone[i], "done_me": mine[i]} for i, record in self.identities.items()
        ]
        return {
            "identities": identities,
            "total": len(self.identity_of),
            "done": sum(anyone.values()),
            "done_me": sum(mine.values()),
        }
