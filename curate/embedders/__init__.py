"""The embedder registry: every stage that needs face embeddings gets them through :func:`get_embedder`.

An embedder turns RGB uint8 images (any size; it resizes them itself) into L2-normalised float32 rows.
Specs: ``"dlib"`` (dlib's pretrained 128-d ResNet, on 150x150 aligned chips), ``"handcrafted"`` (no
model: gradients + DCT + colour) or the path of a model folder exported by ``curate train``
(``torch.export`` program ``embedder.pt2`` + ``embedder.json``). Stages load one per worker with
``ctx.resource(resource_key(spec), lambda: get_embedder(spec))``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from curate.constants import BUILTIN_EMBEDDERS
from curate.errors import ConfigError

logger = logging.getLogger(__name__)

BUILTIN = BUILTIN_EMBEDDERS
MODEL_FILE = "embedder.pt2"  # an exported model folder: the torch.export program
META_FILE = "embedder.json"  # and its preprocessing and format record


@runtime_checkable
class Embedder(Protocol):
    """Images in, L2-normalised embeddings out."""

    name: str  # "dlib", "handcrafted" or "model:<folder name>"; also the vector name stages write
    dim: int
    input_size: int  # side of the square RGB crop it works on

    def embed(self, images: list[np.ndarray]) -> np.ndarray:
        """RGB uint8 HxWx3 arrays (any size) -> (n, dim) float32 with L2-normalised rows."""
        ...


def model_files(specs: Iterable[str]) -> list[Path]:
    """The files of the exported model folders among ``specs`` (built-in embedders have none).

    Stages that run such a model list these in ``read_files``: their checksums join the lineage, so a model
    trained again into the same folder makes the vectors it gave stale instead of leaving them for done.
    """
    files: list[Path] = []
    for spec in specs:
        if spec and spec not in BUILTIN:
            folder = Path(spec).expanduser()
            files += [folder / name for name in (META_FILE, MODEL_FILE) if (folder / name).is_file()]
    return files


def resource_key(spec: str) -> str:
    """The key a worker caches the embedder ``spec`` under: an exported model's key names its program
    file's size and time, so a model trained again into the same folder is loaded again, not reused."""
    program = Path(spec).expanduser() / MODEL_FILE
    if spec in BUILTIN or not program.is_file():
        return f"curate.embedder:{spec}"
    stat = program.stat()
    return f"curate.embedder:{spec}@{stat.st_size}:{stat.st_mtime_ns}"


def get_embedder(spec: str) -> Embedder:
    """Build the embedder named by ``spec``; ConfigError names the choices for an unknown one."""
    if spec == "dlib":
        from curate.embedders.dlib_face import DlibEmbedder

        return DlibEmbedder()
    if spec == "handcrafted":
        from curate.embedders.handcrafted import HandcraftedEmbedder

        return HandcraftedEmbedder()
    folder = Path(spec).expanduser()
    if folder.is_dir() and (folder / META_FILE).is_file():
        from curate.embedders.exported import ExportedEmbedder

        return ExportedEmbedder(folder)
    raise ConfigError(
        "embedder",
        spec,
        f"choose one of {list(BUILTIN)} or give the folder of an exported model "
        "(holding embedder.pt2 and embedder.json, as written by `curate train`)",
    )


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length as float32 (an all-zero row stays zero)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)
