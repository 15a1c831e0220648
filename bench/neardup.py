"""Near-duplicate benchmark on real CFP photos: curate describe + dedup against imagededup's PHash / DHash.

Whole identities of CFP (Sengupta et al., WACV 2016) are taken in a seeded order; every photo of an
identity is an original, so the other photos of the same person (often from the same event) are the hard
negatives. Each original gets 1-3 transformed copies (resize, low-quality JPEG, crop of a few percent,
brightness/colour shift, text overlay, border, greyscale). A predicted pair is correct when both files come
from the same original. Pairs are all pairs inside a predicted group (curate: a duplicate cluster; imagededup:
its duplicate lists closed into connected components, and also its pairs as returned), compared with all pairs
inside each planted group.

    python bench/neardup.py --images 10000 --data ../shared/data
    python bench/neardup.py --images 10000 --sweep      # the threshold grid behind the defaults

Results and the machine they were measured on: ``bench/results/dedup.md``; method: ``docs/dedup.md``.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import logging
import multiprocessing
import random
import resource
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
from PIL import Image, ImageDraw, ImageEnhance, ImageFont, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from curate.config import build_config
from curate.manifest import shard_of
from curate.record import BASE_COLUMNS
from curate.search import cluster_labels
from curate.stage import local_context
from curate.stages.dedup import DedupStage
from curate.stages.describe import DescribeStage

logger = logging.getLogger("bench.neardup")

N_SHARDS = 8
# CFP itself holds the same photo more than once (re-crops, colour edits, mirror images) and a few burst
# frames. Pairs of CFP originals that a method links are not judged when they are listed here: labelled
# by eye as the same photo or too close to call. Labelled: every within-identity pair among the first 250
# identities of the seed-0 order with handcrafted cosine >= 0.78, pHash <= 10 bits, or flagged by
# imagededup's PHash at <= 12 bits (303 pairs: 98 same, 14 too close to call, 191 different photos; the
# different ones stay negatives). Unlisted pairs count as negatives.
UNJUDGED = """
    003/frontal/06~003/frontal/10 010/frontal/03~010/frontal/05 013/frontal/02~013/frontal/07
    013/frontal/08~013/frontal/09 014/frontal/04~014/frontal/09 015/frontal/07~015/frontal/08
    016/frontal/01~016/frontal/05 017/frontal/03~017/frontal/10 023/frontal/03~023/frontal/09
    024/profile/02~024/profile/03 031/frontal/01~031/frontal/04 037/frontal/06~037/frontal/09
    038/frontal/03~038/frontal/10 047/frontal/03~047/frontal/10 058/frontal/05~058/frontal/10
    059/frontal/05~059/frontal/10 062/frontal/01~062/frontal/03 077/profile/01~077/profile/03
    093/frontal/04~093/frontal/08 095/frontal/05~095/frontal/06 095/frontal/06~095/frontal/08
    096/frontal/02~096/frontal/08 105/frontal/02~105/frontal/07 105/profile/02~105/profile/03
    119/frontal/01~119/frontal/07 119/frontal/04~119/frontal/09 121/frontal/02~121/frontal/06
    128/frontal/03~128/frontal/08 137/frontal/01~137/frontal/02 138/frontal/02~138/frontal/04
    139/frontal/01~139/frontal/07 139/profile/01~139/profile/03 140/frontal/09~140/frontal/10
    141/profile/02~141/profile/03 142/frontal/06~142/frontal/07 142/frontal/09~142/frontal/10
    143/frontal/02~143/frontal/08 146/frontal/01~146/frontal/08 146/frontal/05~146/frontal/09
    154/frontal/05~154/frontal/09 158/frontal/03~158/frontal/09 163/frontal/04~163/frontal/10
    165/frontal/02~165/frontal/08 165/frontal/04~165/frontal/10 172/frontal/01~172/frontal/02
    176/frontal/07~176/frontal/09 181/frontal/08~181/frontal/09 186/frontal/05~186/frontal/10
    187/frontal/02~187/frontal/10 195/frontal/02~195/frontal/06 195/frontal/02~195/frontal/10
    195/frontal/06~195/frontal/10 202/frontal/05~202/frontal/10 202/profile/02~202/profile/04
    211/frontal/04~211/frontal/08 211/frontal/06~211/frontal/09 213/frontal/02~213/frontal/05
    213/frontal/06~213/frontal/10 217/frontal/02~217/frontal/03 217/frontal/02~217/frontal/05
    217/frontal/02~217/frontal/07 217/frontal/03~217/frontal/05 217/frontal/03~217/frontal/07
    217/frontal/03~217/frontal/08 217/frontal/05~217/frontal/07 217/frontal/05~217/frontal/08
    217/frontal/07~217/frontal/08 223/frontal/04~223/frontal/10 225/profile/02~225/profile/03
    229/frontal/07~229/frontal/08 236/frontal/01~236/frontal/07 237/frontal/04~237/frontal/05
    239/frontal/02~239/frontal/04 242/frontal/01~242/frontal/03 245/frontal/05~245/frontal/07
    265/frontal/03~265/frontal/06 266/frontal/08~266/frontal/10 269/frontal/04~269/frontal/07
    276/frontal/05~276/frontal/10 286/frontal/05~286/frontal/10 294/frontal/06~294/frontal/08
    299/frontal/09~299/frontal/10 313/frontal/01~313/frontal/08 321/frontal/07~321/frontal/09
    322/profile/02~322/profile/04 327/frontal/06~327/frontal/07 336/profile/03~336/profile/04
    337/frontal/02~337/frontal/04 342/frontal/02~342/frontal/04 345/frontal/01~345/frontal/07
    346/frontal/03~346/frontal/07 353/frontal/03~353/frontal/09 356/frontal/05~356/frontal/10
    360/profile/02~360/profile/04 372/frontal/03~372/frontal/05 376/frontal/03~376/frontal/05
    378/frontal/07~378/frontal/08 401/frontal/05~401/frontal/09 402/profile/02~402/profile/04
    412/frontal/02~412/frontal/06 413/frontal/06~413/frontal/09 417/frontal/03~417/frontal/10
    418/frontal/04~418/frontal/06 421/frontal/01~421/frontal/08 440/frontal/02~440/frontal/05
    451/frontal/01~451/frontal/07 454/frontal/05~454/frontal/10 468/frontal/03~468/frontal/10
    474/frontal/04~474/frontal/06 489/frontal/06~489/frontal/10 492/frontal/02~492/frontal/08
    497/frontal/01~497/frontal/10
"""
SAME_PHOTO = [tuple(pair.split("~")) for pair in UNJUDGED.split()]
TRANSFORMS = ("resize", "jpeg", "crop", "colour", "text", "border", "grey")
CAPTIONS = ("© stock photo", "celebrity news", "PHOTO: AP", "www.example.com", "EXCLUSIVE", "2016")


@dataclass(frozen=True)
class Item:
    """One benchmark file: which original it comes from (``group``) and how it was made."""

    path: Path
    group: int
    identity: str
    original: str  # the CFP photo it comes from, "<id>/<frontal|profile>/<NN>"
    transform: str  # "original" or one of TRANSFORMS


def _resize(image: Image.Image, rng: random.Random) -> Image.Image:
    scale = rng.choice([rng.uniform(0.35, 0.8), rng.uniform(1.2, 2.0)])
    size = (max(16, round(image.width * scale)), max(16, round(image.height * scale)))
    return image.resize(size, Image.Resampling.BICUBIC)


def _crop(image: Image.Image, rng: random.Random) -> Image.Image:
    """Remove 2-6% of the width and of the height, split at random between the two sides."""
    w, h = image.size
    cut_w, cut_h = w * rng.uniform(0.02, 0.06), h * rng.uniform(0.02, 0.06)
    left, top = round(cut_w * rng.random()), round(cut_h * rng.random())
    return image.crop((left, top, left + round(w - cut_w), top + round(h - cut_h)))


def _colour(image: Image.Image, rng: random.Random) -> Image.Image:
    image = ImageEnhance.Brightness(image).enhance(rng.uniform(0.7, 1.3))
    image = ImageEnhance.Contrast(image).enhance(rng.uniform(0.8, 1.2))
    image = ImageEnhance.Color(image).enhance(rng.uniform(0.5, 1.6))
    gains = [rng.uniform(0.88, 1.12) for _ in range(3)]
    channels = [
        band.point(lambda v, g=g: min(255, round(v * g)))
        for band, g in zip(image.split(), gains, strict=True)
    ]
    return Image.merge("RGB", channels)


def _text(image: Image.Image, rng: random.Random) -> Image.Image:
    image = image.copy()
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=max(8, round(image.height * rng.uniform(0.06, 0.1))))
    caption = rng.choice(CAPTIONS)
    x = round(image.width * rng.uniform(0.02, 0.3))
    y = round(image.height * rng.choice([rng.uniform(0.02, 0.1), rng.uniform(0.82, 0.9)]))
    colour = rng.choice([(255, 255, 255), (255, 255, 0), (0, 0, 0)])
    draw.text((x, y), caption, fill=colour, font=font, stroke_width=1, stroke_fill=(40, 40, 40))
    return image


def _border(image: Image.Image, rng: random.Random) -> Image.Image:
    width = max(2, round(min(image.size) * rng.uniform(0.03, 0.12)))
    colour = rng.choice([(0, 0, 0), (255, 255, 255), (128, 128, 128), (30, 60, 120)])
    return ImageOps.expand(image, border=width, fill=colour)


def _grey(image: Image.Image, rng: random.Random) -> Image.Image:
    return image.convert("L").convert("RGB")


_MAKERS = {
    "resize": _resize,
    "crop": _crop,
    "colour": _colour,
    "text": _text,
    "border": _border,
    "grey": _grey,
}


def write_copy(image: Image.Image, transform: str, target: Path, rng: random.Random) -> None:
    """Write ``image`` transformed by ``transform`` (JPEG quality 10-30 for "jpeg", else 92)."""
    if transform == "jpeg":
        image.save(target, "JPEG", quality=rng.randint(10, 30))
    else:
        _MAKERS[transform](image, rng).save(target, "JPEG", quality=92)


def build(cfp: Path, out: Path, n_images: int, seed: int = 0) -> list[Item]:
    """Write about ``n_images`` files (originals + copies) flat under ``out``; return what each one is."""
    rng = random.Random(seed)
    identities = sorted(p.name for p in (cfp / "Data" / "Images").iterdir() if p.is_dir())
    rng.shuffle(identities)
    out.mkdir(parents=True, exist_ok=True)
    items: list[Item] = []
    for identity in identities:
        for photo in sorted((cfp / "Data" / "Images" / identity).glob("*/*.jpg")):
            if len(items) >= n_images:
                return items
            group = items[-1].group + 1 if items else 0
            original = out / f"{identity}_{photo.parent.name}_{photo.stem}.jpg"
            shutil.copyfile(photo, original)
            key = f"{identity}/{photo.parent.name}/{photo.stem}"
            items.append(Item(original, group, identity, key, "original"))
            image = Image.open(photo).convert("RGB")
            for transform in rng.sample(TRANSFORMS, rng.randint(1, 3)):
                if len(items) >= n_images:
                    return items
                target = out / f"{original.stem}_{transform}.jpg"
                write_copy(image, transform, target, rng)
                items.append(Item(target, group, identity, key, transform))
    return items


def manifest(items: list[Item], n_shards: int) -> dict[int, pa.Table]:
    """The benchmark files as curate image records (one identity per CFP person), sharded."""
    rows: dict[int, list[dict]] = {}
    for item in items:
        identity = f"cfp-{item.identity}"
        rows.setdefault(shard_of(identity, n_shards), []).append(
            {
                "image_id": hashlib.sha256(item.path.read_bytes()).hexdigest(),
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


def _describe_shard(job: tuple[int, pa.Table, str, dict]) -> tuple[int, pa.Table]:
    shard, table, workdir, settings = job
    stage = DescribeStage(build_config(DescribeStage.Config, settings))
    return shard, stage.run_shard(table, local_context(Path(workdir), "describe", shard, N_SHARDS))


class Clock:
    """Wall time and CPU time (this process and its finished children) of a block."""

    def __enter__(self) -> Clock:
        self.wall = time.perf_counter()
        self.cpu = _cpu_seconds()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.wall
        self.cpu = _cpu_seconds() - self.cpu


def _cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def describe_all(tables: dict[int, pa.Table], workdir: Path, workers: int) -> dict[int, pa.Table]:
    """The describe stage over every shard, a process per worker."""
    jobs = [(shard, table, str(workdir), {}) for shard, table in tables.items()]
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        return dict(pool.map(_describe_shard, jobs))


def dedup_all(described: dict[int, pa.Table], workdir: Path, settings: dict) -> tuple[dict, int, int]:
    """The dedup step; returns (file name -> group label, identity_conflict rows, needs_review rows)."""
    stage = DedupStage(build_config(DedupStage.Config, settings))
    result = stage.run_all(described, local_context(workdir, "dedup", None, N_SHARDS))
    labels: dict[str, object] = {}
    conflicts = reviews = 0
    for table in result.values():
        for row in table.select(["source", "dup_cluster", "status", "needs_review"]).to_pylist():
            labels[row["source"]] = row["dup_cluster"] if row["dup_cluster"] is not None else row["source"]
            conflicts += row["status"] == "identity_conflict"
            reviews += bool(row["needs_review"])
    return labels, conflicts, reviews


def run_curate(tables: dict[int, pa.Table], workdir: Path, workers: int) -> tuple[dict, Clock, int, int]:
    """describe then dedup with default settings, timed; labels, clock, conflict and review rows."""
    with Clock() as clock:
        labels, conflicts, reviews = dedup_all(describe_all(tables, workdir, workers), workdir, {})
    return labels, clock, conflicts, reviews


SWEEP = {
    "min_cosine": (0.88, 0.90, 0.92, 0.94),
    "max_hamming_bits": (2, 4, 6),
    "min_aligned_ncc": (0.94, 0.95, 0.96, 0.97),
}


def sweep(items: list[Item], workdir: Path, workers: int) -> None:
    """Calibration: describe once per half of the identities, then dedup over a grid of thresholds."""
    identities = list(dict.fromkeys(item.identity for item in items))
    halves = {"dev": set(identities[: len(identities) // 2]), "test": set(identities[len(identities) // 2 :])}
    for name, members in halves.items():
        part = [item for item in items if item.identity in members]
        described = describe_all(manifest(part, N_SHARDS), workdir / name, workers)
        print(f"\n{name}: {len(members)} identities, {len(part)} images")
        print("min_cosine max_bits min_ncc  precision recall false conflicts reviews")
        for values in itertools.product(*SWEEP.values()):
            settings = dict(zip(SWEEP, values, strict=True))
            labels, conflicts, reviews = dedup_all(described, workdir / name, settings)
            figures = score(part, labels)
            print(
                f"{values[0]:10.2f} {values[1]:8d} {values[2]:7.2f} {figures['precision']:10.4f} "
                f"{figures['recall']:6.4f} {figures['false_pairs']:5d} {conflicts:9d} {reviews:7d}"
            )


def run_imagededup(method: str, folder: Path, max_bits: int, workers: int) -> tuple[dict, set, Clock]:
    """imagededup's PHash or DHash on the folder: (connected components, the pairs it returned, clock)."""
    from imagededup.methods import DHash, PHash

    with Clock() as clock:
        hasher = {"PHash": PHash, "DHash": DHash}[method](verbose=False)
        found = hasher.find_duplicates(
            image_dir=str(folder),
            max_distance_threshold=max_bits,
            num_enc_workers=workers,
            num_dist_workers=workers,
        )
    names = sorted(found)
    position = {name: k for k, name in enumerate(names)}
    pairs = {tuple(sorted((a, b))) for a, others in found.items() for b in others}
    index = np.array([(position[a], position[b]) for a, b in pairs], dtype=np.int64).reshape(-1, 2)
    groups = cluster_labels(len(names), index[:, 0], index[:, 1])
    return {name: int(groups[k]) for k, name in enumerate(names)}, pairs, clock


def score_pairs(items: list[Item], pairs: set[tuple[str, str]]) -> dict[str, float]:
    """Like :func:`score`, for a set of predicted pairs of file names taken as they are (no closure)."""
    by_name = {item.path.name: item for item in items}
    merged = dict(zip((item.path.name for item in items), _merged_groups(items), strict=True))
    hits = sum(by_name[a].group == by_name[b].group for a, b in pairs)
    unjudged = sum(by_name[a].group != by_name[b].group and merged[a] == merged[b] for a, b in pairs)
    true_pairs = _pairs_within([item.group for item in items])
    return {
        "planted_pairs": true_pairs,
        "predicted_pairs": len(pairs),
        "recall": hits / max(true_pairs, 1),
        "precision": hits / max(len(pairs) - unjudged, 1),
        "precision_strict": hits / max(len(pairs), 1),
        "false_pairs": len(pairs) - unjudged - hits,
    }


def _pairs_within(*keys: list) -> int:
    """How many unordered pairs of items share every one of the given label lists."""
    counts = Counter(zip(*keys, strict=True))
    return sum(c * (c - 1) // 2 for c in counts.values())


def score(items: list[Item], predicted: dict) -> dict[str, float]:
    """Pair precision / recall of predicted groups against the planted groups.

    Pairs linking the groups of two CFP originals listed in ``SAME_PHOTO`` are left out of precision
    (``precision``); ``precision_strict`` counts them as false.
    """
    names = [item.path.name for item in items]
    planted = [item.group for item in items]
    merged = _merged_groups(items)
    labels = [predicted[name] for name in names]
    predicted_pairs = _pairs_within(labels)
    true_pairs = _pairs_within(planted)
    hits = _pairs_within(labels, planted)
    same_photo_hits = _pairs_within(labels, merged) - hits
    judged = predicted_pairs - same_photo_hits
    return {
        "planted_pairs": true_pairs,
        "predicted_pairs": predicted_pairs,
        "recall": hits / max(true_pairs, 1),
        "precision": hits / max(judged, 1),
        "precision_strict": hits / max(predicted_pairs, 1),
        "false_pairs": judged - hits,
    }


def _merged_groups(items: list[Item]) -> list[int]:
    """Planted groups, with the groups of CFP originals listed together in ``SAME_PHOTO`` joined."""
    group_of = {item.original: item.group for item in items}
    n = max((item.group for item in items), default=-1) + 1
    links = [(group_of[a], group_of[b]) for a, b in SAME_PHOTO if a in group_of and b in group_of]
    i, j = (
        (np.array(v, dtype=np.int64) for v in zip(*links, strict=True)) if links else (np.zeros(0, int),) * 2
    )
    labels = cluster_labels(n, i, j)
    return [int(labels[item.group]) for item in items]


def false_pairs(items: list[Item], predicted: dict, limit: int) -> list[tuple[str, str]]:
    """Up to ``limit`` predicted pairs of originals from different planted groups (for inspection)."""
    members: dict[object, list[Item]] = {}
    for item in items:
        if item.transform == "original":
            members.setdefault(predicted[item.path.name], []).append(item)
    merged = dict(zip((item.original for item in items), _merged_groups(items), strict=True))
    found = []
    for group in members.values():
        for a in range(len(group)):
            for b in range(a + 1, len(group)):
                if merged[group[a].original] != merged[group[b].original]:
                    found.append((group[a].original, group[b].original))
    return sorted(found)[:limit]


def main() -> None:
    """Build the benchmark, run curate and imagededup on it, print precision, recall and time."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=2000, help="benchmark size (originals + copies)")
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--workers", type=int, default=2, help="processes for curate and for imagededup")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--imagededup-bits", type=int, default=10, help="imagededup max_distance_threshold")
    parser.add_argument("--skip-imagededup", action="store_true")
    parser.add_argument("--show-false", type=int, default=0, help="list this many false original pairs")
    parser.add_argument("--sweep", action="store_true", help="calibrate: threshold grid on two halves")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="neardup-") as tmp:
        folder, workdir = Path(tmp) / "images", Path(tmp) / "work"
        items = build(args.data / "cfp", folder, args.images, args.seed)
        groups = len({item.group for item in items})
        print(f"{len(items)} images: {groups} CFP originals + {len(items) - groups} planted copies")
        if args.sweep:
            sweep(items, workdir, args.workers)
            return
        results = {}
        labels, clock, conflicts, reviews = run_curate(manifest(items, N_SHARDS), workdir, args.workers)
        results["curate describe+dedup"] = (score(items, labels), clock)
        print(f"  curate: {conflicts} rows flagged identity_conflict (all false here), {reviews} for review")
        originals = items_by_key(items)
        for transform in TRANSFORMS:
            copies = [item for item in items if item.transform == transform]
            found = sum(labels[c.path.name] == labels[originals[c.original].path.name] for c in copies)
            print(f"  {transform:7s} copies found with their original: {found}/{len(copies)}")
        for pair in false_pairs(items, labels, args.show_false):
            print("  false pair:", *pair)
        if not args.skip_imagededup:
            for method in ("PHash", "DHash"):
                groups, pairs, clock = run_imagededup(method, folder, args.imagededup_bits, args.workers)
                name = f"imagededup {method} <= {args.imagededup_bits} bits"
                results[f"{name}, groups"] = (score(items, groups), clock)
                results[f"{name}, pairs"] = (score_pairs(items, pairs), clock)
    header = f"{'precision':>9s} {'strict':>7s} {'recall':>7s} {'false':>6s} {'wall s':>7s} {'cpu s':>7s}"
    print(f"\n{'method':40s} {header}")
    for name, (figures, clock) in results.items():
        print(
            f"{name:40s} {figures['precision']:9.4f} {figures['precision_strict']:7.4f} "
            f"{figures['recall']:7.4f} {figures['false_pairs']:6d} {clock.wall:7.1f} {clock.cpu:7.1f}"
        )


def items_by_key(items: list[Item]) -> dict[str, Item]:
    """The original item of each CFP photo key."""
    return {item.original: item for item in items if item.transform == "original"}


if __name__ == "__main__":
    main()
