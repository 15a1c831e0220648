"""Does curation pay? ``curate train`` on CFP identities 001-250, tested on identities it never saw.

Evaluation folds: the CFP split folds are identity-disjoint; this script computes which folds' pairs only
involve identities 251-500 (folds 6-10 for both FF and FP) and runs the protocol on those five folds
(threshold chosen on four, tested on the fifth), beside the pretrained dlib model on the same pairs and on
the full 10 folds.

Training sets built from the same images (the first ``--identities`` of 001-250, 14 images each, aligned
by the faces stage's default aligner, with its ``yaw_deg`` from :mod:`cfp_landmarks`; an image without a
face is a ``no_face`` row, in no set):

- ``clean``: the images as CFP labels them (a reference);
- ``noisy``: plus intruders, images of other training identities filed under the wrong name, 20% of the
  rows (each intruder is a copy of another identity's image, as a web search would return it);
- ``curated``: the noisy set through the real stages in pipeline order: ``describe`` (hashes, handcrafted
  vectors, thumbnails; the dlib vectors come from the evaluation cache) -> ``rank`` (stage defaults, dlib;
  ``--rank key=value`` overrides one, with ``--tag`` naming the run) -> ``dedup`` (stage defaults);
- ``clean-curated``: the clean set through the same stages: what curation costs when the labels are right.

Each set trains the same small network (64x64 crops, a few epochs on one CPU thread) with ``curate train``'s
defaults (:class:`curate.train.config.TrainConfig`; ``--set key=value`` overrides one) for every seed in
``--seeds``, and every model is evaluated through :func:`curate.evaluate.evaluate`.

    nice python bench/train_cfp.py --epochs 8 --seeds 0 1
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

from cfp_landmarks import CfpLandmarks  # noqa: E402

from curate.config import build_config  # noqa: E402
from curate.evaluate import evaluate, read_pairs  # noqa: E402
from curate.evaluate.run import CropCache, aligner_key, embed_images, faces_config, image_key, make_crops  # noqa: E402
from curate.manifest import shard_path, vectors_path, write_shard, write_vectors  # noqa: E402
from curate.names import identity_id  # noqa: E402
from curate.stage import local_context  # noqa: E402
from curate.stages.dedup import DedupStage  # noqa: E402
from curate.stages.describe import DescribeStage  # noqa: E402
from curate.stages.rank import RankStage  # noqa: E402
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


def training_images(data: Path, identities: int) -> list[tuple[Path, int]]:
    """(image, CFP id) for the first ``identities`` of 001-250: 10 frontal + 4 profile each."""
    root = data / "cfp" / "Data" / "Images"
    ids = TRAIN_IDS[:identities]
    return [(p, int(p.parts[-3])) for i in ids for p in sorted((root / f"{i:03d}").glob("*/*.jpg"))]


def base_table(
    data: Path,
    items: list[tuple[Path, int]],
    cache_dir: Path,
    rng: np.random.Generator,
    intruder_share: float,
) -> tuple[pa.Table, list[Path]]:
    """Manifest rows with ``intruder_share`` of rows being intruders, as the faces stage leaves them.

    ``crop_path`` comes from the evaluation crop cache (the faces stage's default aligner) and ``yaw_deg``
    from :mod:`cfp_landmarks` (the same aligner's landmarks); an image where the detector finds no face is
    a ``no_face`` row, as in the pipeline, so it is in no training set.
    """
    names = (data / "cfp" / "Data" / "list_name.txt").read_text().splitlines()
    config = faces_config(None)
    crops = CropCache(cache_dir / "crops" / aligner_key(config))
    make_crops([p for p, _ in items], config, crops)
    marks = CfpLandmarks([p for p, _ in items])
    rows: list[tuple[Path, int, bool]] = [(p, cfp_id, False) for p, cfp_id in items]
    n_intruders = round(len(items) * intruder_share / (1.0 - intruder_share))
    owners = rng.choice(sorted({cfp_id for _, cfp_id in items}), n_intruders)
    for owner in owners:
        while True:
            path, true_id = items[rng.integers(len(items))]
            if true_id != owner:
                break
        rows.append((path, int(owner), True))
    rows.sort(key=lambda r: (r[1], str(r[0]), r[2]))
    found = [crops.record(image_key(p))["source"] == "detected" for p, _, _ in rows]
    table = pa.table(
        {
            "image_id": [f"{image_key(p)}-{i}" for i, (p, _, _) in enumerate(rows)],
            "identity_id": [identity_id(names[c - 1]) for _, c, _ in rows],
            "identity_name": [names[c - 1] for _, c, _ in rows],
            "source": [str(p) for p, _, _ in rows],
            "path": [str(p) for p, _, _ in rows],
            "status": ["ok" if face else "no_face" for face in found],
            "reason": ["" if face else "no face found" for face in found],
            "crop_path": [
                str(crops.root / image_key(p)[:2] / f"{image_key(p)}.png") if face else None
                for (p, _, _), face in zip(rows, found, strict=True)
            ],
            "yaw_deg": pa.array([marks.yaw(p) for p, _, _ in rows], pa.float32()),
            "intruder": [flag for _, _, flag in rows],
        }
    )
    return table, [p for p, _, _ in rows]


def curate(
    workdir: Path, table: pa.Table, paths: list[Path], cache_dir: Path, rank: dict[str, object]
) -> pa.Table:
    """describe -> rank -> dedup with stage defaults (dlib vectors from the cache; ``rank``: overrides of
    the rank stage's settings); the dedup manifest."""
    describe = DescribeStage(build_config(DescribeStage.Config, {"embedders": ["handcrafted"]}))
    described = describe.run_shard(table, local_context(workdir, "describe", shard=0))
    write_vectors(
        embed_images(paths, "dlib", cache_dir).vectors, vectors_path(workdir, "describe", "dlib", 0)
    )
    write_shard(described, shard_path(workdir, "describe", 0))
    ranked = RankStage(build_config(RankStage.Config, rank)).run_all(
        {0: described}, local_context(workdir, "rank", shard=None)
    )
    return DedupStage(build_config(DedupStage.Config, {})).run_all(
        ranked, local_context(workdir, "dedup", shard=None)
    )[0]


def parse_overrides(pairs: list[str]) -> dict[str, object]:
    """``key=value`` training overrides; values are read as JSON when they parse (numbers, booleans)."""
    values: dict[str, object] = {}
    for pair in pairs:
        key, _, text = pair.partition("=")
        try:
            values[key] = json.loads(text)
        except json.JSONDecodeError:
            values[key] = text
    return values


def train_on(name: str, workdir: Path, stage: str, seed: int, args: argparse.Namespace) -> tuple[Path, dict]:
    """Train the small network on ``workdir/stage`` with the defaults; the exported model and last metrics."""
    values = {
        "workdir": workdir,
        "manifest_stage": stage,
        "out": workdir / "models" / f"{name}{args.tag}-seed{seed}",
        "backbone": "small",
        "input_size": 64,
        "embedding_dim": 128,
        "epochs": args.epochs,
        "threads": args.threads,
        "seed": seed,
        "progress": False,
        "resume": True,  # a re-run reuses finished models
        **parse_overrides(args.set),
    }
    result = train(build_config(TrainConfig, values))
    epochs = [json.loads(line) for line in (result.out / "metrics.jsonl").read_text().splitlines()]
    last = {k: epochs[-1].get(k) for k in ("train_acc", "loss")}
    return result.model_dir, {**last, "seconds": round(sum(e["seconds"] for e in epochs), 1)}


def set_figures(table: pa.Table) -> dict[str, object]:
    """What a training set holds: ok rows, intruders kept, genuine images dropped (by status and pose),
    genuine profiles kept."""
    status = np.array(table.column("status").to_pylist())
    ok = status == "ok"
    intruder = np.array(table.column("intruder").to_pylist())
    profile = np.array([Path(p).parts[-2] == "profile" for p in table.column("path").to_pylist()])
    no_face = status == "no_face"
    dropped = ~ok & ~intruder & ~no_face
    return {
        "rows_ok": int(ok.sum()),
        "genuine_profile_ok": int((ok & ~intruder & profile).sum()),
        "genuine_profiles": int((~intruder & profile).sum()),
        "intruders_ok": int((ok & intruder).sum()),
        "intruders_total": int(intruder.sum()),
        "genuine_no_face": int((~intruder & no_face).sum()),
        "genuine_dropped": int(dropped.sum()),
        "genuine_dropped_by": {
            f"{s}/{'profile' if p else 'frontal'}": int((dropped & (status == s) & (profile == p)).sum())
            for s in sorted(set(status[dropped].tolist()))
            for p in (False, True)
        },
    }


def build_sets(args: argparse.Namespace, cache: Path) -> dict[str, tuple[Path, pa.Table]]:
    """Each training set's workdir and manifest (written as the ``train`` stage of that workdir)."""
    items = training_images(args.data, args.identities)
    sets = {}
    for name in args.variants:
        share = args.intruders if name in ("noisy", "curated") else 0.0
        table, paths = base_table(args.data, items, cache, np.random.default_rng(0), share)
        workdir = args.workdir / f"{name}-{args.identities}{args.tag if args.rank else ''}"
        if name.endswith("curated"):
            table = curate(workdir, table, paths, cache, parse_overrides(args.rank))
        write_shard(table, shard_path(workdir, "train", 0))
        sets[name] = (workdir, table)
    return sets


def markdown(results: dict) -> str:
    """Held-out accuracy per model and protocol: each seed, the mean, and the mean ROC AUC."""
    lines = [
        "| model | protocol | accuracy per seed (%) | mean (%) | ROC AUC (mean) |",
        "|---|---|---|---|---|",
    ]
    for protocol, models in results["held_out"].items():
        for name, runs in models.items():
            accs = [100 * r["accuracy_mean"] for r in runs.values()]
            aucs = [r["roc_auc"] for r in runs.values()]
            lines.append(
                f"| {name} | {protocol} | {' / '.join(f'{a:.2f}' for a in accs)} | {np.mean(accs):.2f} "
                f"| {np.mean(aucs):.4f} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--workdir", type=Path, default=REPO / "runs" / "bench_cfp")
    parser.add_argument("--identities", type=int, default=250, help="train on the first N of ids 1-250")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--intruders", type=float, default=0.2)
    parser.add_argument("--variants", nargs="+", default=["clean", "noisy", "curated", "clean-curated"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="training seeds")
    parser.add_argument("--set", nargs="*", default=[], help="training overrides, key=value")
    parser.add_argument("--rank", nargs="*", default=[], help="rank stage overrides, key=value")
    parser.add_argument("--tag", default="", help="suffix of the model folders (e.g. for --set trials)")
    parser.add_argument("--no-dlib", action="store_true", help="skip the pretrained dlib reference")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "train_cfp.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)  # one thread is faster than two on a busy 2-core machine
    cache = args.workdir / "cache"
    protocol_dir, cfp_root = args.data / "cfp" / "Protocol", args.data / "cfp"
    folds = {p: held_out_folds(args.data, p) for p in ("cfp-ff", "cfp-fp")}
    results: dict = {"date": date.today().isoformat(), "held_out_folds": folds}
    results["args"] = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    models: dict[str, dict[int, str]] = {} if args.no_dlib else {"dlib": {0: "dlib"}}
    for name, (workdir, table) in build_sets(args, cache).items():
        results.setdefault("sets", {})[name] = set_figures(table)
        for seed in args.seeds:
            model_dir, figures = train_on(name, workdir, "train", seed, args)
            models.setdefault(name, {})[seed] = str(model_dir)
            results.setdefault("training", {}).setdefault(name, {})[seed] = figures
    for protocol in ("cfp-ff", "cfp-fp"):
        for name, by_seed in models.items():
            for seed, model in by_seed.items():
                report = evaluate(
                    model,
                    protocol_dir,
                    cfp_root,
                    protocol,
                    cache_dir=cache,
                    out_dir=args.workdir / "evaluate" / f"{protocol}-{name}{args.tag}-seed{seed}",
                    folds=folds[protocol],
                )
                results.setdefault("held_out", {}).setdefault(protocol, {}).setdefault(name, {})[seed] = (
                    report
                )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"held-out folds: {folds}")
    print(markdown(results))
    print(json.dumps({"sets": results["sets"], "training": results.get("training")}, indent=1))


if __name__ == "__main__":
    main()
