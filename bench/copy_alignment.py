"""Do two copies of one photo get the same aligned face? CenterFace's own landmarks against dlib's.

On the planted cross-identity copies of ``tests/conflictset.py`` (real CFP photos resized x0.5-0.8 or
x1.3-1.8, cropped 2-6 % a side, JPEG quality 20-45), each original and its copy are aligned by three
aligners and compared as dedup's face check compares them: the dlib face cosine and the inner-face NCC
(``curate.search.conflicts``). The check needs cosine >= 0.95 and NCC >= 0.88 (0.92 for review-band pairs).

* CenterFace with its own points (``dlib_landmarks_max_yaw = 0``, the default before 2026-12-07);
* CenterFace with dlib's predictor's points in its box, blended by yaw (the default, 60);
* dlib HOG with the CNN retry (dlib's points), for reference.

    python bench/copy_alignment.py [--identities 60 --copies 24 --seed 0]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))  # the planted-set builder lives beside the tests

import conflictset  # noqa: E402

from curate.decode import load_rgb  # noqa: E402
from curate.embedders import get_embedder  # noqa: E402
from curate.faces import FaceAligner, load_models  # noqa: E402
from curate.search.face_crops import inner_thumbnail  # noqa: E402
from curate.search.verify import aligned_ncc  # noqa: E402


def crop(aligner: FaceAligner, path: Path) -> np.ndarray | None:
    """The aligned crop of the subject's face, or None."""
    rgb = np.asarray(load_rgb(str(path)).image)
    face = aligner.best_face(aligner.detect(rgb), rgb.shape)
    return None if face is None else aligner.align(rgb, face)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--identities", type=int, default=60)
    parser.add_argument("--copies", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    models = load_models("hog", "cnn", "centerface")
    aligners = {
        "CenterFace, own points": FaceAligner("centerface", models=models),
        "CenterFace, dlib points (yaw blend 60)": FaceAligner(
            "centerface", models=models, dlib_landmarks_max_yaw=60.0
        ),
        "dlib HOG + CNN retry": FaceAligner("hog", retry_detector="cnn", models=models),
    }
    embedder = get_embedder("dlib")
    identities = [f"{i:03d}" for i in range(1, args.identities + 1)]
    with tempfile.TemporaryDirectory(prefix="curate-align-") as tmp:
        truth = conflictset.build(
            args.data, Path(tmp) / "images", identities, copies=args.copies, templates=0, seed=args.seed
        )
        print(f"{len(truth.conflicts)} planted copies of CFP photos (seed {args.seed})")
        print("| aligner | pairs with both faces | min face cosine | min face NCC | NCC < 0.88 | < 0.92 |")
        print("|---|---|---|---|---|---|")
        for name, aligner in aligners.items():
            cosines, nccs = [], []
            for original, copy in truth.conflicts:
                crops = [crop(aligner, truth.root / p) for p in (original, copy)]
                if any(c is None for c in crops):
                    continue
                vectors = embedder.embed(crops)
                cosines.append(float(vectors[0] @ vectors[1]))
                thumbs = [inner_thumbnail(c)[None] for c in crops]
                nccs.append(float(aligned_ncc(*thumbs)[0]))
            ncc = np.array(nccs)
            print(
                f"| {name} | {len(ncc)} | {min(cosines):.3f} | {ncc.min():.3f} | {(ncc < 0.88).sum()} "
                f"| {(ncc < 0.92).sum()} |"
            )


if __name__ == "__main__":
    main()
