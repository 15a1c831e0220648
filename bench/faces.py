"""Benchmarks for the ``faces`` stage on the real CFP images.

``speed``: faces/s for one worker running :class:`~curate.stages.faces.FacesStage` on N CFP images, beside
the floor: dlib's bare detector + 5-point predictor on the same, already decoded, images.

``rates``: the face-found rate for frontal and for profile images on the full CFP set (7,000 images),
running the stage in at most ``--processes`` worker processes.

    python bench/faces.py speed --n 200
    python bench/faces.py --retry-detector cnn rates --processes 2
    python bench/faces.py --detector centerface rates --processes 2
"""

from __future__ import annotations

import argparse
import hashlib
import random
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import dlib
import numpy as np
import pyarrow as pa
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from curate.config import build_config  # noqa: E402
from curate.faces import load_models  # noqa: E402
from curate.faces.arrays import shrink  # noqa: E402
from curate.record import BASE_COLUMNS, Status  # noqa: E402
from curate.stage import local_context  # noqa: E402
from curate.stages.faces import FacesStage  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "data"


def cfp_paths(data: Path) -> list[Path]:
    """Every CFP image, identity then pose then number."""
    return sorted((data / "cfp" / "Data" / "Images").glob("*/*/*.jpg"))


def input_table(paths: list[Path]) -> pa.Table:
    """A collect-like manifest for ``paths``: the base columns, every row ok."""
    rows = {name: [] for name in BASE_COLUMNS}
    for path in paths:
        rows["image_id"].append(hashlib.sha256(path.read_bytes()).hexdigest())
        rows["identity_id"].append(f"cfp-{path.parts[-3]}")
        rows["identity_name"].append(path.parts[-3])
        rows["source"].append(str(path))
        rows["path"].append(str(path))
        rows["status"].append(Status.OK.value)
        rows["reason"].append("")
    return pa.table({name: pa.array(values, type=BASE_COLUMNS[name]) for name, values in rows.items()})


def stage_settings(args: argparse.Namespace) -> dict:
    """The stage settings chosen on the command line."""
    return {
        "detector": args.detector,
        "upsample": args.upsample,
        "max_side": args.max_side,
        "retry_detector": args.retry_detector,
        "retry_upsample": args.retry_upsample,
    }


def run_stage(paths: list[Path], settings: dict, workdir: str) -> tuple[pa.Table, float]:
    """Run the stage on ``paths`` in this process; return its output table and the seconds it took."""
    stage = FacesStage(build_config(FacesStage.Config, settings))
    table = input_table(paths)
    ctx = local_context(Path(workdir), "faces")
    stage.aligner(ctx)  # load the models outside the timing, as a warm worker has them
    start = time.perf_counter()
    out = stage.run_shard(table, ctx)
    return out, time.perf_counter() - start


def bare_dlib_seconds(paths: list[Path], upsample: int, max_side: int) -> tuple[float, int]:
    """The floor: dlib's HOG detector + 5-point predictor alone; (seconds, images with a face).

    Decoding and the ``max_side`` shrink happen before the clock starts, so this is what the stage would
    cost with no decoding, no crop, no PNG and no manifest work.
    """
    detector, predictor = dlib.get_frontal_face_detector(), load_models("hog").predictor
    images = [shrink(np.asarray(Image.open(path).convert("RGB")), max_side)[0] for path in paths]
    found = 0
    start = time.perf_counter()
    for image in images:
        rects, _, _ = detector.run(image, upsample, 0.0)
        for rect in rects:
            predictor(image, rect)
        found += bool(rects)
    return time.perf_counter() - start, found


def speed(args: argparse.Namespace) -> None:
    """Print faces/s for the stage and for bare dlib on the same N images."""
    paths = random.Random(args.seed).sample(cfp_paths(args.data), args.n)
    settings = stage_settings(args)
    with tempfile.TemporaryDirectory() as workdir:
        out, seconds = run_stage(paths, settings, workdir)
    faces = sum(source is not None for source in out.column("face_source").to_pylist())
    bare_seconds, bare_faces = bare_dlib_seconds(paths, args.upsample, args.max_side)
    print(f"{args.n} CFP images (seed {args.seed}), one worker process, stage settings {settings}")
    report = [
        ("stage", faces, seconds),
        ("bare dlib detector + predictor (pre-decoded)", bare_faces, bare_seconds),
    ]
    for label, found, took in report:
        rate = f"{found / took:.1f} faces/s, {args.n / took:.1f} images/s"
        print(f"{label}: {found} faces in {took:.1f} s = {rate}")


def _rates_chunk(job: tuple[list[Path], dict, str]) -> list[dict]:
    paths, settings, workdir = job
    out, _ = run_stage(paths, settings, workdir)
    return out.select(["path", "face_source", "yaw_deg"]).to_pylist()


def rates(args: argparse.Namespace) -> None:
    """Print the face-found rate and median |yaw| per pose on the full CFP set (or its first ``--limit``)."""
    paths = cfp_paths(args.data)[: args.limit or None]
    settings = stage_settings(args)
    chunks = [paths[i :: args.processes] for i in range(args.processes)]
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as workdir, ProcessPoolExecutor(args.processes) as pool:
        rows = [
            row for chunk in pool.map(_rates_chunk, [(c, settings, workdir) for c in chunks]) for row in chunk
        ]
    wall = time.perf_counter() - start
    print(f"CFP face-found rate, settings {settings}, {args.processes} processes, {wall:.0f} s wall")
    for pose in ("frontal", "profile"):
        of_pose = [row for row in rows if Path(row["path"]).parent.name == pose]
        yaws = [abs(row["yaw_deg"]) for row in of_pose if row["yaw_deg"] is not None]
        hits = sum(row["face_source"] is not None for row in of_pose)
        rate = 100 * hits / max(len(of_pose), 1)
        median_yaw = np.median(yaws) if yaws else float("nan")
        print(f"{pose}: {hits}/{len(of_pose)} = {rate:.2f} %, median |yaw| {median_yaw:.1f} deg")
    missed = sorted(row["path"] for row in rows if row["face_source"] is None and "/frontal/" in row["path"])
    print("frontal misses:", " ".join(str(Path(m).relative_to(args.data / "cfp")) for m in missed))


def main() -> None:
    """Parse the command line and run one benchmark."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared data folder")
    parser.add_argument("--detector", choices=["hog", "cnn", "centerface"], default="hog")
    parser.add_argument("--upsample", type=int, default=1)
    parser.add_argument("--retry-detector", choices=["hog", "cnn"], default=None)
    parser.add_argument("--retry-upsample", type=int, default=0)
    parser.add_argument("--max-side", type=int, default=1024)
    sub = parser.add_subparsers(dest="command", required=True)
    p_speed = sub.add_parser("speed", help="faces/s per worker vs bare dlib")
    p_speed.add_argument("--n", type=int, default=200, help="CFP images to time")
    p_speed.add_argument("--seed", type=int, default=0)
    p_rates = sub.add_parser("rates", help="face-found rate per pose on the full CFP set")
    p_rates.add_argument("--processes", type=int, default=2, choices=[1, 2])
    p_rates.add_argument("--limit", type=int, default=0, help="first N images only (0 = all)")
    args = parser.parse_args()
    speed(args) if args.command == "speed" else rates(args)


if __name__ == "__main__":
    main()
