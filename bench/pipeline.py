"""Throughput per stage beside its floor: each stage at its defaults next to the bare library doing its work.

On the first N CFP photos (whole identities), one table of images/s, each stage run through the executor
in each mode it has: in-process (``--workers 0``, every task in the command's process; what the automatic
choice does until a task's time says a cluster pays) and a LocalCluster of 1 and of 2 worker processes,
started before the stages so its start is listed apart. Beside them the floor (``pipeline_floors.py``):

| stage (its defaults) | the same work with the bare library (the floor) |
|---|---|
| collect: read, sha256, safe decode at DCT scale, Parquet | Pillow: open + draft(128) + decode to RGB |
| faces: CenterFace, 5 points, crop PNG, quality | onnxruntime: the stage's CenterFace session, dlib chip |
| describe: pHash, dHash, thumbnail, handcrafted + dlib | torch: dlib's network on the crops, one thread |
| dedup: all-pairs search, verification, conflict check | faiss: ``IndexFlatIP.range_search``, same vectors |
| train: an epoch of ``curate train`` (data, steps, checkpoint) | torch: forward/backward/SGD, random data |

Floors run on 1 and 2 workers (processes for Pillow, ONNX and the embedder, threads for faiss and
training); the in-process mode is set beside the 1-worker floor. Train does not go through the executor
(its ``threads`` follow the worker count). Each cell gives images/s (wall) and the CPU seconds of this
process and all its descendants (dask workers, scheduler threads, pool workers): on a busy shared machine
wall time mostly measures the other jobs, CPU time the work. ``x floor`` is stage CPU over floor CPU.

    python bench/pipeline.py [--images 128] [--workers 1 2] [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import pipeline_floors as floors
from clock import Clock

from curate import manifest
from curate.executor import Executor, ExecutorOptions
from curate.pipeline import StageSpec, build_stage
from curate.train.config import TrainConfig
from curate.train.loop import train

SHARDS = 4
STAGES = [("collect", None), ("faces", "collect"), ("describe", "faces"), ("dedup", "describe")]
FLOORS = {
    "collect": "Pillow open + draft to 128 px + decode to RGB",
    "faces": "Pillow decode, CenterFace ONNX session (best peak), dlib chip",
    "describe": "torch: dlib's face network on the crops (one thread)",
    "dedup": "faiss `IndexFlatIP.range_search`, same vectors",
    "train": "torch forward/backward/SGD, random tensors",
}


@dataclass
class Span:
    """Wall and CPU seconds (a :class:`Clock`'s result, or a sum of them)."""

    wall: float = 0.0
    cpu: float = 0.0

    def __add__(self, other: Span | Clock) -> Span:
        return Span(self.wall + other.wall, self.cpu + other.cpu)


def cfp_subset(data: Path, n: int, target: Path) -> list[Path]:
    """Copies of the first ``n`` CFP photos under ``target/<identity>/``."""
    files = sorted((data / "cfp" / "Data" / "Images").glob("*/*/*.jpg"))[:n]
    out = []
    for path in files:
        link = target / path.parts[-3] / f"{path.parent.name}_{path.name}"
        link.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, link)
        out.append(link)
    return out


def run_stages(source: Path, workdir: Path, options: ExecutorOptions) -> dict[str, Span | Clock]:
    """Wall and CPU per stage at its defaults, and (with a cluster) the cluster's start plus stop."""
    clocks: dict[str, Span | Clock] = {}
    cluster = Span()
    executor = Executor(options).__enter__()
    try:
        if options.workers > 0:
            with Clock() as start:
                executor.client  # noqa: B018 -- starts the LocalCluster before any stage is timed
            cluster = cluster + start
        for name, input_stage in STAGES:
            stage = build_stage(StageSpec(name, {"source": str(source)} if name == "collect" else {}))
            with Clock() as clocks[name]:
                executor.run_stage(stage, workdir, SHARDS, input_stage)
    finally:
        with Clock() as stop:
            executor.__exit__(None, None, None)
    clocks["cluster start + stop"] = cluster + stop if options.workers > 0 else Span()
    return clocks


def crops_of(workdir: Path) -> list[Path]:
    """The aligned crops the faces stage wrote."""
    paths = []
    for shard in range(SHARDS):
        table = manifest.read_shard(manifest.shard_path(workdir, "faces", shard))
        paths += [Path(p) for p in table.column("crop_path").to_pylist() if p]
    return paths


def train_clock(source: Path, out: Path, threads: int) -> Clock:
    """One epoch of ``curate train`` at its defaults (small backbone, 64x64, batch 64, augment)."""
    config = TrainConfig(images=source, out=out, epochs=1, threads=threads, progress=False)
    with Clock() as clock:
        train(config)
    return clock


def floor_clocks(files: list[Path], workdir: Path, workers: int) -> dict[str, Clock]:
    """Every floor on ``workers`` workers; describe's and dedup's read the stages' output in ``workdir``."""
    crops = crops_of(workdir)
    chunks = [crops[k : k + 16] for k in range(0, len(crops), 16)]
    n_classes = len({f.parent.name for f in files})
    return {
        "collect": floors.timed_pool(floors.decode_reduced, files, workers),
        "faces": floors.timed_pool(floors.centerface_align, files, workers),
        "describe": floors.timed_pool(floors.embed, chunks, workers),
        "dedup": floors.faiss_floor(workdir, SHARDS, workers),
        "train": floors.torch_floor(len(files), n_classes, workers),
    }


def modes(workers: list[int]) -> dict[str, tuple[ExecutorOptions, int]]:
    """Executor mode -> (its options, the worker count of the floor it is set beside)."""
    out = {"in-process": (ExecutorOptions(workers=0), 1)} if 1 in workers else {}
    for w in workers:
        out[f"LocalCluster({w})"] = (ExecutorOptions(workers=w, inprocess=False), w)
    return out


def measure(files: list[Path], source: Path, scratch: Path, workers: list[int]) -> tuple[dict, dict]:
    """Per mode the stage clocks, per worker count the floor clocks."""
    stage_clocks: dict[str, dict] = {}
    floor_by_workers: dict[int, dict] = {}
    trains: dict[int, Clock] = {}
    for label, (options, w) in modes(workers).items():
        workdir = scratch / f"work-{label}"
        stage_clocks[label] = run_stages(source, workdir, options)
        if w not in trains:  # train runs in the command's process whatever the executor's mode
            trains[w] = train_clock(source, scratch / f"train-{w}", w)
            floor_by_workers[w] = floor_clocks(files, workdir, w)
        stage_clocks[label]["train"] = trains[w]
    return stage_clocks, floor_by_workers


def print_table(n: int, stage_clocks: dict, floor_by_workers: dict, workers: list[int]) -> None:
    """The markdown table, then the totals that show the executor's overhead."""
    print("cells: images/s (wall), CPU s of the process tree; x floor = stage CPU / floor CPU")
    head, columns = ["stage", "floor (bare library)"], []
    for w in workers:
        head.append(f"floor, {w} worker{'s' if w > 1 else ''}")
        columns.append(("floor", w))
        for label, (_, mode_w) in modes(workers).items():
            if mode_w == w:
                head += [label, "x floor"]
                columns.append((label, w))
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))

    def rate(clock: Span | Clock) -> str:
        cpu = f"{clock.cpu:.1f} s" if clock.cpu >= 0.1 else f"{1000 * clock.cpu:.0f} ms"
        return f"{n / clock.wall:,.1f}/s, CPU {cpu}"

    def ratio(stage: Span | Clock, floor: Clock) -> str:
        return f"{stage.cpu / floor.cpu:.2f}" if floor.cpu >= 0.05 else "(floor < 50 ms)"

    for name in ["cluster start + stop", *FLOORS]:
        cells = [name, FLOORS.get(name, "")]
        for label, w in columns:
            if label == "floor":
                cells.append(rate(floor_by_workers[w][name]) if name in FLOORS else "")
                continue
            stage = stage_clocks[label][name]
            if name not in FLOORS:
                cells += [f"{stage.wall:.1f} s, CPU {stage.cpu:.1f} s" if stage.wall else "none", ""]
                continue
            cells += [rate(stage), ratio(stage, floor_by_workers[w][name])]
        print("| " + " | ".join(cells) + " |")
    print("\ncollect..dedup totals (cluster start + stop apart):")
    for label, (_, w) in modes(workers).items():
        total = sum((stage_clocks[label][name] for name, _ in STAGES), Span())
        floor = sum((floor_by_workers[w][name] for name, _ in STAGES), Span())
        print(
            f"  {label}: {total.wall:.1f} s wall, CPU {total.cpu:.1f} s; floors ({w} worker(s)) "
            f"{floor.wall:.1f} s wall, CPU {floor.cpu:.1f} s; CPU per image: stage "
            f"{1000 * total.cpu / n:.0f} ms, floor {1000 * floor.cpu / n:.0f} ms"
        )


def main() -> None:
    """Print one table: images/s and CPU seconds of every stage per executor mode and of its floor."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--images", type=int, default=128)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        scratch = Path(tmp)
        files = cfp_subset(args.data, args.images, scratch / "images")
        stage_clocks, floor_by_workers = measure(files, scratch / "images", scratch, args.workers)
    n = len(files)
    print(f"\n{n} CFP photos, {os.cpu_count()} CPUs, load average {load:.1f} -> {os.getloadavg()[0]:.1f}")
    print_table(n, stage_clocks, floor_by_workers, args.workers)


if __name__ == "__main__":
    main()
