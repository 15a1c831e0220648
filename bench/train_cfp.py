"""Does curation pay? ``curate train`` on CFP identities 001-250, tested on identities it never saw.

Evaluation folds: the CFP split folds are identity-disjoint; this script computes which folds' pairs only
involve identities 251-500 (folds 6-10 for both FF and FP) and runs the protocol on those five folds
(threshold chosen on four, tested on the fifth), beside the pretrained dlib model on the same pairs and on
the full 10 folds.

Training sets built from the same 3,500 images (14 per identity, aligned by the faces stage's aligner):

- ``clean``: the images as CFP labels them (a reference);
- ``noisy``: plus intruders, images of other training identities filed under the wrong name, 20% of the
  rows (each intruder is a copy of another identity's image, as a web search would return it);
- ``curated-<scorer>-<t>``: the noisy set after the real ``rank`` stage (:class:`curate.stages.rank.RankStage`
  on dlib descriptors) marked rows scoring below ``min_score = t`` as ``low_score``: the default
  self-trained per-identity ``classifier`` at 0.5, the same at a looser 0.2 (keeps more profile images),
  and the ``cluster`` scorer (DBSCAN chains profiles to the frontal images) at 0.5.

Each set trains the same small network (64x64 crops, a few epochs on one CPU thread) through
:func:`curate.train.loop.train`, and every model is evaluated through :func:`curate.evaluate.evaluate`.

    python bench/train_cfp.py --workdir runs/bench_cfp --epochs 8
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from curate.config import build_config  # noqa: E402
from curate.evaluate import evaluate, read_pairs  # noqa: E402
from curate.evaluate.run import CropCache, aligner_key, embed_images, faces_config, image_key, make_crops  # noqa: E402
from curate.manifest import shard_path, vectors_path, write_shard, write_vectors  # noqa: E402
from curate.names import identity_id  # noqa: E402
from curate.stage import local_context  # noqa: E402
from curate.stages.rank import RankConfig, RankStage  # noqa: E402
from curate.train.config import TrainConfig  # noqa: E402
from curate.train.loop import train  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "data"
TRAIN_IDS = range(1, 251)
TEST_IDS = range(251, 501)


def held_out_folds(data: Path, protocol: str) -> list[int]:
    """Folds whose every pair involves only identities 251-500 (computed from the split files)."""
    pairs = read_pairs(protocol, data / "cfp" / "Protocol", data / "cfp")
    ids = np.array([int(i) for i in pairs.identities])
    folds = []
    for fold in sorted(set(pairs.fold.tolist())):
        members = set(ids[pairs.left[pairs.fold == fold]]) | set(ids[pairs.right[pairs.fold == fold]])
        if members <= set(TEST_IDS):
            folds.append(fold)
    return folds


def training_images(data: Path) -> list[tuple[Path, int]]:
    """(image, CFP id) for identities 001-250: 10 frontal + 4 profile each."""
    root = data / "cfp" / "Data" / "Images"
    return [(p, int(p.parts[-3])) for i in TRAIN_IDS for p in sorted((root / f"{i:03d}").glob("*/*.jpg"))]


def base_table(
    data: Path,
    items: list[tuple[Path, int]],
    cache_dir: Path,
    rng: np.random.Generator,
    intruder_share: float,
) -> tuple[pa.Table, list[Path]]:
    """Manifest rows (crop_path from the aligner cache) with ``intruder_share`` of rows being intruders."""
    names = (data / "cfp" / "Data" / "list_name.txt").read_text().splitlines()
    config = faces_config(None)
    crops = CropCache(cache_dir / "crops" / aligner_key(config))
    make_crops([p for p, _ in items], config, crops)
    rows: list[tuple[Path, int, bool]] = [(p, cfp_id, False) for p, cfp_id in items]
    n_intruders = round(len(items) * intruder_share / (1.0 - intruder_share))
    owners = rng.choice(list(TRAIN_IDS), n_intruders)
    for owner in owners:
        while True:
            path, true_id = items[rng.integers(len(items))]
            if true_id != owner:
                break
        rows.append((path, int(owner), True))
    rows.sort(key=lambda r: (r[1], str(r[0]), r[2]))
    table = pa.table(
        {
            "image_id": [f"{image_key(p)}-{i}" for i, (p, _, _) in enumerate(rows)],
            "identity_id": [identity_id(names[c - 1]) for _, c, _ in rows],
            "identity_name": [names[c - 1] for _, c, _ in rows],
            "source": [str(p) for p, _, _ in rows],
            "path": [str(p) for p, _, _ in rows],
            "status": ["ok"] * len(rows),
            "reason": [""] * len(rows),
            "crop_path": [str(crops.root / image_key(p)[:2] / f"{image_key(p)}.png") for p, _, _ in rows],
            "intruder": [flag for _, _, flag in rows],
        }
    )
    return table, [p for p, _, _ in rows]


def curate_with_rank(
    workdir: Path, table: pa.Table, paths: list[Path], cache_dir: Path, scorer: str, min_score: float
) -> pa.Table:
    """Run the real rank stage on dlib descriptors of the noisy rows; returns its output manifest."""
    vectors = embed_images(paths, "dlib", cache_dir).vectors
    write_shard(table, shard_path(workdir, "describe", 0))
    write_vectors(vectors, vectors_path(workdir, "describe", "dlib", 0))
    stage = RankStage(
        build_config(
            RankConfig,
            {"embedder": "dlib", "descriptor_stage": "describe", "scorer": scorer, "min_score": min_score},
        )
    )
    return stage.run_all({0: table}, local_context(workdir, "rank", shard=None))[0]


def train_on(name: str, workdir: Path, stage: str, args: argparse.Namespace) -> tuple[Path, float]:
    """Train the small network on ``workdir/stage``; returns the exported model and its training seconds."""
    values = {
        "workdir": workdir,
        "manifest_stage": stage,
        "out": workdir / "models" / (name if args.seed == 0 else f"{name}-seed{args.seed}"),
        "backbone": "small",
        "input_size": 64,
        "embedding_dim": 128,
        "head": args.head,
        "scale": 32.0,
        "margin_cos": 0.35,
        "epochs": args.epochs,
        "batch_size": 64,
        "lr": 0.1,
        "warmup_epochs": 1.0,
        "threads": args.threads,
        "seed": args.seed,
        "progress": False,
        "resume": True,  # a re-run reuses finished models
    }
    result = train(build_config(TrainConfig, values))
    epochs = [json.loads(line) for line in (result.out / "metrics.jsonl").read_text().splitlines()]
    return result.model_dir, sum(epoch["seconds"] for epoch in epochs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--workdir", type=Path, default=REPO / "runs" / "bench_cfp")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--head", default="softmax")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--intruders", type=float, default=0.2)
    parser.add_argument(
        "--rank",
        nargs="+",
        default=["classifier@0.5", "classifier@0.2", "cluster@0.5"],
        help="rank stage settings to curate with, as scorer@min_score",
    )
    parser.add_argument("--seed", type=int, default=0, help="training seed (the data sets stay the same)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "train_cfp.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)  # one thread is faster than two on a busy 2-core machine
    cache = args.workdir / "cache"
    protocol_dir, cfp_root = args.data / "cfp" / "Protocol", args.data / "cfp"
    folds = {p: held_out_folds(args.data, p) for p in ("cfp-ff", "cfp-fp")}
    items = training_images(args.data)
    results: dict = {"date": date.today().isoformat(), "held_out_folds": folds, "epochs": args.epochs}
    results["seed"] = args.seed
    models = {"dlib": "dlib"}
    variants: list[tuple[str, float, str | None]] = [("clean", 0.0, None), ("noisy", args.intruders, None)]
    variants += [(f"curated-{spec.replace('@', '-')}", args.intruders, spec) for spec in args.rank]
    for name, share, spec in variants:
        table, paths = base_table(args.data, items, cache, np.random.default_rng(0), share)
        workdir = args.workdir / name
        if spec is not None:
            scorer, min_score = spec.split("@")
            table = curate_with_rank(workdir, table, paths, cache, scorer, float(min_score))
        write_shard(table, shard_path(workdir, "rank", 0))
        model_dir, seconds = train_on(name, workdir, "rank", args)
        models[name] = str(model_dir)
        ok = np.array(table.column("status").to_pylist()) == "ok"
        intruder = np.array(table.column("intruder").to_pylist())
        profile = np.array([Path(p).parts[-2] == "profile" for p in table.column("path").to_pylist()])
        results.setdefault("sets", {})[name] = {
            "rows_ok": int(ok.sum()),
            "genuine_profile_ok": int((ok & ~intruder & profile).sum()),
            "intruders_ok": int((ok & intruder).sum()),
            "intruders_total": int(intruder.sum()),
            "genuine_dropped": int((~ok & ~intruder).sum()),
            "train_seconds": round(seconds, 1),
        }
    for protocol in ("cfp-ff", "cfp-fp"):
        for name, model in models.items():
            report = evaluate(
                model,
                protocol_dir,
                cfp_root,
                protocol,
                cache_dir=cache,
                out_dir=args.workdir / "evaluate" / f"{protocol}-{name}-seed{args.seed}",
                folds=folds[protocol],
            )
            results.setdefault("held_out", {}).setdefault(protocol, {})[name] = report
        full = evaluate(
            "dlib",
            protocol_dir,
            cfp_root,
            protocol,
            cache_dir=cache,
            out_dir=args.workdir / "evaluate" / f"{protocol}-dlib-10fold",
        )
        results.setdefault("dlib_10_folds", {})[protocol] = full
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"held-out folds: {folds}")
    print("| model | protocol | accuracy | ROC AUC | TAR@FAR=1e-3 | rank-1 | rank-5 |")
    print("|---|---|---|---|---|---|---|")
    for protocol, reports in results["held_out"].items():
        for name, r in reports.items():
            ident = r["identification"]
            print(
                f"| {name} | {protocol} | {r['accuracy_mean']:.4f} ± {r['accuracy_std']:.4f} | "
                f"{r['roc_auc']:.4f} | {r['tar_at_far'].get('1e-3', float('nan')):.4f} | "
                f"{ident['rank1']:.4f} | {ident['rank5']:.4f} |"
            )
    print(json.dumps(results["sets"], indent=1))


if __name__ == "__main__":
    main()
