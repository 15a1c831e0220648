"""Compare two training sets by the models trained on them, with the uncertainty of the difference.

Each set is represented by models trained with several seeds (the same seeds for both sets). Every model is
scored on identical pairs and folds (the protocol's per-fold thresholds), so the comparison is paired; the
per-seed, per-fold accuracy differences are resampled with replacement, seeds and folds both (a paired
bootstrap), and the spread of their mean is the uncertainty. It therefore includes the variation between
training runs as well as that between evaluation folds: with one seed, a small model's verdict can turn
on the order its files were read in. The difference counts as measurable only when the 95% bootstrap
interval excludes zero.
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
    """Bootstrap means of ``second - first`` over resampled folds (and seeds, for 2-D input).

    ``first`` and ``second`` hold per-fold accuracies, one row per training seed (a 1-D array is one seed).
    Each resample draws the seeds and the folds with replacement, the same indices for both models.
    """
    differences = np.atleast_2d(np.asarray(second, dtype=float) - np.asarray(first, dtype=float))
    seeds, folds = differences.shape
    rng = np.random.default_rng(seed)
    seed_picks = rng.integers(0, seeds, size=(samples, seeds))
    fold_picks = rng.integers(0, folds, size=(samples, folds))
    return differences[seed_picks[:, :, None], fold_picks[:, None, :]].mean(axis=(1, 2))


def _summary(results: list[VerificationResult]) -> dict[str, Any]:
    """One set's figures, averaged over its seeds' models (``accuracy_std``: the mean spread over folds)."""
    reports = [result.to_dict() for result in results]
    tar_keys = set.intersection(*(set(report["tar_at_far"]) for report in reports))
    return {
        "accuracy_mean": float(np.mean([r["accuracy_mean"] for r in reports])),
        "accuracy_std": float(np.mean([r["accuracy_std"] for r in reports])),
        "roc_auc": float(np.mean([r["roc_auc"] for r in reports])),
        "tar_at_far": {key: float(np.mean([r["tar_at_far"][key] for r in reports])) for key in tar_keys},
        "accuracy_by_seed": [r["accuracy_mean"] for r in reports],
    }


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


def _method(folds: int, pairs: int, seeds: int) -> str:
    """How the verdict was reached, in one sentence for the reader of the report."""
    if seeds == 1:
        return (
            f"Paired bootstrap over the {folds} folds of {pairs} held-out pairs ({BOOTSTRAP_SAMPLES} "
            "resamples), one model per set: the spread is that of the difference over folds; the variation "
            "between training runs is not included."
        )
    return (
        f"Paired bootstrap over the {folds} folds of {pairs} held-out pairs and the {seeds} training seeds "
        f"of each set ({BOOTSTRAP_SAMPLES} resamples): all models are scored on the same pairs, and each "
        "resample redraws the seeds and the folds, so the spread is that of the difference itself, training "
        "runs included."
    )


def compare_models(
    models: dict[str, list[str]], pairs: Path, images: Path, cache: Path, protocol: str = "lfw"
) -> dict[str, Any]:
    """Verify both sets' models (``{label: [model per seed]}``, baseline first, seeds in the same order) on
    the pairs and compare them; figures are means over the seeds. The ROC curves and the breakdown by the
    skin-tone group of the pair (:mod:`curate.evaluate.skin`) are those of each set's first model."""
    pair_set = read_pairs(protocol, pairs, images)
    groups = pair_groups(pair_set)
    verified = {
        label: [_verify_model(model, pair_set, cache, groups) for model in seeds]
        for label, seeds in models.items()
    }
    results = {label: [result for result, _ in runs] for label, runs in verified.items()}
    (base_label, base), (treated_label, treated) = list(results.items())
    if len(base) != len(treated):
        raise ValueError(f"both sets need models of the same seeds: {len(base)} and {len(treated)} given")
    base_folds = np.array([result.fold_accuracy for result in base])
    treated_folds = np.array([result.fold_accuracy for result in treated])
    means = paired_bootstrap(base_folds, treated_folds, BOOTSTRAP_SAMPLES)
    difference = float(treated_folds.mean() - base_folds.mean())
    spread = float(means.std())
    low, high = (float(q) for q in np.quantile(means, [0.025, 0.975]))
    seeds, folds = base_folds.shape
    return {
        "models": {label: _summary(runs) for label, runs in results.items()},
        "roc": {label: _thin(runs[0]) for label, runs in results.items()},
        "groups": {label: runs[0][1] for label, runs in verified.items()},
        "difference": {"accuracy": difference, "std": spread, "ci95": [low, high]},
        "sentence": verdict(difference, spread, low, high, base_label, treated_label),
        "method": _method(folds, base[0].n_genuine + base[0].n_impostor, seeds),
    }
