"""An embedding model exported by ``curate train``: a ``torch.export`` program plus its preprocessing.

Folder layout::

    embedder.pt2    torch.export.save of the network in eval mode, batch size dynamic (1 and up);
                    float32 N x 3 x H x W normalised in, N x D out
    embedder.json   {"format": "curate-embedder", "version": 2, "input_size": [H, W],
                     "mean": [r, g, b], "std": [r, g, b], "embedding_dim": D}

:func:`load_module` gives the network back as a module for inference (CPU or GPU) and for gradients
(the report's saliency maps differentiate the score with respect to the input). Version 1 folders
(TorchScript ``embedder.pt``) are refused with the fix: export the checkpoint again.

Preprocessing: resize the RGB uint8 image to ``input_size`` (bilinear), divide by 255, subtract ``mean``
and divide by ``std`` per channel. Outputs are L2-normalised again here, whatever the module does.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from curate.embedders import META_FILE, MODEL_FILE, l2_normalise
from curate.errors import CurateError

logger = logging.getLogger(__name__)

FORMAT = "curate-embedder"
VERSION = 2


def read_metadata(folder: Path) -> dict:
    """Read and check ``embedder.json``; CurateError for another format, version or a missing key."""
    path = folder / META_FILE
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise CurateError(f"{path}: cannot read exported model metadata ({error})") from error
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise CurateError(
            f"{path}: format {meta.get('format')!r} version {meta.get('version')!r} is not "
            f"{FORMAT!r} version {VERSION}; export the model again with this curate release "
            "(curate evaluate --model <run>/checkpoints/last.pt exports a checkpoint)"
        )
    missing = [key for key in ("input_size", "mean", "std", "embedding_dim") if key not in meta]
    if missing:
        raise CurateError(f"{path}: missing keys {missing}")
    if len(meta["input_size"]) != 2 or len(meta["mean"]) != 3 or len(meta["std"]) != 3:
        raise CurateError(f"{path}: input_size needs [H, W], mean and std three values each")
    return meta


def load_module(folder: Path, device: str | Any = "cpu") -> Any:
    """The exported network of ``folder`` as a ``torch.nn.Module`` on ``device``, already in eval mode.

    CurateError when the file is missing or not a ``torch.export`` program.
    """
    import torch
    from torch.export.passes import move_to_device_pass

    path = Path(folder) / MODEL_FILE
    try:
        program = torch.export.load(str(path))
    except (OSError, RuntimeError, ValueError, KeyError) as error:
        raise CurateError(f"{path}: not a loadable torch.export program ({error})") from error
    if torch.device(device).type != "cpu":
        program = move_to_device_pass(program, device)
    return program.module()  # exported in eval mode; the module does not support .train()/.eval()


class ExportedEmbedder:
    """Runs an exported embedder on CPU (or the first GPU when torch sees one)."""

    def __init__(self, folder: Path) -> None:
        import torch

        folder = Path(folder)
        meta = read_metadata(folder)
        self.name = f"model:{folder.resolve().name}"
        self.dim = int(meta["embedding_dim"])
        self.height, self.width = (int(v) for v in meta["input_size"])
        self.input_size = max(self.height, self.width)
        self._mean = np.asarray(meta["mean"], dtype=np.float32).reshape(1, 3, 1, 1)
        self._std = np.asarray(meta["std"], dtype=np.float32).reshape(1, 3, 1, 1)
        self._device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        logger.info("loading exported embedder %s on %s", folder, self._device)
        self._module = load_module(folder, self._device)

    def _batch(self, images: list[np.ndarray]) -> np.ndarray:
        """Resize and normalise to float32 N x 3 x H x W."""
        arrays = []
        for image in images:
            if image.ndim == 2:
                image = np.repeat(image[:, :, None], 3, axis=2)
            pil = Image.fromarray(np.ascontiguousarray(image[:, :, :3], dtype=np.uint8))
            if pil.size != (self.width, self.height):
                pil = pil.resize((self.width, self.height), Image.Resampling.BILINEAR)
            arrays.append(np.asarray(pil, dtype=np.float32))
        batch = np.stack(arrays).transpose(0, 3, 1, 2) / 255.0
        return ((batch - self._mean) / self._std).astype(np.float32)

    def embed(self, images: list[np.ndarray]) -> np.ndarray:
        """RGB uint8 images -> (n, dim) float32, L2-normalised."""
        import torch

        if not images:
            return np.zeros((0, self.dim), dtype=np.float32)
        with torch.inference_mode():
            output = self._module(torch.from_numpy(self._batch(images)).to(self._device))
        vectors = output.float().cpu().numpy()
        if vectors.shape != (len(images), self.dim):
            raise CurateError(
                f"exported embedder {self.name} returned shape {vectors.shape}, "
                f"expected ({len(images)}, {self.dim}) from embedder.json"
            )
        return l2_normalise(vectors)
