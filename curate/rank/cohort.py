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
3. **Calibrated threshold.** The negatives get the same evidence against this identity's reference set:
   that is how strangers score. The threshold is their ``1 - false_accept`` quantile, each negative
   weighted by how close its head yaw is to the image's (a Gaussian in ``|yaw|``, ``POSE_WIDTH_DEG``)
   when the faces stage measured yaw: a profile is held to how strange *profiles* score. The score is
   ``expit(SLOPE * (evidence - threshold) / spread)``, so 0.5 is the decision boundary as for every scorer.

``false_accept`` is the share of strangers an identity admits; its default per embedder was calibrated on
one half of the CFP identities of ``bench/noisy_collection.py`` (see ``bench/results/rank.md``).
Cost per identity: ``(n + m) x m`` similarities for ``n`` images and ``m`` negatives.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from scipy.special import expit

from curate.rank.scorers import Scorer

logger = logging.getLogger(__name__)

COHORT_SIZE = 50  # highest similarities to the negatives that make an image's cohort
NEIGHBOURS = 2  # evidence = mean of this many best normalised similarities to the reference set
POSE_WIDTH_DEG = 20.0  # width of the yaw kernel that weights negatives by pose similarity
SLOPE = 3.0  # score steepness, in negatives' standard deviations of evidence
DEFAULT_FALSE_ACCEPT = 0.005  # for embedders not calibrated below
CALIBRATED_FALSE_ACCEPT = {"dlib": 0.005}  # per embedder, from bench/noisy_collection.py's calibration half


def false_accept_for(embedder: str, configured: float | None) -> float:
    """The configured false-accept rate, else the embedder's calibrated one, else the default."""
    if configured is not None:
        return configured
    return CALIBRATED_FALSE_ACCEPT.get(embedder, DEFAULT_FALSE_ACCEPT)


def cohort_stats(similarities: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, mean and standard deviation of its ``size`` highest values (-inf entries never count)."""
    size = max(1, min(size, similarities.shape[1]))
    top = np.partition(similarities, similarities.shape[1] - size, axis=1)[:, -size:]
    top = np.where(np.isfinite(top), top, np.nan)
    mean = np.nan_to_num(np.nanmean(top, axis=1), nan=0.0)
    spread = np.nan_to_num(np.nanstd(top, axis=1), nan=0.0)
    return mean, np.maximum(spread, 1e-3)


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


def weighted_threshold(
    values: np.ndarray, weights: np.ndarray, quantile: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``weights``: the weighted ``quantile`` of ``values`` and their weighted spread."""
    order = np.argsort(values, kind="stable")
    sorted_values, sorted_weights = values[order], weights[:, order]
    cumulative = np.cumsum(sorted_weights, axis=1)
    total = cumulative[:, -1:]
    index = np.argmax(cumulative >= quantile * total, axis=1)
    mean = (sorted_weights @ sorted_values) / total[:, 0]
    variance = (sorted_weights @ sorted_values**2) / total[:, 0] - mean**2
    return sorted_values[index], np.sqrt(np.maximum(variance, 1e-6))


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

    def __init__(self, false_accept: float = DEFAULT_FALSE_ACCEPT) -> None:
        self.false_accept = false_accept

    @classmethod
    def from_config(cls, config: Any) -> CohortScorer:
        """The scorer with the false-accept rate the config (or the embedder's calibration) asks for."""
        return cls(false_accept_for(config.embedder, getattr(config, "false_accept", None)))

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
        own_mean, own_spread = cohort_stats(vectors @ negatives.T, COHORT_SIZE)
        if len(negatives) > 1:
            among = negatives @ negatives.T
            np.fill_diagonal(among, -np.inf)  # a negative is not in its own cohort
            neg_mean, neg_spread = cohort_stats(among, COHORT_SIZE)
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
        threshold, spread = weighted_threshold(strangers, weights, 1.0 - self.false_accept)
        return expit(SLOPE * (own - threshold) / spread).astype(np.float32)
