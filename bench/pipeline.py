"""Throughput per stage beside its floor: each stage through the executor next to the bare library call.

On the first N CFP photos (whole identities), with 1 and 2 workers, one table of images/s:

| stage (executor) | the same work with the bare library (the floor) |
|---|---|
| collect: read, sha256, safe decode, Parquet | Pillow: open + decode to RGB |
| faces: HOG detection, 5 points, aligned crop | dlib: HOG detector + 5-point predictor on decoded images |
| describe: dlib embedding (+ pHash, handcrafted) of the crops | dlib: ``compute_face_descriptor``, chips |
| dedup: all-pairs search and decisions | faiss: ``IndexFlatIP.range_search`` of the same vectors |
| train: an epoch of ``curate train`` (data, steps, checkpoint) | torch: forward/backward/SGD, random data |

Workers are dask worker processes for the stages, processes for the bare Pillow and dlib loops, and threads
for faiss and torch. Stage seconds are the executor's own (``StageResult.seconds``: scheduling, Parquet,
markers, stats); the cluster start is listed apart, as it is paid once per command. ``overhead`` is stage
time over floor time. Figures are noisy on a shared machine: compare within one run.

    python bench/pipeline.py [--images 240] [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import multiprocessing
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from curate import manifest
from curate.executor import Executor, ExecutorOptions
from curate.pipeline import StageSpec, build_stage
from curate.train.config import TrainConfig
from curate.train.loop import train

STAGES = [
    ("collect", {}, None),
    ("faces", {}, "collect"),
    ("describe", {"embedders": ["dlib", "handcrafted"], "hashes": ["phash"]}, "faces"),
    ("dedup", {}, "describe"),
]


def cfp_subset(data: Path, n: int, target: Path) -> list[Path]:
    """Hard links to the first ``n`` CFP photos under ``target/<identity>/``."""
    files = sorted((data / "cfp" / "Data" / "Images").glob("*/*/*.jpg"))[:n]
    out = []
    for path in files:
        link = target / path.parts[-3] / f"{path.parent.name}_{path.name}"
        link.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, link)
        out.append(link)
    return out


def run_stages(source: Path, workdir: Path, workers: int) -> dict[str, float]:
    """Seconds per stage (and for the cluster start) through the executor."""
    start = time.perf_counter()
    with Executor(ExecutorOptions(workers=workers)) as executor:
        seconds = {"cluster start": time.perf_counter() - start}
        for name, settings, input_stage in STAGES:
            settings = {"source": str(source)} if name == "collect" else settings
            stage = build_stage(StageSpec(name, settings))
            seconds[name] = executor.run_stage(stage, workdir, 4, input_stage).seconds
    return seconds


def timed_pool(function: Callable, jobs: list, workers: int) -> float:
    """Seconds to map ``function`` over ``jobs`` in ``workers`` fresh processes (start-up excluded)."""
    with multiprocessing.get_context("fork").Pool(workers, initializer=_load_models) as pool:
        pool.map(_noop, range(workers))  # models loaded in every worker before the clock starts
        start = time.perf_counter()
        pool.map(function, jobs, chunksize=max(1, len(jobs) // (4 * workers)))
        return time.perf_counter() - start


_MODELS: dict[str, object] = {}


def _load_models() -> None:
    import dlib
    import face_recognition_models as frm

    _MODELS["detector"] = dlib.get_frontal_face_detector()
    _MODELS["predictor"] = dlib.shape_predictor(frm.pose_predictor_five_point_model_location())
    _MODELS["embedder"] = dlib.face_recognition_model_v1(frm.face_recognition_model_location())


def _noop(_: int) -> None:
    return None


def _decode(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def _detect(path: Path) -> int:
    rgb = _decode(path)
    boxes = _MODELS["detector"](rgb, 1)  # type: ignore[operator]
    for box in boxes:
        _MODELS["predictor"](rgb, box)  # type: ignore[operator]
    return len(boxes)


def _embed(paths: list[Path]) -> int:
    from PIL import Image

    chips = [np.asarray(Image.open(p).convert("RGB").resize((150, 150))) for p in paths]
    return len(_MODELS["embedder"].compute_face_descriptor(chips))  # type: ignore[attr-defined]


def faiss_floor(workdir: Path, workers: int) -> tuple[float, int]:
    """Seconds for the bare range search over describe's handcrafted vectors (dedup's main search)."""
    import faiss

    faiss.omp_set_num_threads(workers)
    vectors = np.concatenate(
        [manifest.read_vectors(workdir, "describe", "handcrafted", s) for s in range(4)]
    ).astype(np.float32)
    start = time.perf_counter()
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    index.range_search(vectors, 0.8)
    return time.perf_counter() - start, len(vectors)


def crops_of(workdir: Path) -> list[Path]:
    """The aligned crops the faces stage wrote."""
    paths = []
    for shard in range(4):
        table = manifest.read_shard(manifest.shard_path(workdir, "faces", shard))
        paths += [Path(p) for p in table.column("crop_path").to_pylist() if p]
    return paths


def train_seconds(source: Path, out: Path, threads: int) -> float:
    """Seconds for one epoch of ``curate train`` (small backbone, 64x64, batch 64) on the folder."""
    config = TrainConfig(images=source, out=out, epochs=1, threads=threads, progress=False, augment=False)
    start = time.perf_counter()
    train(config)
    return time.perf_counter() - start


def torch_floor(n_images: int, n_classes: int, threads: int) -> float:
    """Seconds for the same number of training steps with the bare network on random tensors."""
    import torch

    from curate.train.backbones import build_net

    torch.set_num_threads(threads)
    net, head = build_net("small", 128, 64), torch.nn.Linear(128, n_classes)
    optimiser = torch.optim.SGD([*net.parameters(), *head.parameters()], lr=0.1, momentum=0.9)
    batches = [
        (torch.randn(64, 3, 64, 64), torch.randint(0, n_classes, (64,))) for _ in range(-(-n_images // 64))
    ]
    start = time.perf_counter()
    for images, labels in batches:
        loss = torch.nn.functional.cross_entropy(head(net(images)) * 32, labels)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return time.perf_counter() - start


def measure(files: list[Path], source: Path, scratch: Path, workers: int) -> dict[str, tuple[float, float]]:
    """Per stage: (stage seconds, floor seconds) with ``workers`` workers."""
    workdir = scratch / f"work-{workers}"
    stages = run_stages(source, workdir, workers)
    crops = crops_of(workdir)
    chunks = [crops[k : k + 16] for k in range(0, len(crops), 16)]
    faiss_s, _ = faiss_floor(workdir, workers)
    n_classes = len({f.parent.name for f in files})
    return {
        "cluster start": (stages["cluster start"], 0.0),
        "collect": (stages["collect"], timed_pool(_decode, files, workers)),
        "faces": (stages["faces"], timed_pool(_detect, files, workers)),
        "describe": (stages["describe"], timed_pool(_embed, chunks, workers)),
        "dedup": (stages["dedup"], faiss_s),
        "train": (
            train_seconds(source, scratch / f"train-{workers}", workers),
            torch_floor(len(files), n_classes, workers),
        ),
    }


def main() -> None:
    """Print one table: images/s of every stage and of its floor, on 1 and 2 workers."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--images", type=int, default=240)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        scratch = Path(tmp)
        files = cfp_subset(args.data, args.images, scratch / "images")
        n = len(files)
        results = {w: measure(files, scratch / "images", scratch, w) for w in args.workers}
    print(
        f"\n{n} CFP photos; images/s: stage through the executor / bare library floor / stage over floor time"
    )
    header = " | ".join(f"{w} worker{'s' if w > 1 else ''}: stage / floor / overhead" for w in args.workers)
    print(f"| stage | {header} |")
    print("|---|" + "---|" * len(args.workers))
    for name in results[args.workers[0]]:
        cells = []
        for w in args.workers:
            stage, floor = results[w][name]
            if name == "cluster start":
                cells.append(f"{stage:.1f} s")
            else:
                cells.append(f"{n / stage:,.1f} / {n / floor:,.1f} / {stage / floor:.2f}x")
        print(f"| {name} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
