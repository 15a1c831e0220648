"""The demo's verdict: a paired bootstrap over seeds and folds and a plain sentence that never overstates."""

from __future__ import annotations

import numpy as np
import pytest

from curate.evaluate.compare import paired_bootstrap, verdict


def test_paired_bootstrap_measures_the_difference_not_the_fold_spread() -> None:
    base = np.array([0.70, 0.95, 0.80, 0.60, 0.90, 0.85, 0.75, 0.65, 0.88, 0.92])  # folds differ a lot
    shifted = base + 0.03  # ... but the second model is better by exactly 3 points on every fold
    means = paired_bootstrap(base, shifted, 2000)
    assert means.mean() == pytest.approx(0.03) and means.std() == pytest.approx(0.0, abs=1e-12)
    noisy = base + np.array([0.05, -0.04, 0.03, -0.05, 0.04, -0.03, 0.05, -0.04, 0.03, -0.04])
    spread = paired_bootstrap(base, noisy, 2000).std()
    assert 0.005 < spread < 0.03  # about sd / sqrt(folds)


def test_bootstrap_over_seeds_counts_the_variation_between_training_runs() -> None:
    folds = np.array([0.70, 0.95, 0.80, 0.60, 0.90, 0.85, 0.75, 0.65, 0.88, 0.92])
    base = np.stack([folds, folds, folds])  # three seeds of the baseline, alike
    steady = base + 0.02  # every seed of the other set better by 2 points on every fold
    means = paired_bootstrap(base, steady, 2000)
    assert means.mean() == pytest.approx(0.02) and means.std() == pytest.approx(0.0, abs=1e-12)
    # the same mean gain from seeds that disagree: +8, -2 and 0 points
    unsteady = base + np.array([[0.08], [-0.02], [0.0]])
    spread = paired_bootstrap(base, unsteady, 2000)
    assert spread.mean() == pytest.approx(0.02, abs=0.005)
    assert spread.std() > 0.02  # a one-seed bootstrap would report no spread at all
    assert paired_bootstrap(base[0], unsteady[0], 2000).std() == pytest.approx(0.0, abs=1e-12)


def test_verdict_says_no_measurable_difference_when_the_interval_holds_zero() -> None:
    assert verdict(0.02, 0.014, -0.005, 0.048, "uncurated", "curated").startswith("No measurable difference")
    helped = verdict(0.045, 0.01, 0.025, 0.063, "uncurated", "curated")
    assert helped == "curated helped: +4.5 ± 1.0 accuracy points (95% interval +2.5 to +6.3) over uncurated."
    assert verdict(-0.08, 0.017, -0.117, -0.048, "uncurated", "curated").startswith("curated hurt: -8.0")


def test_skin_tone_angle_orders_light_and_dark_skin(tmp_path) -> None:
    from PIL import Image

    from curate.evaluate.skin import ita_degrees, skin_groups

    tones = {"light": (236, 200, 178), "medium": (198, 134, 96), "dark": (96, 62, 44)}
    paths = {}
    for name, rgb in tones.items():
        paths[name] = tmp_path / f"{name}.png"
        Image.new("RGB", (40, 40), rgb).save(paths[name])
    angles = {name: ita_degrees(path) for name, path in paths.items()}
    assert angles["light"] > 41 > angles["medium"] > angles["dark"]  # ITA > 41 degrees is "light" skin
    groups = skin_groups([paths["light"], paths["dark"], paths["medium"]], ["a", "b", "c"])
    assert groups == ["lighter", "darker", "darker"]  # split at the median identity (c) — ties go darker
