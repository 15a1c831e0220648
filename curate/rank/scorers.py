"""Scorers: how likely is each of one identity's images to show that identity?

Every scorer has the same interface: given the identity's L2-normalised embeddings, which of them are the
positives (the images trusted to show the person) and a sample of other identities' embeddings (the
negatives), return a score in [0, 1] per image, higher = more likely the identity, 0.5 = the decision
boundary between "this person" and "someone else". Because every score is a probability-like number, one
``min_score`` works for every scorer and every embedder.

* ``classifier`` (VGG-Face's recipe): a linear one-vs-rest logistic regression on the descriptors, positives
  against negatives, classes weighted to balance. Positives are scored *out of fold* (cross-fitting: each is
  scored by a model trained without it), so a wrong image among the positives is not simply memorised.
* ``centre``: cosine similarity to the identity's robust centre (an iteratively trimmed mean).
* ``cluster`` (CAST-style): the identity's images are clustered (DBSCAN on cosine distance, the link
  threshold set from how close other identities come, so it adapts to the embedder); the dominant cluster
  is the one holding the most positives; the score is the similarity to it: the mean of each image's best
  similarities to the cluster's members.

``centre`` and ``cluster`` turn their similarity into a probability with Platt scaling: a one-feature
logistic regression fitted on the positives (or the dominant cluster's members) against the negatives.
"""

from __future__ import annotations

import logging
import math
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

if TYPE_CHECKING:  # scipy and sklearn take seconds to import: loaded when a scorer first runs
    from sklearn.linear_model import LogisticRegression

logger = logging.getLogger(__name__)

CLASSIFIER_C = 1.0  # inverse L2 regularisation of the linear classifier (unit-length inputs)
FOLDS = 5  # cross-fitting folds for scoring the positives
TRIM_KEEP = 0.5  # share of images (the closest ones) each trimmed-mean step averages
LINK_QUANTILE = 0.99  # cluster link threshold: this quantile of identity-to-negative similarities
CLUSTER_MIN_SAMPLES = 3  # DBSCAN core points need this many neighbours (itself included)
CLUSTER_NEIGHBOURS = 3  # the cluster score averages this many best similarities to the cluster


def normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (all-zero rows stay zero), as float32."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def robust_centre(vectors: np.ndarray, max_iter: int = 20) -> np.ndarray:
    """The identity's centre, robust to a minority of wrong images: an iteratively trimmed mean.

    Start from the normalised mean; then repeatedly average only the ``TRIM_KEEP`` share of images closest
    to the current centre, until that set stops changing. Returns a unit vector.
    """
    centre = normalise(vectors.mean(axis=0, keepdims=True))[0]
    count = max(1, math.ceil(TRIM_KEEP * len(vectors)))
    chosen: np.ndarray | None = None
    for _ in range(max_iter):
        closest = np.sort(np.argsort(-(vectors @ centre), kind="stable")[:count])
        if chosen is not None and np.array_equal(closest, chosen):
            break
        chosen = closest
        centre = normalise(vectors[chosen].mean(axis=0, keepdims=True))[0]
    return centre


def nearest_to_centre(vectors: np.ndarray, count: int) -> np.ndarray:
    """Indices of the ``count`` images closest to the robust centre (ties: lower index first)."""
    similarity = vectors @ robust_centre(vectors)
    return np.sort(np.argsort(-similarity, kind="stable")[:count])


def platt(positive: np.ndarray, negative: np.ndarray) -> tuple[float, float]:
    """Slope and intercept mapping a similarity to a probability (balanced one-feature logistic fit).

    A non-positive slope means the similarity does not separate the classes; it is clipped to zero (every
    image then gets the same score) and logged, rather than turning the ranking upside down.
    """
    x = np.concatenate([positive, negative]).astype(np.float64)[:, None]
    y = np.concatenate([np.ones(len(positive)), np.zeros(len(negative))])
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=1e4, class_weight="balanced", max_iter=1000).fit(x, y)
    slope, intercept = float(model.coef_[0, 0]), float(model.intercept_[0])
    if slope <= 0:
        logger.warning("similarity does not separate positives from negatives; scores are flat")
        slope = 0.0
    return slope, intercept


class Scorer(ABC):
    """Scores one identity's images; see the module docstring for the contract."""

    name: ClassVar[str]
    negatives_from_all: ClassVar[bool] = False  # False: later rounds draw negatives from kept images only

    @classmethod
    def from_config(cls, config: Any) -> Scorer:
        """The scorer set up from the rank stage's config (most scorers have no settings of their own)."""
        del config
        return cls()

    @abstractmethod
    def score(
        self,
        vectors: np.ndarray,
        positives: np.ndarray,
        negatives: np.ndarray,
        rng: np.random.Generator,
        yaw: np.ndarray | None = None,
        negative_yaw: np.ndarray | None = None,
    ) -> np.ndarray:
        """Per row of ``vectors`` (n, d), a float32 score in [0, 1].

        ``positives`` are row indices into ``vectors`` (at least one); ``negatives`` (m, d), m >= 1, are
        other identities' embeddings; ``rng`` is the only source of randomness. ``yaw`` and
        ``negative_yaw`` (degrees, NaN where unknown) are the head poses the faces stage measured; scorers
        that do not use pose ignore them.
        """


class ClassifierScorer(Scorer):
    """Linear one-vs-rest logistic regression, positives scored out of fold."""

    name = "classifier"

    @staticmethod
    def _fit(positives: np.ndarray, negatives: np.ndarray) -> LogisticRegression:
        x = np.concatenate([positives, negatives])
        y = np.concatenate([np.ones(len(positives)), np.zeros(len(negatives))])
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression(C=CLASSIFIER_C, class_weight="balanced", max_iter=1000)
        return model.fit(x, y)

    def score(
        self,
        vectors: np.ndarray,
        positives: np.ndarray,
        negatives: np.ndarray,
        rng: np.random.Generator,
        yaw: np.ndarray | None = None,
        negative_yaw: np.ndarray | None = None,
    ) -> np.ndarray:
        """See :meth:`Scorer.score` (pose is not used)."""
        folds = min(FOLDS, len(positives))
        if folds < 2:  # a single positive cannot be held out: score everything with one model
            return self._fit(vectors[positives], negatives).predict_proba(vectors)[:, 1].astype(np.float32)
        scores = np.zeros(len(vectors), dtype=np.float32)
        rest = np.setdiff1d(np.arange(len(vectors)), positives)
        if len(rest):  # images that were not positives: the model trained on all positives
            scores[rest] = self._fit(vectors[positives], negatives).predict_proba(vectors[rest])[:, 1]
        fold_of = rng.permutation(len(positives)) % folds
        for fold in range(folds):  # each positive: a model trained without its fold
            train, held = positives[fold_of != fold], positives[fold_of == fold]
            scores[held] = self._fit(vectors[train], negatives).predict_proba(vectors[held])[:, 1]
        return scores


class CentreScorer(Scorer):
    """Similarity to the robust centre of the positives, Platt-scaled against the negatives."""

    name = "centre"

    def score(
        self,
        vectors: np.ndarray,
        positives: np.ndarray,
        negatives: np.ndarray,
        rng: np.random.Generator,
        yaw: np.ndarray | None = None,
        negative_yaw: np.ndarray | None = None,
    ) -> np.ndarray:
        """See :meth:`Scorer.score` (pose is not used)."""
        centre = robust_centre(vectors[positives])
        similarity = vectors @ centre
        slope, intercept = platt(similarity[positives], negatives @ centre)
        from scipy.special import expit

        return expit(slope * similarity + intercept).astype(np.float32)


class ClusterScorer(Scorer):
    """Membership in and similarity to the identity's dominant density cluster (CAST-style).

    Clustering compares every pair of the identity's images, so its memory grows with the square of the
    identity's image count (about 400 MB at 10,000 images).
    """

    name = "cluster"

    @staticmethod
    def dominant_cluster(vectors: np.ndarray, positives: np.ndarray, negatives: np.ndarray) -> np.ndarray:
        """Indices of the DBSCAN cluster of ``vectors`` holding the most positives (ties: the larger one).

        Two images link when their cosine similarity reaches the ``LINK_QUANTILE`` of the similarities
        between these images and the negatives: closer than other people almost ever come. When no cluster
        holds a positive, the positives themselves are the cluster.
        """
        link = float(np.quantile(vectors @ negatives.T, LINK_QUANTILE))
        distance = np.clip(1.0 - vectors @ vectors.T, 0.0, 2.0)
        min_samples = min(CLUSTER_MIN_SAMPLES, len(vectors))
        from sklearn.cluster import DBSCAN

        labels = DBSCAN(eps=max(1.0 - link, 1e-6), min_samples=min_samples, metric="precomputed").fit_predict(
            distance
        )
        held = labels[positives]
        if not (held >= 0).any():
            return np.sort(positives)
        clusters = np.unique(held[held >= 0])
        votes = [(int((held == c).sum()), int((labels == c).sum()), -int(c)) for c in clusters]
        return np.flatnonzero(labels == -max(votes)[2])

    def score(
        self,
        vectors: np.ndarray,
        positives: np.ndarray,
        negatives: np.ndarray,
        rng: np.random.Generator,
        yaw: np.ndarray | None = None,
        negative_yaw: np.ndarray | None = None,
    ) -> np.ndarray:
        """See :meth:`Scorer.score` (pose is not used)."""
        cluster = self.dominant_cluster(vectors, positives, negatives)
        similarity = vectors @ vectors[cluster].T
        if len(cluster) > 1:  # a member's similarity to itself says nothing
            similarity[cluster, np.arange(len(cluster))] = -np.inf
        neighbours = min(CLUSTER_NEIGHBOURS, max(1, len(cluster) - 1))
        raw = np.sort(similarity, axis=1)[:, -neighbours:].mean(axis=1)
        negative_raw = np.sort(negatives @ vectors[cluster].T, axis=1)[:, -neighbours:].mean(axis=1)
        slope, intercept = platt(raw[cluster], negative_raw)
        from scipy.special import expit

        return expit(slope * raw + intercept).astype(np.float32)
