"""Ingest throughput: ``curate collect`` on CFP with 1 and 2 workers, beside a bare Pillow decode loop.

The bare loop (read, sha256, decode to RGB, one process) is the floor; the gap to it is what the executor,
Parquet writing and the safety checks cost. Usage: ``python bench/ingest.py [--data ../shared/data]``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import tempfile
import time
from pathlib import Path

from PIL import Image

from curate.executor import Executor, ExecutorOptions
from curate.pipeline import StageSpec, build_stage


def bare_decode(files: list[Path]) -> float:
    """Seconds to read, hash and decode every file to RGB in one loop."""
    start = time.perf_counter()
    for path in files:
        data = path.read_bytes()
        hashlib.sha256(data).hexdigest()
        with Image.open(path) as image:
            image.convert("RGB").load()
    return time.perf_counter() - start


def curate_collect(images: Path, names: Path, workers: int, shards: int) -> float:
    """Seconds for the collect stage (cluster start included) into a scratch workdir."""
    stage = build_stage(StageSpec("collect", {"source": str(images), "names_file": str(names)}))
    workdir = Path(tempfile.mkdtemp(prefix="curate-bench-ingest-"))
    try:
        start = time.perf_counter()
        with Executor(ExecutorOptions(workers=workers, inprocess=False)) as executor:
            executor.run_stage(stage, workdir, shards, None)
        return time.perf_counter() - start
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_data = os.environ.get("CURATE_TEST_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--data", type=Path, default=Path(default_data))
    parser.add_argument("--shards", type=int, default=16)
    args = parser.parse_args()
    images = args.data / "cfp" / "Data" / "Images"
    names = args.data / "cfp" / "Data" / "list_name.txt"
    files = sorted(p for p in images.rglob("*") if p.is_file())
    print(f"CFP: {len(files)} files, {os.cpu_count()} CPUs")
    floor = bare_decode(files)
    print(f"{'bare Pillow loop (1 process, floor)':40s} {len(files) / floor:8.1f} images/s  {floor:6.1f} s")
    for workers in (1, 2):
        seconds = curate_collect(images, names, workers, args.shards)
        label = f"curate collect, {workers} worker(s)"
        rate = len(files) / seconds
        print(f"{label:40s} {rate:8.1f} images/s  {seconds:6.1f} s  ({floor / seconds:.2f}x floor)")


if __name__ == "__main__":
    main()
