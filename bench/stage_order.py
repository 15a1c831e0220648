"""Rank before or after near-duplicate removal? Both orders on one synthetic collection with known truth.

VGG-Face ranked each identity's images and kept the best before removing near-duplicates, so a cluster of
copies keeps its best-ranked member; the other order removes copies first (keeping the largest) and ranks
what is left. Both run the real stages (collect, exact, faces, describe, then rank/dedup in each order) on
one ``curate synth`` collection, and are scored against its ground truth (:mod:`curate.groundtruth`), plus
the figures the order decides: planted (original, copy) pairs left with both kept (a duplicate in the
training set), and of those with one kept, how often it is the original rather than the degraded copy.

Run: ``python bench/stage_order.py [--identities 40] [--images 24] [--seed 3] [--embedder dlib]``
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import pandas as pd

from curate import manifest
from curate.demo import demo_pipeline_data
from curate.executor import ExecutorOptions
from curate.groundtruth import curation_figures, join_truth
from curate.pipeline import StageSpec, parse_pipeline, run_specs
from curate.record import Status
from curate.synth import SynthConfig, synthesize

ORDERS = {"rank, dedup (VGG-Face)": ("rank", "dedup"), "dedup, rank": ("dedup", "rank")}


def _specs(images: Path, order: tuple[str, str], embedder: str) -> list[StageSpec]:
    """The demo pipeline on ``images``, ranking on ``embedder``, its last two stages in ``order``."""
    data = demo_pipeline_data()
    data["describe"]["embedders"] = sorted({"handcrafted", embedder})
    data["rank"]["embedder"] = embedder
    data["stages"] = ["collect", "exact", "faces", "describe", *order]
    data["collect"]["source"] = str(images.resolve())
    return parse_pipeline(data).stages


def _pairs(final: pd.DataFrame, truth: pd.DataFrame, images: Path) -> dict[str, int]:
    """Planted (original, copy) pairs by outcome: both kept (a duplicate left), one kept, which one."""
    joined = join_truth(final, truth, images).set_index("file")
    ok = joined["status"] == Status.OK.value
    counts = {"both": 0, "one": 0, "original": 0}
    for _, row in joined[joined["kind"] == "near_duplicate"].iterrows():
        original, copy = row["duplicate_of"], row.name
        if original not in joined.index:
            continue
        if ok[original] and ok[copy]:
            counts["both"] += 1
        elif ok[original] or ok[copy]:
            counts["one"] += 1
            counts["original"] += bool(ok[original])
    return counts


def main() -> None:
    """Run both orders and print one table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--identities", type=int, default=40)
    parser.add_argument("--images", type=int, default=24)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument(
        "--embedder", default="handcrafted", help="vectors rank scores with (handcrafted, dlib)"
    )
    parser.add_argument("--out", type=Path, default=Path("bench/out/stage_order"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    synth = args.out / "synth"
    if not (synth / "truth.parquet").exists():
        config = SynthConfig(identities=args.identities, images_per_identity=args.images, seed=args.seed)
        synthesize(config, synth, overwrite=synth.exists())
    truth = pd.read_parquet(synth / "truth.parquet")
    print(
        "| order | purity after | true kept | intruders removed | pairs both kept | one kept: original | s |"
    )
    print("|---|---|---|---|---|---|---|")
    for label, order in ORDERS.items():
        workdir = (args.out / f"{args.embedder}_{'_'.join(order)}").resolve()
        images = synth / "images"
        started = time.perf_counter()
        run_specs(_specs(images, order, args.embedder), workdir, ExecutorOptions(workers=1), shards=2)
        seconds = time.perf_counter() - started
        collected = manifest.read_stage(workdir, "collect").to_pandas()
        final = manifest.read_stage(workdir, order[-1]).to_pandas()
        figures = curation_figures(collected, final, truth, images)
        pairs = _pairs(final, truth, images)
        print(
            f"| {label} | {figures['purity_after']} | {figures['true_images_kept']} | "
            f"{figures['intruders']['share_removed']} | {pairs['both']} | "
            f"{pairs['original']}/{pairs['one']} | {seconds:.0f} |"
        )


if __name__ == "__main__":
    main()
