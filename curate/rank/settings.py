"""What the ranking library needs to know from its caller: the scorer names and the settings it reads.

The library (:mod:`curate.rank`) never imports the stage that drives it: :class:`RankSettings` is the
shape of the settings it reads (the ``rank`` stage's ``RankConfig`` has all of them), and the scorer names
live here, beside the scorers they choose, so ``curate.stages.rank`` depends on ``curate.rank`` and never
the other way round.
"""

from __future__ import annotations

from enum import Enum
from typing import Protocol


class ScorerName(str, Enum):
    """Which scorer ranks an identity's images (see :mod:`curate.rank.scorers`)."""

    CLASSIFIER = "classifier"
    CENTRE = "centre"
    CLUSTER = "cluster"
    COHORT = "cohort"
    AUTO = "auto"  # cohort for embedders with a calibration (dlib), classifier for the rest


class RankSettings(Protocol):
    """The settings the self-training rounds and the scorers read (``curate.stages.rank.RankConfig``)."""

    embedder: str
    scorer: ScorerName | str
    positives: int
    negatives_per_identity: int
    keep: int
    min_score: float
    rounds: int
    false_accept: float | None
    profile_false_accept: float | None
    seed: int
