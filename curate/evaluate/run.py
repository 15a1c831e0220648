"""Embed a set of evaluation images with a model: decode, detect and align as the faces stage does, embed.

The aligner is built by :func:`curate.faces.make_aligner` from the faces stage's own config (the
one saved in ``<workdir>/faces/_config.json`` when given, else its defaults), so evaluation crops are made by
the same code and parameters as training crops. Evaluation never drops an image: where no face is found
the whole image (centred square) is embedded, and the count is reported.

Two caches under ``cache_dir`` make re-runs fast: aligned crops per (aligner settings, image) and
embeddings per (model, aligner settings, image). An image is keyed by its resolved path, size and mtime.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from curate import storage
from curate.config import build_config, config_to_dict
from curate.crops import crop_png
from curate.storage import ContentStore, atomic_open

logger = logging.getLogger(__name__)

BATCH = 64
FLUSH_EVERY = 1024
ProgressFn = Callable[[str, int, int], None]


class CropCache:
    """Aligned crops (PNG) and a JSON-lines index of every processed image's outcome, in ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.store = ContentStore(self.root)
        self.index = self.root / "index.jsonl"
        self.records: dict[str, dict[str, str]] = {}
        if self.index.is_file():
            for line in self.index.read_text().splitlines():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:  # a line cut short by a killed run: that image is redone
                    continue
                self.records[record["key"]] = record

    def __contains__(self, key: str) -> bool:
        return key in self.records

    def put(self, key: str, crop: np.ndarray | None, source: str, status: str, reason: str) -> None:
        """Store one outcome; ``as_is`` images are not copied (they are re-read from their path)."""
        if crop is not None and source != "as_is":
            self.store.put(crop_png(crop), ".png", key=key)
        record = {"key": key, "source": source, "status": status, "reason": reason}
        with open(self.index, "a") as handle:
            handle.write(json.dumps(record) + "\n")
        self.records[key] = record

    def record(self, key: str) -> dict[str, str]:
        """The stored outcome of an image (``unknown`` source if only its embedding is cached)."""
        return self.records.get(key, {"key": key, "source": "unknown", "status": "ok", "reason": ""})

    def image(self, key: str, path: Path) -> np.ndarray:
        """The crop to embed (for ``as_is``: the decoded original)."""
        if self.records[key]["source"] == "as_is":
            from curate.decode import load_rgb

            return np.asarray(load_rgb(path).image)
        with Image.open(self.store.path_for(key, ".png")) as crop:
            return np.asarray(crop.convert("RGB"))


class EmbeddingCache:
    """Embeddings of one (model, aligner): a ``.npz`` of ``keys`` and ``vectors``, written atomically."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.vectors: dict[str, np.ndarray] = {}
        self.dirty = 0
        if self.path.is_file():
            with np.load(self.path) as stored:
                self.vectors = dict(zip(stored["keys"].tolist(), stored["vectors"], strict=True))

    def __contains__(self, key: str) -> bool:
        return key in self.vectors

    def put(self, keys: Sequence[str], vectors: np.ndarray) -> None:
        """Add rows; written to disk every ``FLUSH_EVERY`` new rows and by :meth:`flush`."""
        self.vectors.update(zip(keys, np.asarray(vectors, dtype=np.float32), strict=True))
        self.dirty += len(keys)
        if self.dirty >= FLUSH_EVERY:
            self.flush()

    def get(self, key: str, dim: int) -> np.ndarray:
        """The stored vector, or a NaN row for an image that has none (it could not be read)."""
        return self.vectors.get(key, np.full(dim, np.nan, dtype=np.float32))

    def flush(self) -> None:
        """Write the file (temporary name, then rename) when anything was added."""
        if not self.dirty:
            return
        keys = list(self.vectors)
        with atomic_open(self.path) as handle:
            np.savez(handle, keys=np.array(keys), vectors=np.stack([self.vectors[k] for k in keys]))
        self.dirty = 0


@dataclass
class EmbeddedImages:
    """Per image: a unit vector (NaN row when the image could not be read), where its crop came from."""

    vectors: np.ndarray
    status: list[str]  # "ok" or the decoder's status
    source: list[str | None]  # "detected", "whole_image", "as_is" (no alignment) or None on failure
    reason: list[str]
    model_name: str
    from_cache: int

    def counts(self) -> dict[str, int]:
        """How many crops came from each source, and how many images failed."""
        out: dict[str, int] = {}
        for source, status in zip(self.source, self.status, strict=True):
            key = source if status == "ok" and source else "failed"
            out[key] = out.get(key, 0) + 1
        return out


def faces_config(workdir: Path | None) -> Any:
    """The faces stage's config for evaluation: its saved one from ``workdir`` if any, else defaults.

    ``keep_whole_if_no_face`` is forced on and ``min_face_px`` off, so every image gets an embedding.
    """
    from curate.stages.faces import FacesConfig

    values: dict[str, Any] = {}
    saved = storage.config_path(workdir, "faces") if workdir is not None else None
    if saved is not None and saved.is_file():
        known = {f.name for f in fields(FacesConfig)}
        stored = json.loads(saved.read_text())
        values = {k: v for k, v in stored.get("config", stored).items() if k in known}
        values.setdefault("dlib_landmarks_max_yaw", 0.0)  # saved before the setting: CenterFace's points
        values.setdefault("coarse_side", 0)  # saved before the setting: no coarse look
        logger.info("aligning as the faces stage in %s did: %s", workdir, values)
    values.update(keep_whole_if_no_face=True, min_face_px=0)
    return build_config(FacesConfig, values, where="faces.")


def image_key(path: Path) -> str:
    """Cache key of an image file: its resolved path, size and modification time."""
    resolved = Path(path).resolve()
    try:
        info = resolved.stat()
        stamp = f"{info.st_size}|{info.st_mtime_ns}"
    except OSError:
        stamp = "missing"
    return hashlib.sha1(f"{resolved}|{stamp}".encode("utf-8", "surrogateescape")).hexdigest()


def aligner_key(config: Any | None) -> str:
    """Short fingerprint of the alignment settings (``none`` when images are embedded as they are)."""
    if config is None:
        return "none"
    return hashlib.sha1(json.dumps(config_to_dict(config), sort_keys=True).encode()).hexdigest()[:12]


def model_fingerprint(spec: str) -> str:
    """A fingerprint that changes when the model does: file contents for a model dir or checkpoint."""
    path = Path(spec)
    digest = hashlib.sha1(spec.encode() if not path.exists() else b"")
    files = (
        sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path] if path.exists() else []
    )
    for file in files:
        digest.update(file.name.encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def load_embedder(spec: str, cache_dir: Path) -> Any:
    """``dlib``, a registry name, an exported model dir or a training checkpoint (exported to the cache)."""
    from curate.embedders import get_embedder
    from curate.embedders.exported import MODEL_FILE
    from curate.train.export import export_checkpoint

    path = Path(spec)
    if path.is_file():
        target = Path(cache_dir) / "exports" / model_fingerprint(spec)
        if not (target / MODEL_FILE).is_file():  # absent, or exported by an older curate
            export_checkpoint(path, target)
        spec = str(target)
    return get_embedder(spec)


def make_crops(
    paths: Sequence[Path], config: Any | None, cache: CropCache, progress: ProgressFn | None = None
) -> None:
    """Decode and align every image not yet in ``cache`` (``config`` None: keep images as they are)."""
    from curate.decode import DEFAULT_MAX_PIXELS, load_rgb
    from curate.faces import aligned_crop_or_whole, make_aligner

    aligner = None
    max_pixels = config.max_pixels if config is not None else DEFAULT_MAX_PIXELS
    todo = [p for p in paths if image_key(p) not in cache]
    for done, path in enumerate(todo, start=1):
        decoded = load_rgb(path, max_pixels=max_pixels)
        if decoded.image is None:
            cache.put(image_key(path), None, "failed", decoded.status.value, decoded.reason)
        elif config is None:
            cache.put(image_key(path), None, "as_is", "ok", "")
        else:
            if aligner is None:
                aligner = make_aligner(config)
            crop, info = aligned_crop_or_whole(aligner, np.asarray(decoded.image), True)
            cache.put(image_key(path), crop, info.source or "whole_image", "ok", info.reason)
        if progress is not None:
            progress("align", done, len(todo))


def embed_images(
    paths: Sequence[Path],
    model: str,
    cache_dir: Path,
    align: bool = True,
    workdir: Path | None = None,
    progress: ProgressFn | None = None,
) -> EmbeddedImages:
    """Embed ``paths`` with ``model``, aligning faces first when ``align`` (see the module docstring)."""
    paths = [Path(p) for p in paths]
    config = faces_config(workdir) if align else None
    crops = CropCache(Path(cache_dir) / "crops" / aligner_key(config))
    embedder = load_embedder(model, Path(cache_dir))
    name = re.sub(
        r"[^A-Za-z0-9_.-]", "_", f"{embedder.name}-{model_fingerprint(model)}-{aligner_key(config)}"
    )
    stored = EmbeddingCache(Path(cache_dir) / "embeddings" / f"{name}.npz")
    keys = [image_key(p) for p in paths]
    missing = sorted({key: i for i, key in enumerate(keys) if key not in stored}.values())
    make_crops([paths[i] for i in missing], config, crops, progress)
    todo = [i for i in missing if crops.record(keys[i])["status"] == "ok"]
    for start in range(0, len(todo), BATCH):
        chunk = todo[start : start + BATCH]
        stored.put([keys[i] for i in chunk], embedder.embed([crops.image(keys[i], paths[i]) for i in chunk]))
        if progress is not None:
            progress("embed", min(start + BATCH, len(todo)), len(todo))
    stored.flush()
    dim = int(embedder.dim)
    vectors = np.stack([stored.get(key, dim) for key in keys]) if keys else np.zeros((0, dim), np.float32)
    records = [crops.record(key) for key in keys]
    logger.info("embedded %d images with %s (%d from cache)", len(keys), name, len(keys) - len(missing))
    return EmbeddedImages(
        vectors=vectors.astype(np.float32),
        status=[r["status"] for r in records],
        source=[r["source"] if r["status"] == "ok" else None for r in records],
        reason=[r["reason"] for r in records],
        model_name=embedder.name,
        from_cache=len(keys) - len(missing),
    )
