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
for faiss and torch. Each cell gives images/s (wall) and the CPU seconds spent by this process and all its
descendants (dask workers and scheduler, pool workers): on a busy shared machine wall time mostly measures
the other jobs, CPU time the work. The cluster start is listed apart, as it is paid once per command.
``x floor`` is stage CPU time over floor CPU time.

    python bench/pipeline.py [--images 240] [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from clock import Clock

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


def run_stages(source: Path, workdir: Path, workers: int) -> dict[str, Clock]:
    """Wall and CPU per stage (and for the cluster start) through the executor."""
    clocks = {}
    with Clock() as clocks["cluster start"], Executor(ExecutorOptions(workers=workers)) as executor:
        pass
    with Executor(ExecutorOptions(workers=workers)) as executor:
        for name, settings, input_stage in STAGES:
            settings = {"source": str(source)} if name == "collect" else settings
            stage = build_stage(StageSpec(name, settings))
            with Clock() as clocks[name]:
                executor.run_stage(stage, workdir, 4, input_stage)
    return clocks


def timed_pool(function: Callable, jobs: list, workers: int) -> Clock:
    """Wall and CPU to map ``function`` over ``jobs`` in ``workers`` processes (start-up excluded)."""
    with multiprocessing.get_context("fork").Pool(workers, initializer=_load_models) as pool:
        pool.map(_noop, range(workers))  # models loaded in every worker before the clock starts
        with Clock() as clock:
            pool.map(function, jobs, chunksize=max(1, len(jobs) // (4 * workers)))
        return clock


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


def faiss_floor(workdir: Path, workers: int) -> Clock:
    """Seconds for the bare range search over describe's handcrafted vectors (dedup's main search)."""
    import faiss

    faiss.omp_set_num_threads(workers)
    vectors = np.concatenate(
        [manifest.read_vectors(workdir, "describe", "handcrafted", s) for s in range(4)]
    ).astype(np.float32)
    with Clock() as clock:
        index = faiss.IndexFlatIP(vectors.shape[1])
        index.add(vectors)
        index.range_search(vectors, 0.8)
    return clock


def crops_of(workdir: Path) -> list[Path]:
    """The aligned crops the faces stage wrote."""
    paths = []
    for shard in range(4):
        table = manifest.read_shard(manifest.shard_path(workdir, "faces", shard))
        paths += [Path(p) for p in table.column("crop_path").to_pylist() if p]
    return paths


def train_clock(source: Path, out: Path, threads: int) -> Clock:
    """One epoch of ``curate train`` (small backbone, 64x64, batch 64) on the folder."""
    config = TrainConfig(images=source, out=out, epochs=1, threads=threads, progress=False, augment=False)
    with Clock() as clock:
        train(config)
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


def measure(files: list[Path], source: Path, scratch: Path, workers: int) -> dict[str, tuple]:
    """Per stage: (stage clock, floor clock or None) with ``workers`` workers."""
    workdir = scratch / f"work-{workers}"
    stages = run_stages(source, workdir, workers)
    crops = crops_of(workdir)
    chunks = [crops[k : k + 16] for k in range(0, len(crops), 16)]
    n_classes = len({f.parent.name for f in files})
    return {
        "cluster start": (stages["cluster start"], None),
        "collect": (stages["collect"], timed_pool(_decode, files, workers)),
        "faces": (stages["faces"], timed_pool(_detect, files, workers)),
        "describe": (stages["describe"], timed_pool(_embed, chunks, workers)),
        "dedup": (stages["dedup"], faiss_floor(workdir, workers)),
        "train": (
            train_clock(source, scratch / f"train-{workers}", workers),
            torch_floor(len(files), n_classes, workers),
        ),
    }


def main() -> None:
    """Print one table: images/s and CPU seconds of every stage and of its floor, on 1 and 2 workers."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--images", type=int, default=240)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        scratch = Path(tmp)
        files = cfp_subset(args.data, args.images, scratch / "images")
        n = len(files)
        results = {w: measure(files, scratch / "images", scratch, w) for w in args.workers}
    print(f"\n{n} CFP photos, {os.cpu_count()} CPUs, load average {load:.1f} -> {os.getloadavg()[0]:.1f}")
    print("cells: stage images/s (wall), CPU s | floor images/s (wall), CPU s | stage CPU / floor CPU")
    header = " | ".join(f"{w} worker{'s' if w > 1 else ''}: stage | floor | x floor" for w in args.workers)
    print(f"| stage | {header} |")
    print("|---|" + "---|---|---|" * len(args.workers))
    for name in results[args.workers[0]]:
        cells = []
        for w in args.workers:
            stage, floor = results[w][name]
            if floor is None:
                cells += [f"{stage.wall:.1f} s, CPU {stage.cpu:.1f} s", "", ""]
                continue
            cells += [
                f"{n / stage.wall:,.1f}/s, CPU {stage.cpu:.1f} s",
                f"{n / floor.wall:,.1f}/s, CPU {floor.cpu:.1f} s",
                f"{stage.cpu / max(floor.cpu, 1e-3):.2f}",
            ]
        print(f"| {name} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
