"""How well can the teacher embedder tell people apart in profile? Nearest neighbours among CFP faces.

For every face of CFP identities 001-250 that the faces stage's default detector finds (the images and
embeddings of ``bench/noisy_collection.py``, from the same caches): is its most similar other face (cosine)
one of the same person's? And how similar are its best same-person and best other-person matches? Printed
per pose (CFP's ``frontal`` / ``profile`` folders) and per half of ``bench/noisy_collection.py``. This bounds
what any ranking built on the embedder can keep at high purity: a profile whose nearest face is a stranger's
cannot be admitted without admitting strangers' profiles that look as close.

``--flip`` also embeds every aligned crop mirrored left to right (cached beside the crops) and prints, for
the plain vectors and for the mean of each face's two vectors (flip averaging): the nearest-neighbour
figures, and the share of profiles whose cosine to their own person's frontal centre beats the given
quantiles of their cosines to every other person's frontal centre (the genuine profiles a centre-based
ranking keeps at that false-accept rate).

    nice python bench/profile_ceiling.py [--embedder dlib] [--flip]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from noisy_collection import CFP, HERE, CfpFaces, calibration_half, cfp_people

from curate.embedders import get_embedder
from curate.evaluate.run import CropCache, aligner_key, faces_config, image_key

FALSE_ACCEPT = (0.001, 0.005, 0.05)


def nearest_table(
    matrix: np.ndarray, person: np.ndarray, profile: np.ndarray, calibration: np.ndarray
) -> None:
    """Print the nearest-neighbour table of unit ``matrix`` rows, per half and pose."""
    similarity = matrix @ matrix.T
    np.fill_diagonal(similarity, -np.inf)
    print(
        "| half | pose | faces | nearest face is the same person | median best same-person cosine "
        "| median best other-person cosine |"
    )
    print("|---|---|---|---|---|---|")
    for half, in_half in (("calibration", calibration), ("report", ~calibration)):
        for pose, mask in (("frontal", ~profile), ("profile", profile)):
            rows = np.flatnonzero(mask & in_half)
            same = person[None, :] == person[rows, None]
            own = np.where(same, similarity[rows], -np.inf).max(axis=1)
            other = np.where(~same, similarity[rows], -np.inf).max(axis=1)
            print(
                f"| {half} | {pose} | {len(rows)} | {np.mean(own > other):.2%} | {np.median(own):.3f} "
                f"| {np.median(other):.3f} |"
            )


def centre_keep(matrix: np.ndarray, person: np.ndarray, profile: np.ndarray) -> list[float]:
    """Share of profiles whose own frontal-centre cosine beats each ``FALSE_ACCEPT`` quantile of the
    cosines of all profiles to other people's frontal centres."""
    people = sorted(set(person))
    centres = np.stack([matrix[(person == p) & ~profile].mean(axis=0) for p in people])
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    rows = np.flatnonzero(profile)
    scores = matrix[rows] @ centres.T
    own_index = np.searchsorted(people, person[rows])
    own = scores[np.arange(len(rows)), own_index]
    others = np.delete(scores.ravel(), own_index + np.arange(len(rows)) * len(people))
    return [float(np.mean(own > np.quantile(others, 1 - rate))) for rate in FALSE_ACCEPT]


def mirrored_vectors(paths: list[str], embedder_name: str, cache: Path) -> np.ndarray:
    """The embedder's vectors of every face's aligned crop mirrored left to right (cached as .npz)."""
    key = aligner_key(faces_config(None))
    stored = cache / "embeddings" / f"mirrored-{embedder_name}-{key}.npz"
    if stored.exists():
        saved = np.load(stored)
        if list(saved["paths"]) == paths:
            return saved["vectors"]
    crops, embedder = CropCache(cache / "crops" / key), get_embedder(embedder_name)
    vectors = []
    for start in range(0, len(paths), 64):
        files = [CFP / "Images" / p for p in paths[start : start + 64]]
        vectors.append(embedder.embed([crops.image(image_key(f), f)[:, ::-1] for f in files]))
    stacked = np.concatenate(vectors)
    np.savez(stored, paths=np.array(paths), vectors=stacked)
    return stacked


def unit(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length."""
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


def main() -> None:
    """Print the nearest-neighbour figures as a Markdown table (and the flip comparison with ``--flip``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embedder", default="dlib")
    parser.add_argument("--cache", type=Path, default=HERE.parent / "runs" / "bench_cfp" / "cache")
    parser.add_argument("--flip", action="store_true", help="also measure flip averaging")
    args = parser.parse_args()
    people = cfp_people(250, 0, 250)
    name_of = {path.split("/")[0]: name for name, paths in people.items() for path in paths}
    faces = CfpFaces([p for paths in people.values() for p in paths], args.cache)
    vectors = faces.embed(args.embedder)
    paths = sorted(vectors)
    matrix = unit(np.stack([vectors[p] for p in paths]))
    person = np.array([p.split("/")[0] for p in paths])
    profile = np.array(["/profile/" in p for p in paths])
    calibration = np.array([calibration_half(name_of[p]) for p in person])
    print(f"{args.embedder}: {len(paths)} faces of {len(people)} CFP identities\n")
    nearest_table(matrix, person, profile, calibration)
    if not args.flip:
        return
    averaged = unit(matrix + unit(mirrored_vectors(paths, args.embedder, args.cache)))
    print("\nWith flip averaging (each face: the mean of its crop's vector and its mirrored crop's):\n")
    nearest_table(averaged, person, profile, calibration)
    rates = " | ".join(f"kept at false accept {rate}" for rate in FALSE_ACCEPT)
    print(f"\nProfiles against frontal centres, both halves:\n\n| vectors | {rates} |")
    print("|---|" + "---|" * len(FALSE_ACCEPT))
    for label, chosen in (("plain", matrix), ("flip-averaged", averaged)):
        kept = " | ".join(f"{share:.2%}" for share in centre_keep(chosen, person, profile))
        print(f"| {label} | {kept} |")


if __name__ == "__main__":
    main()
