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
from curate.evaluate.pairs import PairSet
from curate.evaluate.run import embed_images
from curate.evaluate.skin import ATTRIBUTE, skin_groups
from curate.evaluate.verification import VerificationResult, by_group, pair_scores, verify

logger = logging.getLogger(__name__)

BOOTSTRAP_SAMPLES = 5000
ROC_POINTS = 200


def _verify_model(
    model: str, pair_set: PairSet, cache: Path, groups: list[str]
) -> tuple[VerificationResult, dict]:
    """The model's verification result, and its figures per pair group."""
    embedded = embed_images(pair_set.images, model, cache, align=False)
    scores = pair_scores(embedded.vectors, pair_set.left, pair_set.right)
    result = verify(scores, pair_set.same, pair_set.fold)
    return result, {"by": ATTRIBUTE, **by_group(result, pair_set.same, scores, groups)}


def pair_groups(pair_set: PairSet) -> list[str]:
    """Per pair: the skin-tone group of both images' identities, or ``mixed`` when they differ."""
    groups = skin_groups(pair_set.images, pair_set.identities)
    return [
        groups[a] if groups[a] == groups[b] else "mixed"
        for a, b in zip(pair_set.left, pair_set.right, strict=True)
    ]


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
    """Verify both ``models`` (``{label: model}``, baseline first) on the pairs and compare them; also break
    each model's figures down by the skin-tone group of the pair (:mod:`curate.evaluate.skin`)."""
    pair_set = read_pairs(protocol, pairs, images)
    groups = pair_groups(pair_set)
    verified = {label: _verify_model(model, pair_set, cache, groups) for label, model in models.items()}
    results = {label: result for label, (result, _) in verified.items()}
    (base_label, base), (treated_label, treated) = list(results.items())
    means = paired_bootstrap(np.array(base.fold_accuracy), np.array(treated.fold_accuracy), BOOTSTRAP_SAMPLES)
    difference = treated.accuracy_mean - base.accuracy_mean
    spread = float(means.std())
    low, high = (float(q) for q in np.quantile(means, [0.025, 0.975]))
    return {
        "models": {label: result.to_dict() for label, result in results.items()},
        "roc": {label: _thin(result) for label, result in results.items()},
        "groups": {label: by for label, (_, by) in verified.items()},
        "difference": {"accuracy": difference, "std": spread, "ci95": [low, high]},
        "sentence": verdict(difference, spread, low, high, base_label, treated_label),
        "method": (
            f"Paired bootstrap over the {len(base.fold_accuracy)} folds of "
            f"{base.n_genuine + base.n_impostor} held-out pairs ({BOOTSTRAP_SAMPLES} resamples): both models "
            "are scored on the same pairs, so the spread is that of the difference itself. "
            "Training-seed variation is not included."
        ),
    }
