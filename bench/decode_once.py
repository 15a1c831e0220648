"""Decode once: ``collect`` + ``describe --input collect`` beside the decode floor, with and without squares.

The floor is a bare Pillow loop over the same files on every core (open, decode to RGB; nothing stored).
``collect --squares`` stores describe's 64x64 square per image, so describe reads it instead of decoding
the file a second time; without squares describe decodes every image again (the old way).

Two ways of running the stages, each with and without squares:
* ``stage work``: the stages' own ``run_shard`` on every shard in a process pool (what the stages cost);
* ``executor``: both stages through the executor, as ``curate run`` does with its automatic choice (a
  cluster's start is not counted; Parquet, markers, scheduling and dask's own upkeep are), and with
  ``--workers 0`` (every task in this process, on one core: the executor's own cost without dask).

Two file sets: the first N CFP files (small loose crops, median 204 px wide: decoding is cheap, so the
fixed per-image work of hashing weighs most) and the CFP photos whose longer side is at least 400 px.
CPU seconds count this process and all its descendants: on a shared machine they measure the work, while
wall time mostly measures the other jobs.

Each figure is the median of ``--repeat`` rounds (the floor and every way of running, in turn), after an
uncounted warm-up of each on the first files; the ratios are taken within a round, and each round's CPU
ratio is listed beside the median.

    python bench/decode_once.py [--data ../shared/data] [--images 3000] [--workers 2] [--repeat 3]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import sys
import tempfile
from pathlib import Path
from statistics import median

import pyarrow as pa
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from clock import Clock

from curate.executor import Executor, ExecutorOptions
from curate.pipeline import StageSpec, build_stage
from curate.stage import local_context
from curate.stages.describe import DescribeConfig, DescribeStage
from curate.stages.ingest import IngestConfig, IngestStage

WARM_UP_FILES = 100  # an uncounted first run of every way, on this many files
NEAR_DUP = ["handcrafted"]  # the embedder the squares serve (describe's default adds dlib, on face crops)


def _decode(path: Path) -> int:
    with Image.open(path) as image:
        return image.convert("RGB").width


def floor(files: list[Path], workers: int) -> Clock:
    """The bare Pillow loop over ``files`` in ``workers`` processes (pool start excluded)."""
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        pool.map(abs, range(workers))
        with Clock() as clock:
            pool.map(_decode, files, chunksize=64)
        return clock


def _both_stages(job: tuple[int, pa.Table, str, int, bool]) -> int:
    shard, table, workdir, n_shards, squares = job
    collected = IngestStage(IngestConfig(source=Path("."), squares=squares)).run_shard(
        table, local_context(Path(workdir), "collect", shard, n_shards)
    )
    described = DescribeStage(DescribeConfig(embedders=NEAR_DUP)).run_shard(
        collected, local_context(Path(workdir), "describe", shard, n_shards)
    )
    return described.num_rows


def stage_work(source: Path, workers: int, shards: int, squares: bool) -> Clock:
    """collect then describe ``run_shard`` per shard in a pool of ``workers`` processes."""
    workdir = Path(tempfile.mkdtemp(prefix="curate-bench-decode-"))
    planned = IngestStage(IngestConfig(source=source)).plan(workdir, shards)
    jobs = [(shard, table, str(workdir), shards, squares) for shard, table in planned.items()]
    try:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            pool.map(abs, range(workers))
            with Clock() as clock:
                pool.map(_both_stages, jobs, chunksize=1)
        return clock
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def executor_run(source: Path, workers: int, shards: int, squares: bool) -> Clock:
    """collect and describe (default settings) through the executor, into a scratch workdir.

    ``workers`` 0: every task in this process (``--workers 0``), no cluster.
    """
    workdir = Path(tempfile.mkdtemp(prefix="curate-bench-decode-"))
    collect = build_stage(StageSpec("collect", {"source": str(source), "squares": squares}))
    describe = build_stage(StageSpec("describe", {"embedders": NEAR_DUP}))
    try:
        with Executor(ExecutorOptions(workers=workers)) as executor, Clock() as clock:
            executor.run_stage(collect, workdir, shards, None)
            executor.run_stage(describe, workdir, shards, "collect")
        return clock
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def link_files(files: list[Path], images: Path, target: Path) -> Path:
    """A folder tree of ``files`` (``<identity>/<pose>/<file>``) under ``target``, as hard links."""
    for path in files:
        out = target / path.relative_to(images)
        out.parent.mkdir(parents=True, exist_ok=True)
        if path.stat().st_dev == target.stat().st_dev:
            os.link(path, out)
        else:
            shutil.copyfile(path, out)
    return target


def measure(files: list[Path], images: Path, folder: Path, args: argparse.Namespace) -> list[str]:
    """Table rows for one file set: medians over ``args.repeat`` rounds, each round the floor then every
    way of running, so that a change in the machine's load moves the floor and the stages alike."""
    source = link_files(files, images, folder)
    runs = {
        f"{kind}: {'collect --squares + describe' if squares else 'collect + describe (decodes again)'}": (
            run,
            workers,
            squares,
        )
        for kind, run, workers in (
            ("stage work", stage_work, args.workers),
            ("executor", executor_run, args.workers),
            ("executor in-process (--workers 0, 1 core)", executor_run, 0),
        )
        for squares in (False, True)
    }
    warm_up = link_files(files[:WARM_UP_FILES], images, folder.with_name(f"{folder.name}-warm-up"))
    floor(files[:WARM_UP_FILES], args.workers)
    for run, workers, squares in runs.values():  # first-use costs (imports, caches) stay out of the rounds
        run(warm_up, workers, args.shards, squares)
    floors: list[Clock] = []
    clocks: dict[str, list[Clock]] = {what: [] for what in runs}
    for _ in range(args.repeat):
        floors.append(floor(files, args.workers))
        for what, (run, workers, squares) in runs.items():
            clocks[what].append(run(source, workers, args.shards, squares))
    rows = [
        f"| bare Pillow decode loop (floor) | {median(c.cpu for c in floors):.2f} | 1.00 | "
        f"{median(c.wall for c in floors):.2f} | 1.00 |"
    ]
    for what, runs_of_it in clocks.items():
        cpu_ratio = median(c.cpu / f.cpu for c, f in zip(runs_of_it, floors, strict=True))
        wall_ratio = median(c.wall / f.wall for c, f in zip(runs_of_it, floors, strict=True))
        spread = ", ".join(f"{c.cpu / f.cpu:.2f}" for c, f in zip(runs_of_it, floors, strict=True))
        rows.append(
            f"| {what} | {median(c.cpu for c in runs_of_it):.2f} | **{cpu_ratio:.2f}** ({spread}) | "
            f"{median(c.wall for c in runs_of_it):.2f} | {wall_ratio:.2f} |"
        )
    return rows


def main() -> None:
    """Print one table per file set: CPU and wall seconds, each against the floor."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--images", type=int, default=3000)
    parser.add_argument("--min-side", type=int, default=400, help="longer side of the 'large photos' set")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the table gives their medians")
    args = parser.parse_args()
    images = args.data / "cfp" / "Data" / "Images"
    every = sorted(images.glob("*/*/*.jpg"))
    large = [p for p in every if max(Image.open(p).size) >= args.min_side]
    sets = {
        f"first {args.images} CFP files": every[: args.images],
        f"CFP photos >= {args.min_side} px": large,
    }
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="decode-once-") as tmp:
        tables = {
            name: measure(files, images, Path(tmp) / str(k), args)
            for k, (name, files) in enumerate(sets.items())
        }
    print(
        f"{args.workers} workers, {args.shards} shards, load average {load:.1f} -> {os.getloadavg()[0]:.1f}"
    )
    for name, rows in tables.items():
        print(f"\n{name} ({len(sets[name])} files)\n")
        print("| what | CPU s | x floor (CPU): median (each round) | wall s | x floor (wall) |")
        print("|---|---|---|---|---|")
        print("\n".join(rows))


if __name__ == "__main__":
    main()
