"""The ``cohort`` scorer: cohort-normalised similarity with a pose-aware, calibrated false-accept threshold.

Raw cosines of a face embedder mean different things for different images: a profile, a dark or a
blurred photo is less similar to *everyone*, its own identity included, so a single cosine threshold
either drops the hard genuine images or admits strangers. Three steps handle that:

1. **Cohort normalisation (S-norm).** Each image's cohort is its ``COHORT_SIZE`` highest similarities to
   the negatives (other identities' images). A similarity between images ``a`` and ``b`` becomes the mean
   of its z-scores against the two cohorts, so a profile that is unusually close to this identity counts
   even though all its cosines are low.
2. **Evidence.** An image's evidence is the mean of its ``NEIGHBOURS`` best normalised similarities to the
   reference set (the positives: round 1's trusted images, later the previous round's kept images; never
   the image itself). Several neighbours, not one, so two intruders of one stranger cannot vouch for
   each other alone; any neighbours, not a single centre, so an identity keeps several looks (CAST-style
   modes: frontal, profile, young, old).
3. **Calibrated, pose-aware threshold.** The negatives get the same evidence against this identity's
   reference set: that is how strangers score. The threshold sits where a ``false_accept`` share of them
   would pass, leaving out the few that must be the person (:func:`robust_threshold`), each weighted by
   how close its head yaw is to the image's (a Gaussian in ``|yaw|``, ``POSE_WIDTH_DEG``) when the faces
   stage measured yaw, so a profile is held to how strange *profiles* score. Images turned at least
   ``PROFILE_YAW_DEG`` use ``profile_false_accept`` instead: an embedder separates people far less well
   in profile, the few profiles among the intruders cost little purity, and the profiles are the hard
   positives a model learns most from. The score is ``expit(SLOPE * (evidence - threshold) / spread)``,
   so 0.5 is the decision boundary as for every scorer.

Both rates are shares of strangers an identity admits; their defaults per embedder were calibrated on one
half of the CFP identities of ``bench/noisy_collection.py`` (see ``bench/results/rank.md``).
Cost per identity: ``(n + m) x m`` similarities for ``n`` images and ``m`` negatives.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from scipy.special import expit

from curate.rank.scorers import Scorer

logger = logging.getLogger(__name__)

COHORT_SIZE = 50  # highest similarities to the negatives that make an image's cohort ...
MIN_COHORT = 5  # ... at most a fifth of the negatives, and at least this many
NEIGHBOURS = 2  # evidence = mean of this many best normalised similarities to the reference set
POSE_WIDTH_DEG = 20.0  # width of the yaw kernel that weights negatives by pose similarity
OUTLIER_SDS = 3.0  # strangers this many robust SDs above their median are taken to show the person
SLOPE = 3.0  # score steepness, in negatives' standard deviations of evidence
PROFILE_YAW_DEG = 35.0  # images turned at least this far use the profile false-accept rate
DEFAULT_RATES = (0.002, 0.02)  # (false_accept, profile_false_accept) for embedders not calibrated below
CALIBRATED_RATES = {"dlib": (0.001, 0.05)}  # per embedder: bench/noisy_collection.py, calibration half


def rates_for(embedder: str, false_accept: float | None, profile: float | None) -> tuple[float, float]:
    """The configured (false_accept, profile_false_accept), each else the embedder's calibrated value."""
    calibrated = CALIBRATED_RATES.get(embedder, DEFAULT_RATES)
    return (
        calibrated[0] if false_accept is None else false_accept,
        calibrated[1] if profile is None else profile,
    )


def cohort_stats(similarities: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the centre and spread of its ``size`` highest values (-inf entries never count).

    Median and 1.4826 x median absolute deviation rather than mean and standard deviation: a negative
    that shows the same person (a copy of the photo under another name) must not inflate the spread.
    """
    size = max(1, min(size, similarities.shape[1]))
    top = np.partition(similarities, similarities.shape[1] - size, axis=1)[:, -size:]
    top = np.where(np.isfinite(top), top, np.nan)
    centre = np.nan_to_num(np.nanmedian(top, axis=1), nan=0.0)
    spread = np.nan_to_num(1.4826 * np.nanmedian(np.abs(top - centre[:, None]), axis=1), nan=0.0)
    return centre, np.maximum(spread, 1e-3)


def pose_weights(
    yaw: np.ndarray | None, negative_yaw: np.ndarray | None, rows: int, columns: int
) -> np.ndarray:
    """``rows x columns`` weights of each negative for each image: a Gaussian in the |yaw| difference.

    Unknown yaw (None or NaN) on either side gives weight 1: without a pose, every negative counts alike.
    """
    if yaw is None or negative_yaw is None:
        return np.ones((rows, columns))
    difference = np.abs(np.abs(yaw)[:, None] - np.abs(negative_yaw)[None, :])
    weights = np.exp(-0.5 * (difference / POSE_WIDTH_DEG) ** 2)
    return np.where(np.isnan(weights), 1.0, weights)


def weighted_quantile(values: np.ndarray, weights: np.ndarray, quantile: float) -> np.ndarray:
    """Per row: the weighted ``quantile`` of that row of ``values`` (or of the one shared row)."""
    values = np.broadcast_to(values, weights.shape)
    order = np.argsort(values, axis=1, kind="stable")
    sorted_values = np.take_along_axis(values, order, axis=1)
    cumulative = np.cumsum(np.take_along_axis(weights, order, axis=1), axis=1)
    index = np.argmax(cumulative >= quantile * cumulative[:, -1:], axis=1)
    return sorted_values[np.arange(len(weights)), index]


def robust_threshold(
    values: np.ndarray, weights: np.ndarray, rate: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``weights``: the strangers' threshold for a false-accept ``rate``, and their spread.

    The threshold is the weighted ``1 - rate`` quantile of the strangers' evidence after setting aside
    those beyond ``OUTLIER_SDS`` robust standard deviations (1.4826 x the weighted median absolute
    deviation) above their weighted median: such "strangers" show the person themselves (the same photo
    filed under another name too, or the two pictured together), and a raw high quantile would let them
    set the threshold and push out the identity's own images.
    """
    middle = weighted_quantile(values, weights, 0.5)
    spread = 1.4826 * weighted_quantile(np.abs(values[None, :] - middle[:, None]), weights, 0.5)
    spread = np.maximum(spread, 1e-3)
    plausible = values[None, :] <= (middle + OUTLIER_SDS * spread)[:, None]
    trimmed = np.where(plausible, weights, 0.0)
    order = np.argsort(values, kind="stable")
    cumulative = np.cumsum(trimmed[:, order], axis=1)
    index = np.argmax(cumulative >= (1.0 - rate)[:, None] * cumulative[:, -1:], axis=1)
    return values[order][index], spread


def evidence(normalised: np.ndarray, positives: np.ndarray, self_rows: np.ndarray | None) -> np.ndarray:
    """Mean of each row's ``NEIGHBOURS`` best normalised similarities to the positives (columns).

    ``self_rows`` marks, per positive, the row that is that same image; it never counts as its own
    neighbour, unless it is the only positive.
    """
    excluded = self_rows is not None and len(positives) > 1
    if excluded:
        normalised = normalised.copy()
        normalised[self_rows, np.arange(len(positives))] = -np.inf
    count = max(1, min(NEIGHBOURS, len(positives) - int(excluded)))
    top = -np.sort(-normalised, axis=1)[:, :count]
    return np.where(np.isfinite(top), top, np.nan).mean(axis=1)


class CohortScorer(Scorer):
    """S-norm similarity to the reference set against a pose-aware calibrated stranger threshold."""

    name = "cohort"
    negatives_from_all = True  # strangers as they come, dropped images included, calibrate the threshold

    def __init__(
        self, false_accept: float = DEFAULT_RATES[0], profile_false_accept: float = DEFAULT_RATES[1]
    ) -> None:
        self.false_accept = false_accept
        self.profile_false_accept = profile_false_accept

    @classmethod
    def from_config(cls, config: Any) -> CohortScorer:
        """The scorer with the rates the config (or else the embedder's calibration) asks for."""
        return cls(*rates_for(config.embedder, config.false_accept, config.profile_false_accept))

    def score(
        self,
        vectors: np.ndarray,
        positives: np.ndarray,
        negatives: np.ndarray,
        rng: np.random.Generator,
        yaw: np.ndarray | None = None,
        negative_yaw: np.ndarray | None = None,
    ) -> np.ndarray:
        """See :meth:`Scorer.score`."""
        size = min(COHORT_SIZE, max(MIN_COHORT, len(negatives) // 5))  # a cohort is a small top share
        own_mean, own_spread = cohort_stats(vectors @ negatives.T, size)
        if len(negatives) > 1:
            among = negatives @ negatives.T
            np.fill_diagonal(among, -np.inf)  # a negative is not in its own cohort
            neg_mean, neg_spread = cohort_stats(among, size)
        else:
            neg_mean, neg_spread = np.zeros(1), np.ones(1)
        ref_mean, ref_spread = own_mean[positives], own_spread[positives]

        def snorm(similarity: np.ndarray, mean: np.ndarray, spread: np.ndarray) -> np.ndarray:
            return 0.5 * (
                (similarity - mean[:, None]) / spread[:, None] + (similarity - ref_mean) / ref_spread
            )

        own = evidence(snorm(vectors @ vectors[positives].T, own_mean, own_spread), positives, positives)
        strangers = evidence(snorm(negatives @ vectors[positives].T, neg_mean, neg_spread), positives, None)
        weights = pose_weights(yaw, negative_yaw, len(vectors), len(negatives))
        turned = np.abs(np.nan_to_num(yaw, nan=0.0)) >= PROFILE_YAW_DEG if yaw is not None else False
        rate = np.where(turned, self.profile_false_accept, self.false_accept) * np.ones(len(vectors))
        threshold, spread = robust_threshold(strangers, weights, rate)
        return expit(SLOPE * (own - threshold) / spread).astype(np.float32)
