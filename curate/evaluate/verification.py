"""Pair verification metrics: k-fold accuracy, ROC AUC, TAR at fixed FAR, per-group accuracy, ROC plot.

Accuracy follows the LFW protocol: for each fold, the similarity threshold that maximises accuracy on the
other folds is applied to it; the mean and (population) standard deviation over folds are reported. A pair
list with a single fold (LFW View 1) cannot be cross-validated: its accuracy is at the best threshold on
itself and ``cross_validated`` is false. Scores are cosine similarities; higher means "same identity".
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.metrics import roc_auc_score, roc_curve

from curate.storage import atomic_path

logger = logging.getLogger(__name__)

FAR_TARGETS = (1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6)


def best_threshold(scores: np.ndarray, same: np.ndarray) -> tuple[float, float]:
    """(threshold, accuracy) maximising accuracy of ``score > threshold`` => same; ties: lowest threshold."""
    order = np.argsort(scores, kind="stable")
    s, y = scores[order], same[order].astype(bool)
    n = len(s)
    # Cut before position i (0..n): pairs i.. are called "same".
    negatives_below = np.concatenate([[0], np.cumsum(~y)])
    positives_above = y.sum() - np.concatenate([[0], np.cumsum(y)])
    accuracy = (negatives_below + positives_above) / n
    allowed = np.ones(n + 1, dtype=bool)
    allowed[1:n] = s[1:] > s[:-1]  # never cut between equal scores
    cut = int(np.argmax(np.where(allowed, accuracy, -1.0)))
    if cut == 0:
        threshold = s[0] - 1e-6
    elif cut == n:
        threshold = s[-1] + 1e-6
    else:
        threshold = (s[cut - 1] + s[cut]) / 2.0
    return float(threshold), float(accuracy[cut])


def far_label(far: float) -> str:
    """``1e-3`` style key for a FAR."""
    return f"1e{round(math.log10(far))}"


def accuracy_text(report: dict[str, Any]) -> str:
    """A report's accuracy as shown: mean ± std over k folds, or, for a single fold, the accuracy at the
    threshold fitted on those same pairs, said to be not cross-validated (it flatters the model)."""
    mean_std = f"{report['accuracy_mean']:.4f} ± {report['accuracy_std']:.4f}"
    if "fold_accuracy" not in report:  # a summary over several runs (the demo's comparison)
        return mean_std
    if report.get("cross_validated", True) and len(report["fold_accuracy"]) > 1:
        return f"{mean_std} ({len(report['fold_accuracy'])}-fold)"
    return f"{report['accuracy_mean']:.4f} (1 fold: threshold fitted on the same pairs, not cross-validated)"


@dataclass
class VerificationResult:
    """Every figure of one verification run; ``to_dict`` is the JSON report."""

    accuracy_mean: float
    accuracy_std: float
    fold_accuracy: list[float]
    fold_threshold: list[float]
    cross_validated: bool
    roc_auc: float
    tar_at_far: dict[str, float]
    n_genuine: int
    n_impostor: int
    correct: np.ndarray = field(repr=False)  # per pair, under its fold's threshold
    fpr: np.ndarray = field(repr=False)
    tpr: np.ndarray = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready figures (no per-pair arrays)."""
        return {
            "accuracy_mean": self.accuracy_mean,
            "accuracy_std": self.accuracy_std,
            "fold_accuracy": self.fold_accuracy,
            "fold_threshold": self.fold_threshold,
            "cross_validated": self.cross_validated,
            "roc_auc": self.roc_auc,
            "tar_at_far": self.tar_at_far,
            "n_genuine": self.n_genuine,
            "n_impostor": self.n_impostor,
        }


def tar_at_far(
    same: np.ndarray, scores: np.ndarray, targets: tuple[float, ...] = FAR_TARGETS
) -> dict[str, float]:
    """True accept rate at each FAR the impostor count can resolve (FAR >= 1 / impostors)."""
    fpr, tpr, _ = roc_curve(same, scores)
    impostors = int((~same.astype(bool)).sum())
    out = {}
    for far in targets:
        if impostors and far >= 1.0 / impostors:
            out[far_label(far)] = float(tpr[fpr <= far].max())
    return out


def verify(scores: np.ndarray, same: np.ndarray, folds: np.ndarray) -> VerificationResult:
    """Run the protocol on per-pair ``scores``; NaN scores (an unreadable image) count as "not same"."""
    same = np.asarray(same, dtype=bool)
    scores = np.asarray(scores, dtype=np.float64)
    finite = np.isfinite(scores)
    floor = scores[finite].min() - 1.0 if finite.any() else -1.0
    scores = np.where(finite, scores, floor)
    if same.all() or not same.any():
        raise ValueError("verification needs both genuine and impostor pairs")
    fold_ids = np.unique(folds)
    correct = np.zeros(len(scores), dtype=bool)
    accuracies, thresholds = [], []
    for fold in fold_ids:
        test = folds == fold
        train = ~test if len(fold_ids) > 1 else test
        threshold, _ = best_threshold(scores[train], same[train])
        correct[test] = (scores[test] > threshold) == same[test]
        accuracies.append(float(correct[test].mean()))
        thresholds.append(threshold)
    fpr, tpr, _ = roc_curve(same, scores)
    return VerificationResult(
        accuracy_mean=float(np.mean(accuracies)),
        accuracy_std=float(np.std(accuracies)),
        fold_accuracy=accuracies,
        fold_threshold=thresholds,
        cross_validated=len(fold_ids) > 1,
        roc_auc=float(roc_auc_score(same, scores)),
        tar_at_far=tar_at_far(same, scores),
        n_genuine=int(same.sum()),
        n_impostor=int((~same).sum()),
        correct=correct,
        fpr=fpr,
        tpr=tpr,
    )


def pair_scores(vectors: np.ndarray, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Cosine similarity per pair of L2-normalised rows (NaN where either row is NaN)."""
    return np.einsum("ij,ij->i", vectors[left], vectors[right])


def by_group(result: VerificationResult, same: np.ndarray, scores: np.ndarray, groups: list[str]) -> dict:
    """Accuracy (at each pair's fold threshold), ROC AUC and TAR@FAR per pair group, with pair counts."""
    same = np.asarray(same, dtype=bool)
    out: dict[str, dict[str, Any]] = {}
    labels = np.asarray(groups)
    for group in sorted(set(groups)):
        members = labels == group
        both = same[members].any() and not same[members].all()
        finite = np.nan_to_num(scores[members], nan=-2.0)
        out[group] = {
            "pairs": int(members.sum()),
            "accuracy": float(result.correct[members].mean()),
            "roc_auc": float(roc_auc_score(same[members], finite)) if both else None,
            "tar_at_far": tar_at_far(same[members], finite) if both else {},
        }
    return out


def plot_roc(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: Path, title: str) -> Path:
    """Write ROC curves (TAR against log FAR) as a PNG, without touching pyplot's global state."""
    figure = Figure(figsize=(5.5, 4.5))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for name, (fpr, tpr) in curves.items():
        keep = fpr > 0
        axes.plot(fpr[keep], tpr[keep], label=name)
    axes.set_xscale("log")
    axes.set_xlim(1e-4, 1.0)
    axes.set_ylim(0.0, 1.0)
    axes.set_xlabel("false accept rate")
    axes.set_ylabel("true accept rate")
    axes.set_title(title)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(loc="lower right")
    path = Path(path)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format=path.suffix.lstrip(".") or "png", dpi=120, bbox_inches="tight")
    return path
