"""Settings of the ``rank`` stage (:mod:`curate.stages.rank`); light to import."""

from __future__ import annotations

from dataclasses import dataclass

from curate.errors import ConfigError
from curate.rank.settings import ScorerName
from curate.settings import setting


@dataclass
class RankConfig:
    """Settings of the ``rank`` stage."""

    embedder: str = setting("dlib", help="name of the vectors the descriptor stage wrote")
    descriptor_stage: str = setting("describe", help="the stage that stored the vectors")
    scorer: ScorerName = setting(
        ScorerName.AUTO,
        help="auto (cohort where calibrated, else classifier), classifier (VGG-Face), centre, cluster "
        "(CAST-style) or cohort; see docs/rank.md",
    )
    positives: int = setting(
        50, help="round-1 positives per identity (VGG-Face: top 50 search results)", unit="images", min=1
    )
    negatives_per_identity: int = setting(
        1000, help="other identities' images sampled as negatives", unit="images", min=1
    )
    keep: int = setting(1000, help="keep at most this many images per identity", unit="images", min=1)
    min_score: float = setting(
        0.5, help="drop images scoring below this (calibrated: 0.5 = as likely as not)", min=0.0, max=1.0
    )
    rounds: int = setting(2, help="self-training rounds (1 = no retraining)", min=1)
    overlap_min_cosine: float = setting(
        0.97,
        help="identity centres more similar than this may be one person (tuned for dlib)",
        min=-1.0,
        max=1.0,
    )
    min_purity: float = setting(
        0.9, help="identities estimated less pure than this go to review", min=0.0, max=1.0
    )
    false_accept: float | None = setting(
        None, help="cohort scorer: share of strangers admitted (none = calibrated)"
    )
    profile_false_accept: float | None = setting(
        None, help="the same for faces turned 35 degrees or more (none = calibrated)"
    )
    seed: int = setting(0, help="seed for negative sampling and folds", min=0)

    def validate(self) -> None:
        """Raise ConfigError on a value that cannot work (ranges are checked from the metadata)."""
        for key in ("embedder", "descriptor_stage"):
            if not getattr(self, key):
                raise ConfigError(
                    key, getattr(self, key), "give the name (e.g. embedder 'dlib', stage 'describe')"
                )
        for key in ("false_accept", "profile_false_accept"):
            value = getattr(self, key)
            if value is not None and not 0.0 < value < 0.5:
                raise ConfigError(key, value, "use a share of strangers between 0 and 0.5, e.g. 0.002")
