"""One near-duplicate method on the first N files of a benchmark set, in a fresh process; labels to JSON.

``bench/neardup.py`` starts this once per method and size, so that each method's time and memory are its
own (imports included) and nothing is shared between methods. Output: ``{"labels": {file name: group}}``
(curate, imagededup groups) plus ``{"pairs": [[a, b], ...]}`` for imagededup's pairs as returned.

    python bench/neardup_methods.py curate --size 10000 --out labels.json
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import resource
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from neardup_data import Item, build_set, linked_folder

from curate.config import build_config
from curate.manifest import shard_of
from curate.record import BASE_COLUMNS
from curate.search import cluster_labels
from curate.stage import local_context
from curate.stages.dedup import DedupStage
from curate.stages.describe import DescribeStage
from curate.stages.ingest import IngestConfig, IngestStage

OUT = Path(__file__).resolve().parent / "out" / "neardup"


def planned(items: list[Item], n_shards: int) -> dict[int, pa.Table]:
    """The files as collect's planned rows (one identity per person), sharded as collect shards them."""
    rows: dict[int, list[dict]] = {}
    for item in items:
        identity = f"person-{item.identity}"
        rows.setdefault(shard_of(identity, n_shards), []).append(
            {
                "image_id": None,
                "identity_id": identity,
                "identity_name": identity,
                "source": item.path.name,
                "path": str(item.path),
                "status": "ok",
                "reason": "",
            }
        )
    schema = pa.schema(list(BASE_COLUMNS.items()))
    return {shard: pa.Table.from_pylist(rows.get(shard, []), schema=schema) for shard in range(n_shards)}


def collect_and_describe(job: tuple[int, pa.Table, str, int, dict]) -> tuple[int, pa.Table]:
    """collect (read, sha256, safe decode, squares) then describe from the squares, for one shard."""
    shard, table, workdir, n_shards, settings = job
    collected = IngestStage(IngestConfig(source=Path("."), squares=True)).run_shard(
        table, local_context(Path(workdir), "collect", shard, n_shards)
    )
    stage = DescribeStage(build_config(DescribeStage.Config, settings))
    return shard, stage.run_shard(collected, local_context(Path(workdir), "describe", shard, n_shards))


def describe_all(tables: dict[int, pa.Table], workdir: Path, workers: int, settings: dict) -> dict:
    """collect + describe over every shard, a process per worker."""
    jobs = [(shard, table, str(workdir), len(tables), settings) for shard, table in tables.items()]
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        return dict(pool.imap_unordered(collect_and_describe, jobs))


def dedup_labels(described: dict[int, pa.Table], workdir: Path, settings: dict) -> dict[str, int]:
    """The dedup step; file name -> group, joining rows curate calls the same image (cluster or bytes)."""
    stage = DedupStage(build_config(DedupStage.Config, settings))
    result = stage.run_all(described, local_context(workdir, "dedup", None, len(described)))
    table = pa.concat_tables(t.select(["source", "image_id", "dup_cluster"]) for t in result.values())
    names = table.column("source").to_pylist()
    keys: dict[object, int] = {}
    links: list[tuple[int, int]] = []
    for row, (image_id, cluster) in enumerate(
        zip(table.column("image_id").to_pylist(), table.column("dup_cluster").to_pylist(), strict=True)
    ):
        for key in (("bytes", image_id), ("cluster", cluster)):
            if key[1] is not None:
                links.append((keys.setdefault(key, row), row))
    i, j = (np.array(side, dtype=np.int64) for side in zip(*links, strict=True)) if links else ([], [])
    labels = cluster_labels(len(names), np.asarray(i, np.int64), np.asarray(j, np.int64))
    return {name: int(label) for name, label in zip(names, labels, strict=True)}


def run_curate(items: list[Item], workdir: Path, workers: int, shards: int, dedup: dict) -> dict:
    """collect + describe + dedup at default settings (``dedup`` overrides)."""
    start, cpu_start = time.perf_counter(), _cpu()
    described = describe_all(planned(items, shards), workdir, workers, {"embedders": ["handcrafted"]})
    middle, cpu_middle = time.perf_counter(), _cpu()
    labels = dedup_labels(described, workdir, dedup)
    seconds = {"collect+describe": middle - start, "dedup": time.perf_counter() - middle}
    seconds |= {"collect+describe CPU": cpu_middle - cpu_start, "dedup CPU": _cpu() - cpu_middle}
    return {"labels": labels, "seconds": seconds}


def _cpu() -> float:
    """CPU seconds of this process and its finished children (the pool's workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def run_imagededup(folder: Path, max_bits: int, workers: int) -> dict:
    """imagededup PHash ``find_duplicates`` on the folder: its groups (components) and its pairs."""
    start = time.perf_counter()
    from imagededup.methods import PHash

    imported = time.perf_counter()
    found = PHash(verbose=False).find_duplicates(
        image_dir=str(folder),
        max_distance_threshold=max_bits,
        num_enc_workers=workers,
        num_dist_workers=workers,
    )
    names = sorted(found)
    position = {name: k for k, name in enumerate(names)}
    pairs = sorted({tuple(sorted((a, b))) for a, others in found.items() for b in others})
    index = np.array([(position[a], position[b]) for a, b in pairs], dtype=np.int64).reshape(-1, 2)
    groups = cluster_labels(len(names), index[:, 0], index[:, 1])
    seconds = {"import": imported - start, "find_duplicates": time.perf_counter() - imported}
    return {
        "labels": {name: int(groups[k]) for k, name in enumerate(names)},
        "pairs": pairs,
        "seconds": seconds,
    }


def main() -> None:
    """Run one method and write its output JSON."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("method", choices=["curate", "imagededup"])
    parser.add_argument("--size", type=int, required=True)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--offset", type=int, default=0, help="skip this many files of the set")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--shards", type=int, default=16)
    parser.add_argument("--dedup", type=json.loads, default={}, help="dedup settings as JSON")
    parser.add_argument("--imagededup-bits", type=int, default=10)
    parser.add_argument("--folder", type=Path, help="imagededup: the folder of the files")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    started = psutil.Process().create_time()
    logging.basicConfig(level=logging.WARNING)
    startup = time.time() - started  # interpreter and curate imports
    if args.method == "curate":
        items = build_set(args.data / "cfp", OUT, args.offset + args.size, args.seed)[args.offset :]
        workdir = args.out.with_suffix(".work")
        result = run_curate(items, workdir, args.workers, args.shards, args.dedup)
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        folder = args.folder or linked_folder(
            build_set(args.data / "cfp", OUT, args.offset + args.size, args.seed)[args.offset :],
            OUT / (f"seed{args.seed}-linked-{args.size}" + (f"+{args.offset}" if args.offset else "")),
        )
        result = run_imagededup(folder, args.imagededup_bits, args.workers)
    result["seconds"] = {"start-up": startup, **result["seconds"]}
    args.out.write_text(json.dumps(result))


if __name__ == "__main__":
    main()
