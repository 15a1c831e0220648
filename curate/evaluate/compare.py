"""Compare two models on the same verification pairs, with the uncertainty of the difference.

Both models are scored on identical pairs and folds (the protocol's per-fold thresholds), so the comparison
is paired: the per-fold accuracy differences are resampled with replacement (a paired bootstrap over folds)
and the spread of their mean is the uncertainty. The difference counts as measurable only when the 95%
bootstrap interval excludes zero. What this does not include is the variation between training runs with
other seeds; the sentence says so.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from curate.evaluate import read_pairs
from curate.evaluate.run import embed_images
from curate.evaluate.verification import VerificationResult, pair_scores, verify

logger = logging.getLogger(__name__)

BOOTSTRAP_SAMPLES = 5000
ROC_POINTS = 200


def _verify_model(model: str, pairs: Path, images: Path, protocol: str, cache: Path) -> VerificationResult:
    pair_set = read_pairs(protocol, pairs, images)
    embedded = embed_images(pair_set.images, model, cache, align=False)
    return verify(pair_scores(embedded.vectors, pair_set.left, pair_set.right), pair_set.same, pair_set.fold)


def paired_bootstrap(first: np.ndarray, second: np.ndarray, samples: int, seed: int = 0) -> np.ndarray:
    """Bootstrap means of ``second - first`` over resampled indices (the same indices for both)."""
    differences = np.asarray(second, dtype=float) - np.asarray(first, dtype=float)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(differences), size=(samples, len(differences)))
    return differences[picks].mean(axis=1)


def _thin(result: VerificationResult) -> dict[str, list[float]]:
    keep = np.unique(np.linspace(0, len(result.fpr) - 1, min(ROC_POINTS, len(result.fpr))).astype(int))
    return {"fpr": result.fpr[keep].round(5).tolist(), "tpr": result.tpr[keep].round(5).tolist()}


def verdict(difference: float, spread: float, low: float, high: float, baseline: str, treated: str) -> str:
    """The plain sentence: helped / hurt by X ± Y points, or no measurable difference."""
    interval = f"95% interval {100 * low:+.1f} to {100 * high:+.1f}"
    figure = f"{100 * difference:+.1f} ± {100 * spread:.1f} accuracy points ({interval})"
    if low > 0:
        return f"{treated} helped: {figure} over {baseline}."
    if high < 0:
        return f"{treated} hurt: {figure} against {baseline}."
    return f"No measurable difference between {treated} and {baseline}: {figure}."


def compare_models(
    models: dict[str, str], pairs: Path, images: Path, cache: Path, protocol: str = "lfw"
) -> dict[str, Any]:
    """Verify both ``models`` (``{label: model}``, baseline first) on the pairs and compare them."""
    (base_label, base_model), (treated_label, treated_model) = list(models.items())
    results = {
        base_label: _verify_model(base_model, pairs, images, protocol, cache),
        treated_label: _verify_model(treated_model, pairs, images, protocol, cache),
    }
    base, treated = results[base_label], results[treated_label]
    means = paired_bootstrap(np.array(base.fold_accuracy), np.array(treated.fold_accuracy), BOOTSTRAP_SAMPLES)
    difference = treated.accuracy_mean - base.accuracy_mean
    spread = float(means.std())
    low, high = (float(q) for q in np.quantile(means, [0.025, 0.975]))
    return {
        "models": {label: result.to_dict() for label, result in results.items()},
        "roc": {label: _thin(result) for label, result in results.items()},
        "difference": {"accuracy": difference, "std": spread, "ci95": [low, high]},
        "sentence": verdict(difference, spread, low, high, base_label, treated_label),
        "method": (
            f"Paired bootstrap over the {len(base.fold_accuracy)} folds of "
            f"{base.n_genuine + base.n_impostor} held-out pairs ({BOOTSTRAP_SAMPLES} resamples): both models "
            "are scored on the same pairs, so the spread is that of the difference itself. "
            "Training-seed variation is not included."
        ),
    }
