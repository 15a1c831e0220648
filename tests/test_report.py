"""``curate report``: one self-contained HTML page whose figures are the manifests', that a browser opens."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from curate.cli import app
from curate.export.funnel import funnel
from curate.report.saliency import Explainer

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def trained(curated_workdir: Path, tmp_path_factory) -> Path:
    """A tiny model trained on the curated ORL faces (for the training curves and the saliency maps)."""
    out = tmp_path_factory.mktemp("model") / "run"
    args = ["-w", str(curated_workdir), "train", "--manifest-stage", "dedup", "--out", str(out)]
    settings = [
        "--epochs",
        "2",
        "--input-size",
        "32",
        "--batch-size",
        "8",
        "--head",
        "softmax",
        "--threads",
        "1",
    ]
    result = CliRunner().invoke(app, [*args, *settings, "--no-progress"])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def page(curated_workdir: Path, trained: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report") / "report.html"
    result = CliRunner().invoke(
        app, ["-w", str(curated_workdir), "report", "--out", str(out), "--model", str(trained)]
    )
    assert result.exit_code == 0, result.output
    assert result.output.strip() == str(out)
    return out


def test_report_is_one_file_with_the_manifests_figures(page: Path, curated_workdir: Path) -> None:
    text = page.read_text()
    sources = re.findall(r'src="([^"]*)"', text)
    assert sources and all(
        s.startswith("data:image/png;base64,") for s in sources
    )  # nothing outside the file
    assert "http://" not in text and "https://" not in text
    for heading in (
        "Stage funnel",
        "Score histograms",
        "Removed images",
        "Borderline duplicates",
        "Training curves",
    ):
        assert heading in text
    for step in funnel(curated_workdir, "dedup"):
        row = f"<td>{step.stage}</td><td>{step.rows_in}</td><td>{step.kept}</td>"
        assert row in text, row
    assert "excluded 10" in text  # the benchmark identity's images, dropped by select


def test_saliency_maps_follow_the_model(trained: Path, curated_workdir: Path, tmp_path: Path) -> None:
    images = sorted((curated_workdir.parent / "images" / "s3").glob("*.pgm"))
    explainer = Explainer(trained / "model")
    maps = explainer.explain(images[0], images[1], same=True)
    assert maps.gradient.shape == maps.occlusion.shape == (32, 32)
    assert maps.gradient.max() == pytest.approx(1.0) and maps.occlusion.max() == pytest.approx(1.0)
    # an image whose left half is flat grey: occluding that half cannot move the score, so its map is ~0 there
    half = np.asarray(Image.open(images[0]).convert("RGB").resize((32, 32))).copy()
    half[:, :16] = 128
    Image.fromarray(half).save(tmp_path / "half.png")
    flat = explainer.explain(tmp_path / "half.png", images[1], same=True)
    assert flat.occlusion[:, :8].mean() < flat.occlusion[:, 20:].mean()


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)")
def test_report_opens_in_headless_chromium(page: Path, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    common = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    done = subprocess.run(
        [*common, "--window-size=1200,2400", f"--screenshot={shot}", page.as_uri()],
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    pixels = np.asarray(Image.open(shot).convert("L"))
    assert pixels.shape == (2400, 1200) and pixels.std() > 20  # a rendered page, not a blank one
    dom = subprocess.run([*common, "--dump-dom", page.as_uri()], capture_output=True, timeout=120, text=True)
    assert "Stage funnel" in dom.stdout and dom.stdout.count("<img") >= 4


def test_bias_section_shows_accuracy_and_tar_per_group_with_sizes(tmp_path: Path) -> None:
    from curate.evaluate.verification import by_group, verify
    from curate.report.sections import bias_section

    rng = np.random.default_rng(0)
    same = np.tile([True, False], 200)
    clean = np.where(same, 0.9, 0.1) + rng.normal(0, 0.05, 400)  # group x: separable
    noisy = rng.uniform(0, 1, 400)  # group y: chance
    groups = ["x"] * 400 + ["y"] * 400
    scores, labels = np.concatenate([clean, noisy]), np.concatenate([same, same])
    result = verify(scores, labels, np.repeat(np.arange(10), 80))
    figures = by_group(result, labels, scores, groups)
    assert figures["x"]["tar_at_far"]["1e-1"] == pytest.approx(1.0)
    assert figures["y"]["tar_at_far"]["1e-1"] < 0.5
    evaluation = tmp_path / "eval"
    evaluation.mkdir()
    (evaluation / "report.json").write_text(json.dumps({"groups": {"by": "gender", **figures}}))
    html = bias_section([evaluation], None)
    assert "gender" in html and "<td>x</td><td>400</td><td>1.0000</td><td>1.0000</td>" in html
