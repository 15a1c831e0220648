"""What the trained model looks at: occlusion and gradient saliency maps on verification pairs.

For a pair (a, b) the model's verdict is the cosine similarity ``s = f(a) . f(b)`` of its L2-normalised
embeddings. Two maps over image a explain it:

* **gradient**: ``|ds/da|``, the largest over the colour channels: the pixels whose change moves the score
  most (Simonyan et al. 2014);
* **occlusion**: the drop of ``s`` when a grey square hides each part of a (Zeiler and Fergus 2014): the
  regions the verdict really depends on.

A model that learnt the background, a caption or a watermark instead of the face shows it here, as the
melanoma classifier that learnt the surgeons' ink marks would have.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from curate.embedders.exported import load_module, read_metadata

logger = logging.getLogger(__name__)


@dataclass
class PairMaps:
    """One explained pair: both images, the score, and the two maps over the first image."""

    left: np.ndarray  # H x W x 3 uint8, as the model saw it
    right: np.ndarray
    score: float
    same: bool
    gradient: np.ndarray  # H x W, scaled to [0, 1]
    occlusion: np.ndarray  # H x W, score drop scaled to [0, 1] (negative drops clipped)


class Explainer:
    """Loads an exported embedder (``embedder.pt2`` + ``embedder.json``) and explains pairs with it."""

    def __init__(self, model_dir: Path) -> None:
        meta = read_metadata(Path(model_dir))
        self.size = tuple(meta["input_size"])
        self.mean = torch.tensor(meta["mean"]).view(1, 3, 1, 1)
        self.std = torch.tensor(meta["std"]).view(1, 3, 1, 1)
        self.model = load_module(Path(model_dir), "cpu")  # eval mode; gradients flow to the input

    def load(self, path: Path) -> np.ndarray:
        """The image as the model sees it: RGB, bilinear resize to its input size."""
        with Image.open(path) as image:
            rgb = image.convert("RGB").resize((self.size[1], self.size[0]), Image.Resampling.BILINEAR)
            return np.asarray(rgb, dtype=np.uint8)

    def _tensor(self, images: np.ndarray) -> torch.Tensor:
        batch = torch.from_numpy(np.array(images, copy=True)).permute(0, 3, 1, 2).float() / 255.0
        return (batch - self.mean) / self.std

    def explain(self, left: Path, right: Path, same: bool, patch_fraction: float = 0.125) -> PairMaps:
        """Both maps for one pair."""
        a, b = self.load(left), self.load(right)
        with torch.no_grad():
            target = self.model(self._tensor(b[None]))[0]
        x = self._tensor(a[None]).requires_grad_(True)
        score = torch.dot(self.model(x)[0], target)
        score.backward()
        assert x.grad is not None
        gradient = x.grad[0].abs().amax(dim=0).numpy()
        occlusion = self._occlusion(a, target, float(score.detach()), patch_fraction)
        return PairMaps(
            a, b, float(score.detach()), same, _unit(gradient), _unit(np.clip(occlusion, 0, None))
        )

    @torch.no_grad()
    def _occlusion(
        self, image: np.ndarray, target: torch.Tensor, score: float, fraction: float
    ) -> np.ndarray:
        height, width = image.shape[:2]
        patch = max(4, round(min(height, width) * fraction))
        stride = max(2, patch // 2)
        positions = [
            (y, x) for y in range(0, height - patch + 1, stride) for x in range(0, width - patch + 1, stride)
        ]
        batch = np.repeat(image[None], len(positions), axis=0)
        for i, (y, x) in enumerate(positions):
            batch[i, y : y + patch, x : x + patch] = 128
        drops = np.zeros((height, width), dtype=np.float64)
        counts = np.zeros((height, width), dtype=np.float64)
        for start in range(0, len(positions), 64):
            scores = self.model(self._tensor(batch[start : start + 64])) @ target
            for (y, x), occluded in zip(positions[start : start + 64], scores.tolist(), strict=True):
                drops[y : y + patch, x : x + patch] += score - occluded
                counts[y : y + patch, x : x + patch] += 1
        return drops / np.maximum(counts, 1)


def _unit(values: np.ndarray) -> np.ndarray:
    top = float(values.max()) if values.size else 0.0
    return values / top if top > 0 else np.zeros_like(values)


def saliency_panel(maps: list[PairMaps]) -> bytes:
    """Rows of: left image, gradient map over it, occlusion map over it, right image; as PNG."""
    figure = Figure(figsize=(8.0, 2.1 * max(1, len(maps))))
    FigureCanvasAgg(figure)
    titles = ("image a", "gradient |ds/da|", "occlusion drop of s", "image b")
    for row, pair in enumerate(maps):
        panels = (pair.left, pair.gradient, pair.occlusion, pair.right)
        for column, panel in enumerate(panels):
            axes = figure.add_subplot(len(maps), 4, row * 4 + column + 1)
            if panel.ndim == 2:
                axes.imshow(pair.left, alpha=1.0)
                axes.imshow(panel, cmap="inferno", alpha=0.6, vmin=0, vmax=1)
            else:
                axes.imshow(panel)
            axes.set_xticks([])
            axes.set_yticks([])
            if row == 0:
                axes.set_title(titles[column], fontsize=8)
            if column == 0:
                kind = "genuine" if pair.same else "impostor"
                axes.set_ylabel(f"{kind}\ns = {pair.score:.2f}", fontsize=8)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return buffer.getvalue()


def explain_pairs(model_dir: Path, pairs: list[tuple[Path, Path, bool]]) -> bytes:
    """The saliency panel for ``pairs`` under the model in ``model_dir``."""
    explainer = Explainer(model_dir)
    return saliency_panel([explainer.explain(a, b, same) for a, b, same in pairs])


def sample_pairs(pairs_file: Path, images: Path, per_kind: int = 2) -> list[tuple[Path, Path, bool]]:
    """The first ``per_kind`` genuine and impostor pairs of an LFW-format ``pairs.txt``."""
    from curate.evaluate.pairs import read_lfw_pairs

    pair_set = read_lfw_pairs(pairs_file, images)
    chosen: list[tuple[Path, Path, bool]] = []
    for same in (True, False):
        picks = [i for i in range(len(pair_set.same)) if bool(pair_set.same[i]) == same][:per_kind]
        chosen += [
            (pair_set.images[pair_set.left[i]], pair_set.images[pair_set.right[i]], same) for i in picks
        ]
    return chosen
