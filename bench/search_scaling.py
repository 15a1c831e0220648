"""Scaling of the all-pairs threshold search (curate.search) on CPU: time and peak memory per N.

Each N runs in a fresh subprocess so that ``ru_maxrss`` (peak resident memory; tracemalloc cannot see
faiss's C++ allocations) belongs to that N alone. Data: N random unit vectors (d = 128) of which 1% are
noisy copies of another row (cosine about 0.95), searched for all pairs with cosine >= 0.9; and N random
64-bit codes (1% copies with 0-6 bits flipped) searched for all pairs within 8 bits.

    python bench/search_scaling.py --sizes 10000 50000 200000
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DIM = 128


def vectors(n: int, seed: int = 0) -> np.ndarray:
    """Random unit rows, 1% of them near copies of another row."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, DIM), dtype=np.float32)
    copies = rng.choice(n, n // 100, replace=False)
    x[copies] = x[rng.integers(0, n, len(copies))] + rng.normal(0, 0.2, (len(copies), DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def codes(n: int, seed: int = 1) -> np.ndarray:
    """Random 64-bit codes, 1% of them copies of another with up to 6 bits flipped."""
    rng = np.random.default_rng(seed)
    c = rng.integers(np.iinfo(np.int64).min, np.iinfo(np.int64).max, n, dtype=np.int64)
    copies = rng.choice(n, n // 100, replace=False)
    flips = np.zeros(len(copies), dtype=np.uint64)
    for _ in range(6):
        flips |= (rng.random(len(copies)) < 0.5).astype(np.uint64) << np.uint64(rng.integers(0, 64))
    c[copies] = c[rng.integers(0, n, len(copies))] ^ flips.view(np.int64)
    return c


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def measure(n: int, index: str) -> dict:
    """One size, in this process: data, then the float search, then the binary search."""
    from curate.search import hamming_pairs, similar_pairs

    x, c = vectors(n), codes(n)
    base = _peak_mb()
    started, cpu = time.perf_counter(), time.process_time()
    found = similar_pairs(x, 0.9, index=index, mode="range")
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
    after_float = _peak_mb()
    recall = None
    if index == "ivf":  # how many of the exact (flat) pairs the approximate index found
        exact = similar_pairs(x, 0.9, index="flat", mode="range").as_set()
        recall = len(exact & found.as_set()) / max(len(exact), 1)
    started = time.perf_counter()
    binary = hamming_pairs(c, 8, mode="range")
    return {
        "recall_vs_flat": recall,
        "n": n,
        "index": index,
        "pairs": len(found),
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "descriptor_mb": x.nbytes / 2**20,
        "peak_before_mb": base,
        "peak_after_mb": after_float,
        "binary_pairs": len(binary),
        "binary_seconds": time.perf_counter() - started,
        "peak_end_mb": _peak_mb(),
    }


def main() -> None:
    """Run each size in a fresh subprocess and print one table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000, 200_000])
    parser.add_argument("--index", choices=["flat", "ivf"], default="flat")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # internal: measure one size, print JSON
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.index)))
        return
    print(
        f"{'N':>8s} {'pairs':>7s} {'wall s':>8s} {'cpu s':>8s} {'s / (N/10k)^2':>14s} {'vectors MB':>10s} "
        f"{'peak MB':>8s} {'search +MB':>10s} {'binary s':>9s} {'recall':>7s}"
    )
    for n in args.sizes:
        run = subprocess.run(
            [sys.executable, __file__, "--one", str(n), "--index", args.index],
            capture_output=True,
            text=True,
            check=True,
        )
        r = json.loads(run.stdout.strip().splitlines()[-1])
        print(
            f"{r['n']:8d} {r['pairs']:7d} {r['seconds']:8.1f} {r['cpu_seconds']:8.1f} "
            f"{r['seconds'] / (r['n'] / 10_000) ** 2:14.2f} {r['descriptor_mb']:10.1f} "
            f"{r['peak_after_mb']:8.0f} "
            f"{r['peak_after_mb'] - r['peak_before_mb']:10.1f} {r['binary_seconds']:9.2f} "
            f"{'exact' if r['recall_vs_flat'] is None else format(r['recall_vs_flat'], '.4f'):>7s}",
            flush=True,
        )


if __name__ == "__main__":
    main()
