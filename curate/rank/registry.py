"""The scorers by name: what the rank stage's ``scorer`` setting chooses from."""

from __future__ import annotations

from typing import Any

from curate.errors import ConfigError
from curate.rank.cohort import CohortScorer
from curate.rank.scorers import CentreScorer, ClassifierScorer, ClusterScorer, Scorer

SCORERS: dict[str, type[Scorer]] = {
    cls.name: cls for cls in (ClassifierScorer, CentreScorer, ClusterScorer, CohortScorer)
}


def get_scorer(name: str, config: Any = None) -> Scorer:
    """The scorer registered under ``name``, set up from the rank config when one is given."""
    if name not in SCORERS:
        raise ConfigError("scorer", name, f"choose one of: {', '.join(SCORERS)}")
    return SCORERS[name].from_config(config) if config is not None else SCORERS[name]()
