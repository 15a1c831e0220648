"""The report's pictures, drawn with matplotlib's object API (no pyplot state) and returned as PNG bytes."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image, ImageDraw

from curate.export.funnel import StageStep

logger = logging.getLogger(__name__)

COLOURS = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c")


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return buffer.getvalue()


def _figure(width: float = 6.0, height: float = 3.2) -> tuple[Figure, object]:
    figure = Figure(figsize=(width, height))
    FigureCanvasAgg(figure)
    return figure, figure.add_subplot()


def funnel_chart(steps: list[StageStep]) -> bytes:
    """Stacked bars per stage: rows kept, and rows dropped by status."""
    figure, axes = _figure(7.0, 0.5 + 0.45 * len(steps))
    names = [s.stage for s in steps][::-1]
    statuses = sorted({status for s in steps for status in s.dropped})
    left = np.zeros(len(steps))
    kept = np.array([s.kept for s in steps][::-1], dtype=float)
    axes.barh(names, kept, color="#55a868", label="kept")
    left += kept
    for i, status in enumerate(statuses):
        values = np.array([s.dropped.get(status, 0) for s in steps][::-1], dtype=float)
        axes.barh(names, values, left=left, color=COLOURS[(i + 3) % len(COLOURS)], label=status)
        left += values
    axes.set_xlabel("rows entering the stage")
    axes.legend(loc="lower right", fontsize=7, ncol=2)
    return _png(figure)


def score_histograms(frame: pd.DataFrame, columns: dict[str, str]) -> bytes | None:
    """One histogram per score column present, kept rows against rows the stage removed."""
    present = [(c, title) for c, title in columns.items() if c in frame and frame[c].notna().any()]
    if not present:
        return None
    figure = Figure(figsize=(3.4 * len(present), 2.8))
    FigureCanvasAgg(figure)
    for i, (column, title) in enumerate(present):
        axes = figure.add_subplot(1, len(present), i + 1)
        values = frame[[column, "status"]].dropna(subset=[column])
        kept = values[values["status"] == "ok"][column]
        removed = values[values["status"] != "ok"][column]
        bins = np.histogram_bin_edges(values[column].astype(float), bins=30)
        axes.hist(kept, bins=bins, alpha=0.7, color="#55a868", label=f"kept ({len(kept)})")
        axes.hist(removed, bins=bins, alpha=0.7, color="#c44e52", label=f"removed ({len(removed)})")
        axes.set_title(title, fontsize=9)
        axes.legend(fontsize=7)
    return _png(figure)


def training_curves(runs: dict[str, Path]) -> bytes | None:
    """Loss and training accuracy per epoch of each run's ``metrics.jsonl``."""
    series = {}
    for label, folder in runs.items():
        path = Path(folder) / "metrics.jsonl"
        if path.is_file():
            records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
            series[label] = [r for r in records if r.get("phase", "classify") == "classify"]
    if not series:
        return None
    figure = Figure(figsize=(8.0, 3.0))
    FigureCanvasAgg(figure)
    loss_axes, acc_axes = figure.add_subplot(1, 2, 1), figure.add_subplot(1, 2, 2)
    for i, (label, records) in enumerate(series.items()):
        epochs = [r["epoch"] for r in records]
        loss_axes.plot(epochs, [r.get("loss") for r in records], color=COLOURS[i], label=label)
        if any("train_acc" in r for r in records):
            acc_axes.plot(epochs, [r.get("train_acc") for r in records], color=COLOURS[i], label=label)
    loss_axes.set(xlabel="epoch", ylabel="training loss")
    acc_axes.set(xlabel="epoch", ylabel="training accuracy", ylim=(0, 1))
    loss_axes.legend(fontsize=8)
    return _png(figure)


def roc_chart(curves: dict[str, tuple[np.ndarray, np.ndarray]]) -> bytes:
    """TAR against FAR (log scale) for several models on the same pairs."""
    figure, axes = _figure(5.0, 4.0)
    for i, (label, (fpr, tpr)) in enumerate(curves.items()):
        keep = fpr > 0
        axes.plot(fpr[keep], tpr[keep], color=COLOURS[i], label=label)
    axes.set(xscale="log", xlim=(1e-3, 1), ylim=(0, 1), xlabel="false accept rate", ylabel="true accept rate")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(loc="lower right")
    return _png(figure)


def contact_sheet(paths: list[str], captions: list[str], size: int = 72, columns: int = 8) -> bytes:
    """Thumbnails in a grid with a one-line caption each (unreadable files show as grey)."""
    rows = max(1, -(-len(paths) // columns))
    sheet = Image.new("RGB", (columns * size, rows * (size + 12)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (path, caption) in enumerate(zip(paths, captions, strict=True)):
        x, y = (i % columns) * size, (i // columns) * (size + 12)
        try:
            with Image.open(path) as image:
                thumb = image.convert("RGB")
                thumb.thumbnail((size - 4, size - 4))
        except (OSError, ValueError):
            thumb = Image.new("RGB", (size - 4, size - 4), "#bbbbbb")
        sheet.paste(thumb, (x + 2, y + 2))
        draw.text((x + 2, y + size), caption[:12], fill="black")
    buffer = io.BytesIO()
    sheet.save(buffer, format="PNG")
    return buffer.getvalue()


def bar_chart(values: dict[str, float], xlabel: str) -> bytes:
    """Horizontal bars, one per label (per-identity purity, for example)."""
    figure, axes = _figure(6.0, 0.6 + 0.18 * len(values))
    labels = list(values)
    axes.barh(labels, [values[k] for k in labels], color="#4c72b0")
    axes.set_xlabel(xlabel)
    axes.set_xlim(0, 1)
    axes.tick_params(axis="y", labelsize=6)
    return _png(figure)
