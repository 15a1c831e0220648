"""The faces stage's ``max_side`` on web-photo-sized images: faces found, alignment and time per setting.

CFP's files are small (median about 200 px), so the stage's ``max_side`` (images larger than it are shrunk
before detection) never acts on them. Web photos are 1,000-4,000 px, where CenterFace's cost grows with
the pixels. This bench builds web-photo-sized pictures from real faces: a CFP photo (identities 251-500,
frontal and profile) scaled so its face is a given share of the picture's longer side and pasted at a
random place on a face-free background (a random part of scikit-learn's two sample photos, enlarged to
1,200-2,000 px, so blurred like a shallow depth of field), then saved and decoded as a JPEG (quality 90).

For each ``max_side`` in ``--sides`` it runs the stage's own aligner (``make_aligner`` on ``FacesConfig``
defaults but ``max_side``, with the coarse look off: ``coarse_side`` 0), then the stage's default aligner
(a coarse look at ``coarse_side`` 640 px, then ``max_side`` 1,024 only where that finds no face), and
reports, per face share:

- **found**: the face the stage keeps (``best_face``) is the planted one (box IoU >= 0.4 with the planted
  face's box, CenterFace's box on the CFP photo mapped into the picture);
- **landmarks**: the median and 95th percentile distance of the 5 points from those placed with the
  first of ``--sides`` (0: the full-size picture), in eye distances;
- **same crop**: the cosine between dlib's embeddings of the aligned crop and of the one made with the
  first of ``--sides`` (1.0 = the same crop);
- **ms**: mean wall time of detection per picture, one process, one thread each (onnxruntime and torch).

    python bench/faces_max_side.py [--n 100] [--sides 0,1024,800,640] [--shares 0.03,0.05,0.08,0.12,0.2]
"""

from __future__ import annotations

import argparse
import io
import os
import random
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_sample_images

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from curate.embedders import get_embedder
from curate.faces import DetectedFace, FaceAligner, make_aligner
from curate.stages.faces_config import FacesConfig

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
IOU_FOUND = 0.4


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Intersection over union of two ``(x0, y0, x1, y1)`` boxes."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def cfp_sample(data: Path, n: int, rng: random.Random) -> list[Path]:
    """``n`` CFP files of identities 251-500, about 60 % frontal and 40 % profile."""
    root = data / "cfp" / "Data" / "Images"
    frontal = sorted(p for p in root.glob("*/frontal/*.jpg") if int(p.parts[-3]) > 250)
    profile = sorted(p for p in root.glob("*/profile/*.jpg") if int(p.parts[-3]) > 250)
    n_profile = int(n * 0.4)
    return rng.sample(frontal, n - n_profile) + rng.sample(profile, n_profile)


def background(rng: random.Random, samples: list[np.ndarray], size: tuple[int, int]) -> Image.Image:
    """A random part of a sample photo, enlarged to ``size`` (width, height)."""
    photo = samples[rng.randrange(len(samples))]
    height, width = photo.shape[:2]
    part_w = rng.randint(width // 3, width)
    part_h = min(height, max(8, round(part_w * size[1] / size[0])))
    x0, y0 = rng.randint(0, width - part_w), rng.randint(0, height - part_h)
    part = Image.fromarray(photo[y0 : y0 + part_h, x0 : x0 + part_w])
    return part.resize(size, Image.Resampling.BICUBIC)


def web_photo(
    face_photo: Image.Image,
    box: tuple[float, ...],
    share: float,
    rng: random.Random,
    samples: list[np.ndarray],
) -> tuple[np.ndarray, tuple[float, ...]]:
    """``face_photo`` pasted so its face box is ``share`` of the longer side; (RGB array, planted box)."""
    longer = rng.choice((1200, 1600, 2000))
    size = (longer, longer * 3 // 4) if rng.random() < 0.5 else (longer * 3 // 4, longer)
    face_side = max(box[2] - box[0], box[3] - box[1])
    scale = share * longer / face_side
    pasted = face_photo.resize(
        (max(1, round(face_photo.width * scale)), max(1, round(face_photo.height * scale))),
        Image.Resampling.LANCZOS,
    )
    canvas = background(rng, samples, size)
    x = rng.randint(0, max(0, size[0] - pasted.width))
    y = rng.randint(0, max(0, size[1] - pasted.height))
    canvas.paste(pasted, (x, y))
    buffer = io.BytesIO()
    canvas.save(buffer, format="JPEG", quality=90)
    planted = (box[0] * scale + x, box[1] * scale + y, box[2] * scale + x, box[3] * scale + y)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")), planted


def main() -> None:
    """Print one table: per max_side and face share, found rate, landmark shift, crop agreement, time."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--n", type=int, default=100, help="CFP photos (each pasted once per share)")
    parser.add_argument(
        "--sides", default="0,1024,800,640", help="max_side values; the first is the reference"
    )
    parser.add_argument(
        "--shares", default="0.03,0.05,0.08,0.12,0.2", help="face side / picture's longer side"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sides = [int(v) for v in args.sides.split(",")]
    shares = [float(v) for v in args.shares.split(",")]
    rng = random.Random(args.seed)
    samples = [np.asarray(image) for image in load_sample_images().images]
    default = FacesConfig()
    aligners: dict[int | str, FaceAligner] = {
        side: make_aligner(FacesConfig(max_side=side, coarse_side=0)) for side in sides
    }
    labels: list[int | str] = [*sides, f"{default.coarse_side}, then {default.max_side} on a miss (default)"]
    aligners[labels[-1]] = make_aligner(default)
    reference_aligner = make_aligner(FacesConfig(max_side=0, coarse_side=0))
    embedder = get_embedder("dlib")
    rows: dict[tuple[int | str, float], dict[str, list[float]]] = {
        (label, share): {"found": [], "shift": [], "cosine": [], "seconds": []}
        for label in labels
        for share in shares
    }
    skipped = 0
    for path in cfp_sample(args.data, args.n, rng):
        photo = Image.open(path).convert("RGB")
        own = FaceAligner.best_face(reference_aligner.detect(np.asarray(photo)), np.asarray(photo).shape)
        if own is None:
            skipped += 1
            continue
        for share in shares:
            picture, planted = web_photo(photo, own.box, share, rng, samples)
            kept: dict[int | str, DetectedFace] = {}
            for label in labels:
                started = time.perf_counter()
                faces = aligners[label].detect(picture)
                rows[(label, share)]["seconds"].append(time.perf_counter() - started)
                best = FaceAligner.best_face(faces, picture.shape)
                found = best is not None and iou(best.box, planted) >= IOU_FOUND
                rows[(label, share)]["found"].append(float(found))
                if found:
                    kept[label] = best
            reference = kept.get(sides[0])
            if reference is None:
                continue
            eyes = float(np.linalg.norm(reference.landmarks[0:2].mean(0) - reference.landmarks[2:4].mean(0)))
            crops = {label: reference_aligner.align(picture, face) for label, face in kept.items()}
            vectors = dict(zip(crops, embedder.embed(list(crops.values())), strict=True))
            for side, face in kept.items():
                shift = np.linalg.norm(face.landmarks - reference.landmarks, axis=1).mean() / max(eyes, 1.0)
                rows[(side, share)]["shift"].append(float(shift))
                rows[(side, share)]["cosine"].append(float(vectors[side] @ vectors[sides[0]]))
    print(
        f"{args.n} CFP photos of identities 251-500 ({skipped} without a face at full size), seed {args.seed}"
    )
    print(
        "| max_side | face share | pictures | found | landmark shift, median / p95 (eye distances) |"
        " crop cosine, median / p5 | ms per picture |"
    )
    print("|---|---|---|---|---|---|---|")
    for share in shares:
        for side in labels:
            row = rows[(side, share)]
            shift = np.asarray(row["shift"]) if row["shift"] else np.zeros(1)
            cosine = np.asarray(row["cosine"]) if row["cosine"] else np.ones(1)
            milliseconds = 1000 * np.mean(row["seconds"])
            print(
                f"| {side} | {share:.2f} | {len(row['found'])} | {np.mean(row['found']):.2%} | "
                f"{np.median(shift):.3f} / {np.percentile(shift, 95):.3f} | "
                f"{np.median(cosine):.4f} / {np.percentile(cosine, 5):.4f} | {milliseconds:.0f} |"
            )


if __name__ == "__main__":
    main()
