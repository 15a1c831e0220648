"""Decode once: ``collect`` + ``describe --input collect`` beside the decode floor, with and without squares.

The floor is a bare Pillow loop over the same files on every core (read, decode to RGB; nothing stored).
``collect --squares`` stores describe's 64x64 square per image, so describe reads it instead of decoding
the file a second time; without squares describe decodes every image again (the old way). Both stages run
in one executor (as ``curate run`` does; the cluster start is timed apart).

    python bench/decode_once.py [--data ../shared/data] [--images 7000] [--workers 2]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from curate.executor import Executor, ExecutorOptions
from curate.pipeline import StageSpec, build_stage


def _decode(path: Path) -> int:
    with Image.open(path) as image:
        return image.convert("RGB").width


def floor(files: list[Path], workers: int) -> float:
    """Seconds for the bare Pillow loop over ``files`` in ``workers`` processes."""
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        start = time.perf_counter()
        pool.map(_decode, files, chunksize=64)
        return time.perf_counter() - start


def curate_run(source: Path, workers: int, shards: int, squares: bool) -> dict[str, float]:
    """Seconds for cluster start, collect and describe (default settings) into a scratch workdir."""
    workdir = Path(tempfile.mkdtemp(prefix="curate-bench-decode-"))
    collect = build_stage(StageSpec("collect", {"source": str(source), "squares": squares}))
    describe = build_stage(StageSpec("describe", {}))
    try:
        start = time.perf_counter()
        with Executor(ExecutorOptions(workers=workers)) as executor:
            seconds = {"cluster": time.perf_counter() - start}
            seconds["collect"] = executor.run_stage(collect, workdir, shards, None).seconds
            seconds["describe"] = executor.run_stage(describe, workdir, shards, "collect").seconds
        return seconds
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def link_subset(images: Path, n: int, target: Path) -> Path:
    """A folder tree of the first ``n`` files (whole identity folders), as hard links."""
    files = sorted(p for p in images.rglob("*.jpg"))[:n]
    for path in files:
        out = target / path.relative_to(images)
        out.parent.mkdir(parents=True, exist_ok=True)
        if path.stat().st_dev == target.stat().st_dev:
            os.link(path, out)
        else:
            shutil.copyfile(path, out)
    return target


def main() -> None:
    """Print the floor, both curate variants and their ratio to the floor."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--images", type=int, default=7000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--shards", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="decode-once-") as tmp:
        source = link_subset(args.data / "cfp" / "Data" / "Images", args.images, Path(tmp))
        files = sorted(p for p in source.rglob("*.jpg"))
        print(f"{len(files)} CFP files, {args.workers} workers, {args.shards} shards")
        results = {"bare Pillow decode loop (floor)": {"stages": floor(files, args.workers)}}
        for squares in (False, True):
            name = "collect --squares + describe" if squares else "collect + describe (decodes again)"
            seconds = curate_run(source, args.workers, args.shards, squares)
            results[name] = {**seconds, "stages": seconds["collect"] + seconds["describe"]}
    base = results["bare Pillow decode loop (floor)"]["stages"]
    print("\n| what | collect s | describe s | stages s | images/s | x floor | cluster start s |")
    print("|---|---|---|---|---|---|---|")
    for name, s in results.items():
        cells = [f"{s[k]:.1f}" if k in s else "" for k in ("collect", "describe", "stages")]
        rate = len(files) / s["stages"]
        start = f"{s['cluster']:.1f}" if "cluster" in s else ""
        print(f"| {name} | {' | '.join(cells)} | {rate:,.0f} | {s['stages'] / base:.2f} | {start} |")


if __name__ == "__main__":
    main()
