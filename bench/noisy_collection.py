"""Benchmark ``curate rank`` on noisy collections built from real photos (CFP).

A seeded sample of CFP identities is split into *collection* identities and *outsiders*. Each collection
identity gets its own CFP images plus intruders (face images of outsiders, people not in the collection,
as in web search results) making up 0% (a control), 10%, 20% or 40% of its face images; a few non-face
images (crops of scikit-learn's two sample photos, standing in for false face detections) are spread over
the identities.
Two collection identities are planted under two names each (their images split in half) to check overlap
flagging. Images where the detector finds no face stay in the manifest as ``no_face`` rows.

Faces are found and aligned as the faces stage does by default (CenterFace since issue 12; landmarks and
yaw cached by ``bench/cfp_landmarks.py``, ``yaw_deg`` computed as the faces stage writes it). Embeddings
come from the evaluation cache of ``curate evaluate`` / ``bench/train_cfp.py`` (``--cache``, default
``runs/bench_cfp/cache``: crops by the same aligner), so the slow dlib pass runs once for both benches.
Each collection goes through the real ``rank`` stage (Arrow tables, ``.npy`` vectors, ``run_all``).

Calibration and report halves: the collection identities are split in two by a hash of their name. The
``cohort`` scorer's ``false_accept`` is chosen on the *calibration* half only (the largest value on
``--grid`` whose kept purity there is at least ``--target-purity`` at 20% intruders); every figure printed
for the *report* half comes from identities never looked at while choosing. Profiles (CFP's ``profile``
folder) are counted separately.

Run: ``nice python bench/noisy_collection.py [--pool 250] [--rounds 3]``
"""

from __future__ import annotations

import argparse
import hashlib
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from cfp_landmarks import CfpLandmarks
from PIL import Image
from sklearn.datasets import load_sample_images

from curate.embedders import get_embedder
from curate.evaluate.run import embed_images
from curate.manifest import shard_of, vectors_path, write_vectors
from curate.names import identity_id
from curate.record import BASE_COLUMNS, Status
from curate.stage import local_context
from curate.stages.rank import RankConfig, RankStage, ScorerName

logger = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
CFP = HERE.parent.parent / "shared" / "data" / "cfp" / "Data"
SHARDS = 4
NON_FACES = 20  # crops of the two sample photos, spread over the collection
PLANTED_SPLITS = 2  # collection identities put under two names each
OUTSIDER_SHARE = 0.25  # share of sampled CFP identities used only as intruders
RATES = (0.0, 0.2, 0.4)
SECOND = " (second name)"
CALIBRATION_RATE = 0.2  # intruder share at which false_accept is calibrated


def cfp_people(n_identities: int, seed: int, pool: int = 500) -> dict[str, list[str]]:
    """A seeded sample of CFP identities among the first ``pool``: name -> image paths (frontal, profile)."""
    names = (CFP / "list_name.txt").read_text().splitlines()
    chosen = sorted(np.random.default_rng(seed).choice(pool, size=n_identities, replace=False))
    images = CFP / "Images"
    return {
        names[i].strip(): sorted(
            str(p.relative_to(images)) for p in (images / f"{i + 1:03d}").glob("*/*.jpg")
        )
        for i in chosen
    }


class CfpFaces:
    """Faces found, yaw (:mod:`cfp_landmarks`) and embeddings (the evaluation cache) of CFP images."""

    def __init__(self, paths: list[str], cache: Path) -> None:
        self.cache = cache
        self.landmarks = CfpLandmarks(paths)
        self.records = self.landmarks.records
        self.with_face = [p for p in paths if self.landmarks.found(p)]

    def yaw(self, path: str) -> float:
        """The face's yaw in degrees, from its landmarks (NaN without a face)."""
        return self.landmarks.yaw(path)

    def embed(self, embedder_name: str) -> dict[str, np.ndarray]:
        """Embeddings of every image with a face whose evaluation crop is that detected face."""
        found = embed_images([CFP / "Images" / p for p in self.with_face], embedder_name, self.cache)
        return {
            path: vector
            for path, vector, source in zip(self.with_face, found.vectors, found.source, strict=True)
            if source == "detected"
        }


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
    """Rows of a noisy collection: name, true person ("" for non-faces), source, vector (None = no face).

    A row's ``source`` is the CFP image path (``<id>/<frontal|profile>/<n>.jpg``) or ``non-face-<i>``.
    """
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
    rows: list[dict[str, Any]], workdir: Path, embedder: str, config: RankConfig, yaw: dict[str, float]
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
        table = table.append_column(
            "yaw_deg", pa.array([yaw.get(r["source"]) for r in members], pa.float32())
        )
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


def calibration_half(name: str) -> bool:
    """Whether an identity belongs to the calibration half (a stable hash of its name, planted aliases
    with the person they split)."""
    return hashlib.sha256(name.removesuffix(SECOND).encode()).digest()[0] % 2 == 0


def round_figures(table: pa.Table, rounds: int, calibration: bool) -> list[dict[str, float]]:
    """Per round, on one half's identities: purity of the kept set; genuine, frontal and profile images
    kept; wrong images (intruders, non-faces) removed."""
    rows = [
        r
        for r in table.to_pylist()
        if r["rank_history"] is not None and calibration_half(r["identity_name"]) == calibration
    ]
    true = np.array([r["person"] == r["identity_name"].removesuffix(SECOND) for r in rows])
    profile = np.array(["/profile/" in r["source"] for r in rows])
    figures = []
    for k in range(rounds):
        kept = np.array([r["rank_history"][min(k, len(r["rank_history"]) - 1)] for r in rows])
        figures.append(
            {
                "untouched": true.mean(),
                "purity": (kept & true).sum() / max(1, kept.sum()),
                "true_kept": (kept & true).sum() / true.sum(),
                "frontal_kept": (kept & true & ~profile).sum() / max(1, (true & ~profile).sum()),
                "profile_kept": (kept & true & profile).sum() / max(1, (true & profile).sum()),
                "profiles": int((true & profile).sum()),
                "removed": (~kept & ~true).sum() / max(1, (~true).sum()),
                "wrong_kept": int((kept & ~true).sum()),
            }
        )
    return figures


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


def scorer_config(
    spec: str, embedder: str, args: argparse.Namespace, rates: tuple[float, float] | None
) -> RankConfig:
    """The rank config for a scorer spec (``cohort-noyaw``: the cohort scorer without the yaw column)
    with the cohort scorer's (false_accept, profile_false_accept)."""
    scorer = ScorerName(spec.removesuffix("-noyaw"))
    false_accept, profile = rates if rates is not None else (None, None)
    return RankConfig(
        embedder=embedder,
        scorer=scorer,
        rounds=args.rounds,
        seed=args.seed,
        false_accept=false_accept,
        profile_false_accept=profile,
    )


def calibrate(
    people: dict[str, list[str]],
    vectors: dict[str, np.ndarray],
    non_faces: np.ndarray,
    yaw: dict[str, float],
    embedder: str,
    args: argparse.Namespace,
) -> tuple[float, float]:
    """The cohort scorer's (false_accept, profile_false_accept), chosen on the calibration half at 20%
    intruders: of the grid pairs whose kept purity reaches the target, the one keeping the most genuine
    images plus profiles (shares); when none does, the purest. Prints what each pair gave."""
    rows = build_collection(people, vectors, non_faces, CALIBRATION_RATE, args.seed)
    print(f"Calibration ({embedder}, cohort, {CALIBRATION_RATE:.0%} intruders, calibration half, last round)")
    print("| false_accept | profile_false_accept | kept purity | genuine kept | profiles kept | wrong kept |")
    print("|---|---|---|---|---|---|")
    best: tuple[tuple[float, ...], tuple[float, float]] | None = None
    for false_accept in sorted(float(v) for v in args.grid.split(",")):
        for profile in sorted(float(v) for v in args.profile_grid.split(",")):
            config = scorer_config("cohort", embedder, args, (false_accept, profile))
            work = OUT / "work" / f"calibrate-{embedder}-{false_accept}-{profile}"
            table, _ = run_rank(rows, work, embedder, config, yaw)
            f = round_figures(table, args.rounds, calibration=True)[-1]
            print(
                f"| {false_accept:g} | {profile:g} | {f['purity']:.2%} | {f['true_kept']:.2%} "
                f"| {f['profile_kept']:.2%} | {f['wrong_kept']} |"
            )
            met = f["purity"] >= args.target_purity
            key = (met, f["true_kept"] + f["profile_kept"] if met else f["purity"], f["true_kept"])
            if best is None or key > best[0]:
                best = (key, (false_accept, profile))
    assert best is not None
    print(f"\nchosen for {embedder}: false_accept {best[1][0]:g}, profile_false_accept {best[1][1]:g}\n")
    return best[1]


def main() -> None:
    """Build the caches and the noisy collections, calibrate, run the rank stage, print Markdown tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--identities", type=int, default=250, help="CFP identities sampled")
    parser.add_argument("--pool", type=int, default=250, help="... from the first N CFP identities")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--embedders", default="dlib")
    parser.add_argument("--scorers", default="classifier,cluster,cohort-noyaw,cohort")
    parser.add_argument("--grid", default="0.001,0.002", help="false_accept values to calibrate")
    parser.add_argument("--profile-grid", default="0.01,0.02,0.05", help="profile_false_accept values")
    parser.add_argument("--target-purity", type=float, default=0.999)
    parser.add_argument("--cache", type=Path, default=HERE.parent / "runs" / "bench_cfp" / "cache")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    people = cfp_people(args.identities, args.seed, args.pool)
    faces = CfpFaces([p for images in people.values() for p in images], args.cache)
    yaw = {p: faces.yaw(p) for p in faces.with_face}
    print(f"{len(people)} CFP identities, {len(faces.records)} images, {len(faces.with_face)} with a face\n")
    results = [
        "| embedder | scorer | intruders | half | round | untouched purity | kept purity | genuine kept "
        "| frontal kept | profiles kept | wrong removed | wrong kept |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    notes = [
        "| embedder | scorer | intruders | review flags | mean abs purity error | planted pairs flagged "
        "| other pairs flagged | lowest planted cosine | highest other cosine |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for embedder in args.embedders.split(","):
        vectors = faces.embed(embedder)
        non_faces = get_embedder(embedder).embed(non_face_chips(NON_FACES, args.seed))
        scorers = args.scorers.split(",")
        chosen = (
            calibrate(people, vectors, non_faces, yaw, embedder, args) if "cohort" in args.scorers else None
        )
        for scorer in scorers:
            config = scorer_config(scorer, embedder, args, chosen if scorer.startswith("cohort") else None)
            for rate in RATES:
                rows = build_collection(people, vectors, non_faces, rate, args.seed)
                work = OUT / "work" / f"{embedder}-{scorer}-{rate}"
                table, stats = run_rank(rows, work, embedder, config, {} if "noyaw" in scorer else yaw)
                for half, calibration in (("calibration", True), ("report", False)):
                    for k, f in enumerate(round_figures(table, args.rounds, calibration), 1):
                        results.append(
                            f"| {embedder} | {scorer} | {rate:.0%} | {half} | {k} | {f['untouched']:.2%} "
                            f"| {f['purity']:.2%} | {f['true_kept']:.2%} | {f['frontal_kept']:.2%} "
                            f"| {f['profile_kept']:.2%} of {f['profiles']} | {f['removed']:.2%} "
                            f"| {f['wrong_kept']} |"
                        )
                ident, over = identity_figures(table), overlap_figures(rows, table, stats)
                notes.append(
                    f"| {embedder} | {scorer} | {rate:.0%} | {ident['flagged']}/{ident['identities']} "
                    f"| {ident['purity_error']:.3f} | {over['hits']}/{over['planted']} | {over['others']} "
                    f"| {over['planted_min']:.3f} | {over['other_max']:.3f} |"
                )
    print("\n".join(results))
    print()
    print("\n".join(notes))


if __name__ == "__main__":
    main()
