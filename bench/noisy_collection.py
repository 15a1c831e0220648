"""Benchmark ``curate rank`` on noisy collections built from real photos (CFP).

A seeded sample of CFP identities is split into *collection* identities and *outsiders*. Each collection
identity gets its own CFP images plus intruders (face images of outsiders, people not in the collection,
as in web search results) making up 0% (a control), 10%, 20% or 40% of its face images; a few non-face
images (crops of scikit-learn's two sample photos, standing in for false face detections) are spread over
the identities.
Two collection identities are planted under two names each (their images split in half) to check overlap
flagging. Images where the detector finds no face stay in the manifest as ``no_face`` rows.

Faces are found and aligned by ``curate.faces.detect.FaceAligner`` (HOG, 5-point landmarks, 150x150 chips,
0.25 padding; images shrunk to 400 px for detection, as CFP images are loose face crops) and embedded
with ``curate.embedders``; landmarks and embeddings are cached in ``bench/out/`` so reruns are fast. Each
collection goes through the real ``rank`` stage (Arrow tables, ``.npy`` vectors, ``run_all``).

Run: ``/work/venv/bin/python bench/noisy_collection.py [--identities 200] [--rounds 3]``
"""

from __future__ import annotations

import argparse
import hashlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from PIL import Image
from sklearn.datasets import load_sample_images

from curate.embedders import get_embedder
from curate.faces.detect import DetectedFace, FaceAligner
from curate.manifest import shard_of, vectors_path, write_vectors
from curate.names import identity_id
from curate.record import BASE_COLUMNS, Status
from curate.stage import local_context
from curate.stages.rank import RankConfig, RankStage, ScorerName

logger = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
CFP = HERE.parent.parent / "shared" / "data" / "cfp" / "Data"
DETECT_SIDE = 400
SHARDS = 4
NON_FACES = 20  # crops of the two sample photos, spread over the collection
PLANTED_SPLITS = 2  # collection identities put under two names each
OUTSIDER_SHARE = 0.25  # share of sampled CFP identities used only as intruders
RATES = (0.0, 0.1, 0.2, 0.4)


def cfp_people(n_identities: int, seed: int) -> dict[str, list[str]]:
    """A seeded sample of CFP identities: name -> image paths (frontal and profile)."""
    names = (CFP / "list_name.txt").read_text().splitlines()
    chosen = sorted(np.random.default_rng(seed).choice(len(names), size=n_identities, replace=False))
    images = CFP / "Images"
    return {
        names[i].strip(): sorted(
            str(p.relative_to(images)) for p in (images / f"{i + 1:03d}").glob("*/*.jpg")
        )
        for i in chosen
    }


def cached(
    cache: Path, keys: list[str], compute: Callable[[list[str]], Any], what: str
) -> dict[str, np.ndarray]:
    """Per-key arrays from an ``.npz`` cache; missing keys are computed in batches of 100 and saved."""
    known: dict[str, np.ndarray] = {}
    if cache.exists():
        stored = np.load(cache)
        known = dict(zip(stored["keys"].tolist(), stored["values"], strict=True))
    missing = [k for k in keys if k not in known]
    for start in range(0, len(missing), 100):
        batch = missing[start : start + 100]
        known.update(zip(batch, compute(batch), strict=True))
        names = sorted(known)
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(cache.stem + ".tmp.npz")
        np.savez(tmp, keys=np.array(names), values=np.stack([known[k] for k in names]))
        tmp.replace(cache)
        logger.info("%s: %d / %d computed", what, start + len(batch), len(missing))
    return {k: known[k] for k in keys}


def _load(path: str) -> np.ndarray:
    return np.asarray(Image.open(CFP / "Images" / path).convert("RGB"))


class CfpFaces:
    """Landmarks (cached) and embeddings (cached per embedder) of CFP images."""

    def __init__(self, paths: list[str]) -> None:
        self.aligner = FaceAligner(
            detector="hog", upsample=1, crop_size=150, padding=0.25, max_side=DETECT_SIDE
        )
        self.records = cached(OUT / "cfp_faces.npz", paths, self._detect, "face detection")
        self.with_face = [p for p in paths if not np.isnan(self.records[p][0])]

    def _detect(self, batch: list[str]) -> list[np.ndarray]:
        """Per image: box (4) and landmarks (10) of the chosen face, NaN when none."""
        rows = []
        for path in batch:
            rgb = _load(path)
            face = self.aligner.best_face(self.aligner.detect(rgb), rgb.shape)
            rows.append(np.full(14, np.nan) if face is None else np.r_[face.box, face.landmarks.ravel()])
        return rows

    def chip(self, path: str) -> np.ndarray:
        """The aligned 150x150 chip of the image's face."""
        record = self.records[path]
        face = DetectedFace(tuple(int(v) for v in record[:4]), 0.0, record[4:].reshape(5, 2))  # type: ignore[arg-type]
        return self.aligner.align(_load(path), face)

    def embed(self, embedder_name: str) -> dict[str, np.ndarray]:
        """Embeddings of every image with a face, from the cache or computed."""
        embedder = get_embedder(embedder_name)
        return cached(
            OUT / f"cfp_{embedder_name}.npz",
            self.with_face,
            lambda batch: embedder.embed([self.chip(p) for p in batch]),
            f"{embedder_name} embeddings",
        )


def non_face_chips(count: int, seed: int) -> list[np.ndarray]:
    """Random square crops of scikit-learn's sample photos (a temple, a flower), resized to 150x150."""
    rng = np.random.default_rng(seed)
    photos = load_sample_images().images
    chips = []
    for i in range(count):
        photo = photos[i % len(photos)]
        side = int(rng.integers(80, 300))
        top, left = (int(rng.integers(0, photo.shape[k] - side)) for k in (0, 1))
        crop = Image.fromarray(photo[top : top + side, left : left + side]).resize((150, 150))
        chips.append(np.asarray(crop))
    return chips


def build_collection(
    people: dict[str, list[str]],
    vectors: dict[str, np.ndarray],
    non_faces: np.ndarray,
    rate: float,
    seed: int,
) -> list[dict[str, Any]]:
    """Rows of a noisy collection: name, true person ("" for non-faces), source, vector (None = no face)."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(sorted(people))
    outsiders = order[: round(OUTSIDER_SHARE * len(order))]
    members = sorted(order[len(outsiders) :])
    pool = [(p, person) for person in outsiders for p in people[person] if p in vectors]
    rows = []
    for person in members:
        own = [
            {"name": person, "person": person, "source": p, "vector": vectors.get(p)} for p in people[person]
        ]
        faces = sum(row["vector"] is not None for row in own)
        picks = rng.choice(len(pool), size=round(rate / (1 - rate) * faces), replace=False)
        own += [
            {"name": person, "person": pool[i][1], "source": pool[i][0], "vector": vectors[pool[i][0]]}
            for i in picks
        ]
        rows += own
    for i, vector in enumerate(non_faces):
        rows.append(
            {
                "name": members[rng.integers(len(members))],
                "person": "",
                "source": f"non-face-{i}",
                "vector": vector,
            }
        )
    for person in members[:PLANTED_SPLITS]:  # the same person under a second name
        mine = [row for row in rows if row["name"] == person]
        for row in mine[1::2]:
            row["name"] = f"{person} (second name)"
    return rows


def run_rank(
    rows: list[dict[str, Any]], workdir: Path, embedder: str, config: RankConfig
) -> tuple[pa.Table, dict]:
    """Write the rows as shards + vectors, run the rank stage on them; the concatenated output and stats."""
    dim = next(row["vector"] for row in rows if row["vector"] is not None).shape[0]
    by_shard: dict[int, list[dict[str, Any]]] = {s: [] for s in range(SHARDS)}
    for row in rows:
        by_shard[shard_of(identity_id(row["name"]), SHARDS)].append(row)
    tables = {}
    for shard, members in by_shard.items():
        columns = {
            "image_id": [hashlib.sha256(row["source"].encode()).hexdigest() for row in members],
            "identity_id": [identity_id(row["name"]) for row in members],
            "identity_name": [row["name"] for row in members],
            "source": [row["source"] for row in members],
            "path": [row["source"] for row in members],
            "status": [
                Status.OK.value if row["vector"] is not None else Status.NO_FACE.value for row in members
            ],
            "reason": ["" if row["vector"] is not None else "no face found" for row in members],
        }
        table = pa.table({k: pa.array(v, type=BASE_COLUMNS[k]) for k, v in columns.items()})
        tables[shard] = table.append_column(
            "person", pa.array([row["person"] for row in members], pa.string())
        )
        matrix = np.stack(
            [np.zeros(dim, np.float32) if r["vector"] is None else r["vector"] for r in members]
        )
        write_vectors(matrix.reshape(len(members), dim), vectors_path(workdir, "describe", embedder, shard))
    ctx = local_context(workdir, "rank", shard=None, n_shards=SHARDS)
    outputs = RankStage(config).run_all(tables, ctx)
    return pa.concat_tables([outputs[s] for s in sorted(outputs)]), ctx.stats


def round_figures(table: pa.Table, rounds: int) -> list[dict[str, float]]:
    """Per round: purity of the kept set, share of true images kept, share of wrong images removed."""
    rows = [r for r in table.to_pylist() if r["rank_history"] is not None]
    true = np.array([r["person"] == r["identity_name"].removesuffix(" (second name)") for r in rows])
    figures = []
    for k in range(rounds):
        kept = np.array([r["rank_history"][min(k, len(r["rank_history"]) - 1)] for r in rows])
        figures.append(
            {
                "untouched": true.mean(),
                "purity": (kept & true).sum() / max(1, kept.sum()),
                "true_kept": (kept & true).sum() / true.sum(),
                "removed": (~kept & ~true).sum() / max(1, (~true).sum()),
            }
        )
    return figures


SECOND = " (second name)"


def identity_figures(table: pa.Table) -> dict[str, float]:
    """Identities flagged for review, their count, and mean |estimated - true purity| per identity."""
    by_name: dict[str, list[dict[str, Any]]] = {}
    for row in table.to_pylist():
        if row["rank_history"] is not None:
            by_name.setdefault(row["identity_name"], []).append(row)
    errors = [
        abs(rows[0]["identity_purity"] - np.mean([r["person"] == name.removesuffix(SECOND) for r in rows]))
        for name, rows in by_name.items()
    ]
    flagged = sum(bool(rows[0]["identity_review"]) for rows in by_name.values())
    return {"flagged": flagged, "identities": len(by_name), "purity_error": float(np.mean(errors))}


def overlap_figures(rows: list[dict[str, Any]], table: pa.Table, stats: dict[str, Any]) -> dict[str, Any]:
    """Planted pairs flagged, other pairs flagged, and the centre-cosine margin that separates them.

    Centres are computed here as the stage does (mean of the kept images) to show the lowest planted-pair
    cosine beside the highest cosine between two different people.
    """
    kept = {(r["identity_name"], r["source"]) for r in table.to_pylist() if r["status"] == Status.OK.value}
    grouped: dict[str, list[np.ndarray]] = {}
    for row in rows:
        if (row["name"], row["source"]) in kept:
            grouped.setdefault(row["name"], []).append(row["vector"])
    planted = {(r["name"].removesuffix(SECOND), r["name"]) for r in rows if r["name"].endswith(SECOND)}
    names = sorted(grouped)
    centres = np.stack([np.mean(grouped[n], axis=0) for n in names])
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    similarity = centres @ centres.T
    same = np.array([[(a, b) in planted or (b, a) in planted for b in names] for a in names])
    np.fill_diagonal(similarity, -1.0)
    flagged = {tuple(sorted((o["identity_a"], o["identity_b"]))) for o in stats["rank_overlaps"]}
    hits = sum(tuple(sorted(pair)) in flagged for pair in planted)
    return {
        "planted": len(planted),
        "hits": hits,
        "others": len(flagged) - hits,
        "planted_min": float(similarity[same].min()) if same.any() else float("nan"),
        "other_max": float(similarity[~same].max()),
    }


def main() -> None:
    """Build the caches and the noisy collections, run the rank stage, print Markdown tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--identities", type=int, default=200, help="CFP identities sampled (of 500)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--embedders", default="dlib,handcrafted")
    parser.add_argument("--scorers", default="classifier,centre,cluster")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    people = cfp_people(args.identities, args.seed)
    faces = CfpFaces([p for images in people.values() for p in images])
    print(f"{len(people)} CFP identities, {len(faces.records)} images, {len(faces.with_face)} with a face\n")
    print("| embedder | scorer | intruders | round | untouched purity | kept purity | true kept ", end="")
    print("| wrong removed |\n|---|---|---|---|---|---|---|---|")
    notes = [
        "| embedder | scorer | intruders | review flags | mean abs purity error | planted pairs flagged "
        "| other pairs flagged | lowest planted cosine | highest other cosine |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for embedder in args.embedders.split(","):
        vectors = faces.embed(embedder)
        non_faces = get_embedder(embedder).embed(non_face_chips(NON_FACES, args.seed))
        for scorer in args.scorers.split(","):
            for rate in RATES:
                rows = build_collection(people, vectors, non_faces, rate, args.seed)
                config = RankConfig(
                    embedder=embedder, scorer=ScorerName(scorer), rounds=args.rounds, seed=args.seed
                )
                table, stats = run_rank(rows, OUT / "work" / f"{embedder}-{scorer}-{rate}", embedder, config)
                for k, f in enumerate(round_figures(table, args.rounds), 1):
                    print(
                        f"| {embedder} | {scorer} | {rate:.0%} | {k} | {f['untouched']:.2%} "
                        f"| {f['purity']:.2%} | {f['true_kept']:.2%} | {f['removed']:.2%} |"
                    )
                ident, over = identity_figures(table), overlap_figures(rows, table, stats)
                notes.append(
                    f"| {embedder} | {scorer} | {rate:.0%} | {ident['flagged']}/{ident['identities']} "
                    f"| {ident['purity_error']:.3f} | {over['hits']}/{over['planted']} | {over['others']} "
                    f"| {over['planted_min']:.3f} | {over['other_max']:.3f} |"
                )
    print()
    print("\n".join(notes))


if __name__ == "__main__":
    main()
