"""The bare-library floors of ``bench/pipeline.py``: each stage's work done by its library alone.

- collect: Pillow open + JPEG draft at the square's DCT scale + decode to RGB (what collect decodes);
- faces: Pillow full decode, the CenterFace ONNX Runtime session the stage loads (same model, same thread
  options) on the padded image, its best heatmap peak, the 5 points mapped to dlib's, ``dlib.get_face_chip``;
- describe: dlib's face-recognition network, run by torch on one thread as the stage runs it
  (:mod:`curate.embedders.dlib_net`), on the faces stage's crops;
- dedup: faiss ``IndexFlatIP.range_search`` of describe's handcrafted vectors;
- train: the same network's forward/backward/SGD on random tensors.

Pillow, ONNX and embedding loops run in ``fork`` pool processes, faiss and torch training in threads;
models are loaded in every worker before the clock starts, so a floor is the steady-state work only.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from pathlib import Path

import numpy as np
from clock import Clock
from PIL import Image

from curate import manifest
from curate.constants import DEFAULT_MAX_SIDE
from curate.faces.centerface import ALIGN, STRIDE, THRESHOLD, to_dlib_points
from curate.hashing import SQUARE_DECODE_SIDE

_MODELS: dict[str, object] = {}


def timed_pool(function: Callable, jobs: list, workers: int) -> Clock:
    """Wall and CPU to map ``function`` over ``jobs`` in ``workers`` processes (start-up excluded)."""
    with multiprocessing.get_context("fork").Pool(workers, initializer=_load_models) as pool:
        pool.map(_noop, range(workers))  # models loaded in every worker before the clock starts
        with Clock() as clock:
            pool.map(function, jobs, chunksize=max(1, len(jobs) // (4 * workers)))
        return clock


def _load_models() -> None:
    import face_recognition_models as frm
    import torch

    from curate.embedders.dlib_net import load_network
    from curate.faces.centerface import CenterFace

    torch.set_num_threads(1)
    _MODELS["centerface"] = CenterFace(threads=1).session  # the faces stage's session, built the same way
    _MODELS["embedder"] = load_network(frm.face_recognition_model_location())


def _noop(_: int) -> None:
    return None


def decode_reduced(path: Path) -> tuple[int, ...]:
    """collect's decode: the JPEG at the DCT scale keeping both sides >= the square's decode side."""
    with Image.open(path) as image:
        image.draft("RGB", (SQUARE_DECODE_SIDE, SQUARE_DECODE_SIDE))
        return np.asarray(image.convert("RGB")).shape


def _decode_full(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def centerface_align(path: Path) -> int:
    """Decode, shrink past the stage's max side, one CenterFace pass, best peak's 5 points, a 150 px chip."""
    import dlib

    rgb = _decode_full(path)
    scale = min(1.0, DEFAULT_MAX_SIDE / max(rgb.shape[:2]))
    image = rgb
    if scale < 1.0:
        size = (round(rgb.shape[1] * scale), round(rgb.shape[0] * scale))
        image = np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BILINEAR))
    padded_h, padded_w = (-(-side // ALIGN) * ALIGN for side in image.shape[:2])
    blob = np.zeros((1, 3, padded_h, padded_w), np.float32)
    blob[0, :, : image.shape[0], : image.shape[1]] = image.transpose(2, 0, 1)
    session = _MODELS["centerface"]
    heatmap, sizes, offsets, marks = session.run(None, {session.get_inputs()[0].name: blob})  # type: ignore[attr-defined]
    row, col = np.unravel_index(np.argmax(heatmap[0, 0]), heatmap.shape[2:])
    if heatmap[0, 0, row, col] < THRESHOLD:
        return 0
    box_h, box_w = np.exp(sizes[0, :, row, col]) * STRIDE
    y0 = (row + offsets[0, 0, row, col] + 0.5) * STRIDE - box_h / 2
    x0 = (col + offsets[0, 1, row, col] + 0.5) * STRIDE - box_w / 2
    points = np.stack([marks[0, 1::2, row, col] * box_w + x0, marks[0, 0::2, row, col] * box_h + y0], 1)
    dlib_points = to_dlib_points(points / scale)
    box = dlib.rectangle(*(round(v / scale) for v in (x0, y0, x0 + box_w, y0 + box_h)))
    shape = dlib.full_object_detection(box, [dlib.point(round(x), round(y)) for x, y in dlib_points])
    return int(dlib.get_face_chip(np.ascontiguousarray(rgb), shape, size=150, padding=0.25).shape[0])


def embed(paths: list[Path]) -> int:
    """dlib's 128-d descriptors of a batch of crops (decoded with Pillow), the network run by torch."""
    import torch

    chips = np.stack([np.asarray(Image.open(p).convert("RGB").resize((150, 150))) for p in paths])
    with torch.inference_mode():
        return len(_MODELS["embedder"](torch.from_numpy(chips)))  # type: ignore[operator]


def faiss_floor(workdir: Path, n_shards: int, workers: int) -> Clock:
    """Seconds for the bare range search over describe's handcrafted vectors (dedup's main search)."""
    import faiss

    faiss.omp_set_num_threads(workers)
    vectors = np.concatenate(
        [manifest.read_vectors(workdir, "describe", "handcrafted", s) for s in range(n_shards)]
    ).astype(np.float32)
    with Clock() as clock:
        index = faiss.IndexFlatIP(vectors.shape[1])
        index.add(vectors)
        index.range_search(vectors, 0.8)
    return clock


def torch_floor(n_images: int, n_classes: int, threads: int) -> Clock:
    """The same number of training steps with the bare network on random tensors."""
    import torch

    from curate.train.backbones import build_net

    torch.set_num_threads(threads)
    net, head = build_net("small", 128, 64), torch.nn.Linear(128, n_classes)
    optimiser = torch.optim.SGD([*net.parameters(), *head.parameters()], lr=0.1, momentum=0.9)
    batches = [
        (torch.randn(64, 3, 64, 64), torch.randint(0, n_classes, (64,))) for _ in range(-(-n_images // 64))
    ]
    with Clock() as clock:
        for images, labels in batches:
            loss = torch.nn.functional.cross_entropy(head(net(images)) * 32, labels)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    return clock
