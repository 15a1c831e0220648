"""How well can the teacher embedder tell people apart in profile? Nearest neighbours among CFP faces.

For every face of CFP identities 001-250 that the faces stage's default detector finds (the images and
embeddings of ``bench/noisy_collection.py``, from the same caches): is its most similar other face (cosine)
one of the same person's? And how similar are its best same-person and best other-person matches? Printed
per pose (CFP's ``frontal`` / ``profile`` folders) and per half of ``bench/noisy_collection.py``. This bounds
what any ranking built on the embedder can keep at high purity: a profile whose nearest face is a stranger's
cannot be admitted without admitting strangers' profiles that look as close.

    nice python bench/profile_ceiling.py [--embedder dlib]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from noisy_collection import HERE, CfpFaces, calibration_half, cfp_people


def main() -> None:
    """Print the nearest-neighbour figures as a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embedder", default="dlib")
    parser.add_argument("--cache", type=Path, default=HERE.parent / "runs" / "bench_cfp" / "cache")
    args = parser.parse_args()
    people = cfp_people(250, 0, 250)
    name_of = {path.split("/")[0]: name for name, paths in people.items() for path in paths}
    faces = CfpFaces([p for paths in people.values() for p in paths], args.cache)
    vectors = faces.embed(args.embedder)
    paths = sorted(vectors)
    matrix = np.stack([vectors[p] for p in paths])
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    person = np.array([p.split("/")[0] for p in paths])
    profile = np.array(["/profile/" in p for p in paths])
    calibration = np.array([calibration_half(name_of[p]) for p in person])
    similarity = matrix @ matrix.T
    np.fill_diagonal(similarity, -np.inf)
    print(f"{args.embedder}: {len(paths)} faces of {len(people)} CFP identities\n")
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


if __name__ == "__main__":
    main()
