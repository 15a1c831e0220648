"""In-process vs LocalCluster: what a cluster costs to start, and where the executor's automatic choice lands.

On about 3,000 CFP photos (copied to a scratch folder), runs collect -> describe (pHash, dHash,
handcrafted) -> dedup three ways: every task in-process (``--workers 0``), the automatic choice (in-process
until a task's time says the rest is worth a cluster), and a LocalCluster of 2 workers from the start. It
also times a bare LocalCluster start plus its first trivial task. The figures behind
``curate.inprocess.DEFAULT_CLUSTER_COST`` and the switch rule come from this script.

Usage: ``python bench/inprocess.py [--data ../shared/data] [--identities 215] [--shards 8]``
"""

from __future__ import annotations

import argparse
import logging
import shutil
import tempfile
import time
from pathlib import Path

from curate.executor import ExecutorOptions
from curate.pipeline import StageSpec, run_specs

MODES = {
    "in-process (--workers 0)": ExecutorOptions(workers=0),
    "automatic (--workers 2)": ExecutorOptions(workers=2),
    "LocalCluster(2) always": ExecutorOptions(workers=2, inprocess=False),
}


def cluster_start_seconds() -> tuple[float, float]:
    """Seconds to start a LocalCluster of 2 workers, and to run its first trivial task."""
    from dask.distributed import Client, LocalCluster

    started = time.perf_counter()
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address="127.0.0.1:0")
    client = Client(cluster)
    up = time.perf_counter()
    client.submit(sum, [1, 2]).result()
    first = time.perf_counter()
    client.close()
    cluster.close()
    return up - started, first - up


def copy_tree(data: Path, identities: int) -> tuple[Path, int]:
    """The first ``identities`` CFP identity folders in a scratch folder, and how many images they hold."""
    dest = Path(tempfile.mkdtemp(prefix="curate-bench-inprocess-")) / "images"
    for folder in sorted((data / "cfp" / "Data" / "Images").iterdir())[:identities]:
        shutil.copytree(folder, dest / folder.name)
    return dest, sum(1 for _ in dest.rglob("*.jpg"))


def specs(images: Path) -> list[StageSpec]:
    """collect -> describe (hashes + handcrafted vectors of the whole photo) -> dedup."""
    return [
        StageSpec("collect", {"source": str(images)}),
        StageSpec("describe", {"embedders": ["handcrafted"]}, input_stage="collect"),
        StageSpec("dedup", {}, input_stage="describe"),
    ]


class _Switches(logging.Handler):
    """Counts the executor's moves to the cluster (logged by curate.inprocess)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        """Count one move."""
        self.count += record.getMessage().startswith("moving")


def main() -> None:
    """Print the cluster start cost, then stage seconds for each way of running."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--identities", type=int, default=215, help="CFP identities (14 photos each)")
    parser.add_argument("--shards", type=int, default=8)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("distributed").setLevel(logging.ERROR)
    images, count = copy_tree(args.data, args.identities)
    up, first = cluster_start_seconds()
    print(f"LocalCluster(2): start {up:.2f} s, first trivial task {first:.2f} s")
    print(f"\n{count} CFP photos, {args.shards} shards: seconds per stage")
    print(f"{'mode':28s} {'collect':>8s} {'describe':>9s} {'dedup':>7s} {'total':>7s}  moves to a cluster")
    switches = _Switches()
    logging.getLogger("curate.inprocess").addHandler(switches)
    logging.getLogger("curate.inprocess").setLevel(logging.INFO)
    try:
        for label, options in MODES.items():
            workdir = Path(tempfile.mkdtemp(prefix="curate-bench-inprocess-w-"))
            switches.count = 0
            started = time.perf_counter()
            results = run_specs(specs(images), workdir, options, shards=args.shards)
            total = time.perf_counter() - started
            cells = " ".join(f"{r.seconds:8.1f}" for r in results)
            moved = "all (cluster from the start)" if options.inprocess is False else str(switches.count)
            print(f"{label:28s} {cells} {total:7.1f}  {moved}", flush=True)
            shutil.rmtree(workdir)
    finally:
        shutil.rmtree(images.parent)


if __name__ == "__main__":
    main()
