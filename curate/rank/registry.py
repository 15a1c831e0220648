"""The scorers by name: what the rank stage's ``scorer`` setting chooses from."""

from __future__ import annotations

from typing import Any

from curate.errors import ConfigError
from curate.rank.cohort import CALIBRATED_RATES, CohortScorer
from curate.rank.scorers import CentreScorer, ClassifierScorer, ClusterScorer, Scorer

SCORERS: dict[str, type[Scorer]] = {
    cls.name: cls for cls in (ClassifierScorer, CentreScorer, ClusterScorer, CohortScorer)
}


def resolve(name: str, embedder: str) -> str:
    """``auto``: the cohort scorer for an embedder whose rates were calibrated, else the classifier (the
    cohort threshold is only as good as its calibration; with an uncalibrated, weaker embedder the
    classifier's probabilities keep more of the genuine images)."""
    if name != "auto":
        return name
    return CohortScorer.name if embedder in CALIBRATED_RATES else ClassifierScorer.name


def get_scorer(name: str, config: Any = None) -> Scorer:
    """The scorer registered under ``name`` (``auto`` resolved for the config's embedder), set up from the
    rank config when one is given."""
    name = resolve(name, config.embedder if config is not None else "")
    if name not in SCORERS:
        raise ConfigError("scorer", name, f"choose one of: {', '.join(SCORERS)}")
    return SCORERS[name].from_config(config) if config is not None else SCORERS[name]()
