"""What a training run leaves behind: full-state checkpoints, and the exported embedder.

Checkpoints (:func:`save_checkpoint`, :func:`load_checkpoint`) are ``torch.save`` dicts written atomically:
``model`` (the exportable network), ``head``, ``center``, ``optimizer``, ``scheduler``, ``scaler``, ``rng``
(:func:`rng_states`), ``phase``, ``epoch``, ``step``, ``projection_dim``, ``config`` and ``classes``.

The export is the format ``curate.embedders.get_embedder(dir)`` loads.

A model dir holds ``embedder.pt2`` (``torch.export`` of the network in eval mode with a dynamic batch size:
float32 ``N x 3 x H x W`` normalised images in, ``N x D`` L2-normalised embeddings out) and
``embedder.json``::

    {"format": "curate-embedder", "version": 2, "input_size": [H, W], "mean": [r, g, b],
     "std": [r, g, b], "embedding_dim": D}

Preprocessing the loader applies: resize the RGB uint8 image to ``input_size``, divide by 255, then
``(x - mean) / std`` per channel.
"""

from __future__ import annotations

import copy
import json
import logging
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from curate.embedders.exported import FORMAT, META_FILE, MODEL_FILE, VERSION
from curate.errors import CurateError
from curate.storage import atomic_open, atomic_path, atomic_write_text
from curate.train.backbones import build_net
from curate.train.data import MEAN, STD

logger = logging.getLogger(__name__)

MAX_BATCH = 65536  # the largest batch the exported program accepts


def export_embedder(
    net: nn.Module,
    out_dir: Path,
    input_size: int,
    mean: tuple[float, float, float] = MEAN,
    std: tuple[float, float, float] = STD,
) -> Path:
    """Export ``net`` (an :class:`~curate.train.backbones.EmbeddingNet`) with ``torch.export`` on the CPU,
    in eval mode, for any batch size; write the model dir."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = copy.deepcopy(net).float().cpu().eval().to(memory_format=torch.contiguous_format)
    example = torch.zeros(2, 3, input_size, input_size)
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    program = torch.export.export(model, (example,), dynamic_shapes=({0: batch},))
    with torch.no_grad():
        dim = int(program.module()(example).shape[1])
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "input_size": [input_size, input_size],
        "mean": list(mean),
        "std": list(std),
        "embedding_dim": dim,
    }
    with atomic_open(out_dir / MODEL_FILE) as handle:  # a file object: torch wants names ending in .pt2
        torch.export.save(program, handle)
    atomic_write_text(out_dir / META_FILE, json.dumps(meta, indent=2) + "\n")
    (out_dir / "embedder.pt").unlink(missing_ok=True)  # a version 1 (TorchScript) file left by an old export
    logger.info("exported a %d-d embedder for %dx%d inputs to %s", dim, input_size, input_size, out_dir)
    return out_dir


def rng_states() -> dict[str, Any]:
    """Every RNG state a resumed run must restore."""
    states: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict[str, Any]) -> None:
    """Inverse of :func:`rng_states`."""
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    """Write a checkpoint atomically (temporary name, then rename), so a kill never leaves half a file."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint on the CPU; CurateError when it is not one of ours."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except (OSError, RuntimeError, EOFError) as error:
        raise CurateError(f"cannot read checkpoint {path}: {error}") from error
    if not isinstance(state, dict) or "model" not in state or "config" not in state:
        raise CurateError(f"{path} is not a curate training checkpoint (no model/config)")
    return state


def net_from_checkpoint(state: dict[str, Any]) -> nn.Module:
    """Rebuild the exportable network stored in a training checkpoint (see :mod:`curate.train.loop`)."""
    config = state["config"]
    net = build_net(
        config["backbone"], config["embedding_dim"], config["input_size"], state.get("projection_dim")
    )
    net.load_state_dict(state["model"])
    return net


def export_checkpoint(checkpoint: Path, out_dir: Path) -> Path:
    """Export the network of a training checkpoint file."""
    state = load_checkpoint(checkpoint)
    return export_embedder(net_from_checkpoint(state), out_dir, int(state["config"]["input_size"]))
