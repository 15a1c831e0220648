"""Connected components of duplicate pairs: the old pure-Python union-find against scipy's csgraph.

Dedup groups near-duplicates as the connected components of its pair graph (``curate.search.clusters``).
This times, on the same pairs, a union-find in plain Python (union by size, path halving: what
``cluster_labels`` used to be) and ``scipy.sparse.csgraph.connected_components`` (what it is now, including
building the sparse matrix), checks that both give the same partition, and prints the times side by side.

Two pair graphs: ``random`` (pairs drawn uniformly over ``--items`` rows: many small components) and
``clustered`` (rows fall in groups of 2-40 near-copies, each pair inside a group, as dedup sees them).

    python bench/components.py --pairs 1000000 --items 1000000 --repeat 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from curate.search.clusters import cluster_labels


def union_find_labels(n: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """The union-find ``cluster_labels`` used before it moved to scipy (plain lists, one pair at a time)."""
    parent = list(range(n))
    size = [1] * n

    def find(item: int) -> int:
        while parent[item] != item:
            parent[item] = parent[parent[item]]
            item = parent[item]
        return item

    for a, b in zip(i.tolist(), j.tolist(), strict=True):
        root_a, root_b = find(a), find(b)
        if root_a == root_b:
            continue
        if size[root_a] < size[root_b]:
            root_a, root_b = root_b, root_a
        parent[root_b] = root_a
        size[root_a] += size[root_b]
    return np.array([find(item) for item in range(n)], dtype=np.int64)


def random_pairs(n: int, m: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``m`` pairs drawn uniformly over ``n`` rows."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, n, m), rng.integers(0, n, m)


def clustered_pairs(n: int, m: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``m`` pairs, each between two rows of one group of 2-40 consecutive (then shuffled) rows."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(2, 41, n // 2)
    starts = np.concatenate([[0], np.cumsum(sizes)])
    starts = starts[starts < n]
    group = rng.integers(0, len(starts) - 1, m)
    width = np.minimum(starts[group + 1], n) - starts[group]
    i = starts[group] + rng.integers(0, width)
    j = starts[group] + rng.integers(0, width)
    relabel = rng.permutation(n)
    return relabel[i], relabel[j]


def canonical(labels: np.ndarray) -> np.ndarray:
    """Each row's label replaced by the smallest row index of its component (comparable across methods)."""
    first = np.full(labels.max() + 1, len(labels), dtype=np.int64)
    np.minimum.at(first, labels, np.arange(len(labels)))
    return first[labels]


def timed(fn: object, *args: object, repeat: int) -> tuple[float, np.ndarray]:
    """Median wall seconds over ``repeat`` runs, and the last result."""
    seconds = []
    result = None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn(*args)  # type: ignore[operator]
        seconds.append(time.perf_counter() - start)
    assert result is not None
    return statistics.median(seconds), result


def main() -> None:
    """Run both methods on both graphs and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=1_000_000)
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(f"{args.pairs:,} pairs over {args.items:,} rows, median of {args.repeat} runs (wall seconds)\n")
    print("| graph | components | union-find (Python) s | scipy csgraph s | speed-up | same partition |")
    print("|---|---|---|---|---|---|")
    for name, make in (("random", random_pairs), ("clustered", clustered_pairs)):
        i, j = make(args.items, args.pairs, args.seed)
        uf_s, uf = timed(union_find_labels, args.items, i, j, repeat=args.repeat)
        sp_s, sp = timed(cluster_labels, args.items, i, j, repeat=args.repeat)
        same = bool(np.array_equal(canonical(uf), canonical(sp)))
        n_components = len(np.unique(sp))
        print(f"| {name} | {n_components:,} | {uf_s:.3f} | {sp_s:.3f} | {uf_s / sp_s:.1f}x | {same} |")
        if not same:
            raise SystemExit(f"{name}: the two methods disagree")


if __name__ == "__main__":
    main()
