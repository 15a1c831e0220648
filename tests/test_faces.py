"""Face detection, 5-point alignment, quality measures and the ``faces`` stage, on real CFP and ORL images."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from PIL import Image, ImageFilter
from typer.testing import CliRunner

from curate.config import build_config
from curate.errors import ConfigError
from curate.faces import (
    DetectedFace,
    FaceAligner,
    aligned_crop_or_whole,
    laplacian_variance,
    load_models,
    whole_image_crop,
    yaw_from_landmarks,
)
from curate.record import BASE_COLUMNS, Status, empty_table
from curate.stage import local_context
from curate.stages.faces import COLUMNS, FacesConfig, FacesStage

IDENTITIES = ["001", "002", "003", "010", "020"]


@pytest.fixture(scope="module")
def aligner() -> FaceAligner:
    return FaceAligner()


def cfp(data_dir: Path, identity: str, pose: str, number: int) -> Path:
    return data_dir / "cfp" / "Data" / "Images" / identity / pose / f"{number:02d}.jpg"


def rgb(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def table_for(paths: list[Path], statuses: list[str] | None = None) -> pa.Table:
    statuses = statuses or [Status.OK.value] * len(paths)
    columns = {
        "image_id": [hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in paths],
        "identity_id": [Path(p).parent.name for p in paths],
        "identity_name": [Path(p).parent.name for p in paths],
        "source": [str(p) for p in paths],
        "path": [str(p) for p in paths],
        "status": statuses,
        "reason": ["" if s == "ok" else f"was {s}" for s in statuses],
    }
    return pa.table({name: pa.array(columns[name], type=BASE_COLUMNS[name]) for name in BASE_COLUMNS})


def run_stage(tmp_path: Path, table: pa.Table, **settings) -> pa.Table:
    stage = FacesStage(build_config(FacesConfig, settings))
    return stage.run_shard(table, local_context(tmp_path / "work", "faces"))


def test_frontal_faces_found_and_landmarks_match_hand_marked_eye_corners(data_dir, aligner):
    errors = []
    for identity in IDENTITIES:
        for number in (1, 2):
            image = rgb(cfp(data_dir, identity, "frontal", number))
            faces = aligner.detect(image)
            assert faces, f"{identity}/frontal/{number:02d}: no face"
            face = aligner.best_face(faces, image.shape)
            x0, y0, x1, y1 = face.box
            points = face.landmarks
            assert points.shape == (5, 2) and points.dtype == np.float32
            assert np.all(
                (points[:, 0] >= x0) & (points[:, 0] <= x1) & (points[:, 1] >= y0) & (points[:, 1] <= y1)
            )
            assert points[0, 0] > points[2, 0] and points[4, 1] > points[:4, 1].max()  # eye order, nose below
            # CFP's hand-marked fiducials 13 and 16 are the outer and inner corners of the image-left eye
            fiducials = np.loadtxt(
                data_dir / "cfp" / "Data" / "Fiducials" / identity / "frontal" / f"{number:02d}.txt",
                delimiter=",",
            )
            eye_distance = np.linalg.norm((points[0] + points[1]) / 2 - (points[2] + points[3]) / 2)
            errors += [np.linalg.norm(points[2] - fiducials[12]) / eye_distance]
            errors += [np.linalg.norm(points[3] - fiducials[15]) / eye_distance]
    assert np.mean(errors) < 0.08 and max(errors) < 0.2


def test_aligned_crop_has_the_size_and_level_eyes(data_dir, aligner):
    image = rgb(cfp(data_dir, "002", "frontal", 7))  # a tilted head
    face = aligner.best_face(aligner.detect(image), image.shape)
    tilt = math.degrees(math.atan2(*(face.landmarks[0] - face.landmarks[2])[::-1]))
    assert abs(tilt) > 8
    crop = aligner.align(image, face)
    assert crop.shape == (150, 150, 3) and crop.dtype == np.uint8
    again = aligner.best_face(aligner.detect(crop), crop.shape)
    eyes = again.landmarks
    assert abs(math.degrees(math.atan2(*(eyes[0] - eyes[2])[::-1]))) < 4
    small = FaceAligner(crop_size=112, models=aligner.models).align(image, face)
    assert small.shape == (112, 112, 3)


def test_cnn_detector_and_cnn_retry_find_a_profile_face_that_hog_misses(data_dir, aligner):
    image = rgb(cfp(data_dir, "001", "profile", 1))  # 158 x 157: small, so the CNN is quick on a CPU
    assert aligner.detect(image) == []
    faces = FaceAligner("cnn", upsample=0).detect(image)
    assert len(faces) == 1 and faces[0].size > 60
    retry = FaceAligner(retry_detector="cnn", retry_upsample=0)
    assert [face.box for face in retry.detect(image)] == [faces[0].box]
    frontal = rgb(cfp(data_dir, "001", "frontal", 1))  # found by HOG: the retry pass does not run
    assert retry.detect(frontal)[0].score == aligner.detect(frontal)[0].score
    x0, y0, x1, y1 = faces[0].box
    assert np.all((faces[0].landmarks >= (x0, y0)) & (faces[0].landmarks <= (x1, y1)))
    assert abs(yaw_from_landmarks(faces[0].landmarks)) > 30


def test_max_side_maps_boxes_and_landmarks_back(data_dir, aligner):
    image = rgb(cfp(data_dir, "002", "frontal", 10))  # 758 x 700
    full = aligner.best_face(aligner.detect(image), image.shape)
    shrunk_aligner = FaceAligner(max_side=300, models=aligner.models)
    shrunk = shrunk_aligner.best_face(shrunk_aligner.detect(image), image.shape)
    assert np.abs(np.subtract(full.box, shrunk.box)).max() < 0.1 * full.size
    assert np.abs(full.landmarks - shrunk.landmarks).max() < 0.05 * full.size


def web_photo(face_path: Path, width_share: float, side: int = 2000) -> np.ndarray:
    """A ``side`` x 3/4 ``side`` picture: blurred noise with the CFP photo pasted at ``width_share`` of it."""
    rng = np.random.default_rng(0)
    noise = Image.fromarray(rng.integers(60, 200, (side * 3 // 32, side // 8, 3), dtype=np.uint8))
    canvas = noise.resize((side, side * 3 // 4), Image.Resampling.BICUBIC).filter(ImageFilter.GaussianBlur(6))
    photo = Image.open(face_path).convert("RGB")
    scale = width_share * side / photo.width
    pasted = photo.resize((round(photo.width * scale), round(photo.height * scale)), Image.Resampling.LANCZOS)
    canvas.paste(pasted, (side // 3, side // 5))
    return np.asarray(canvas)


def test_coarse_look_first_then_max_side_only_where_it_finds_no_face(data_dir):
    models = load_models("centerface")
    passes: list[int] = []
    default = FaceAligner("centerface", models=models)  # coarse_side 640, max_side 1024
    run_pass = default._run_pass
    default._run_pass = lambda image, how: passes.append(how.max_side) or run_pass(image, how)
    at_1024 = FaceAligner("centerface", max_side=1024, coarse_side=0, models=models)
    at_640 = FaceAligner("centerface", max_side=640, coarse_side=0, models=models)
    face = cfp(data_dir, "001", "frontal", 1)

    small = web_photo(face, 0.03)  # a face of about 45 px in a 2,000 px photo: too small at 640 px
    assert at_640.detect(small) == []
    found = [f.box for f in at_1024.detect(small)]
    assert len(found) == 1
    assert [f.box for f in default.detect(small)] == found and passes == [640, 1024]

    passes.clear()
    large = web_photo(face, 0.25)  # a face of about 400 px: the coarse look finds it, nothing else runs
    faces = default.detect(large)
    assert passes == [640] and [f.box for f in faces] == [f.box for f in at_640.detect(large)]
    reference = at_1024.detect(large)[0]
    assert np.abs(np.subtract(faces[0].box, reference.box)).max() < 0.1 * reference.size

    passes.clear()
    photo = rgb(face)  # a CFP photo under 640 px: one pass, as before the coarse look existed
    assert [f.box for f in default.detect(photo)] == [f.box for f in at_1024.detect(photo)]
    assert passes == [1024]


def test_yaw_recovers_a_known_rotation_and_ignores_roll():
    eyes_nose = np.array(
        [[1.4, 0, 0], [0.6, 0, 0], [-1.4, 0, 0], [-0.6, 0, 0], [0, 1.2, 0.5]]
    )  # half-eye units
    for yaw in (-60, -20, 0, 15, 45):
        for roll in (0, 25):
            a, r = math.radians(yaw), math.radians(roll)
            x = eyes_nose[:, 0] * math.cos(a) + eyes_nose[:, 2] * math.sin(a)
            y = eyes_nose[:, 1]
            points = np.stack([x * math.cos(r) - y * math.sin(r), x * math.sin(r) + y * math.cos(r)], axis=1)
            assert yaw_from_landmarks(points * 40 + 100) == pytest.approx(yaw, abs=0.5)


def test_yaw_on_real_faces_separates_frontal_from_profile_and_flips_in_a_mirror(data_dir, aligner):
    frontal, profile = [], []
    for identity in IDENTITIES:
        for pose, numbers, into in (("frontal", (1, 2), frontal), ("profile", (1, 2, 3, 4), profile)):
            for number in numbers:
                image = rgb(cfp(data_dir, identity, pose, number))
                face = aligner.best_face(aligner.detect(image), image.shape)
                if face is not None:
                    into.append((image, yaw_from_landmarks(face.landmarks)))
    assert len(frontal) == 10 and len(profile) >= 3
    assert np.median([abs(y) for _, y in frontal]) < 15
    assert min(abs(y) for _, y in profile) > 30
    image, yaw = max(frontal, key=lambda item: abs(item[1]))  # a turned head with stable landmarks
    mirrored = np.ascontiguousarray(image[:, ::-1])
    mirror_yaw = yaw_from_landmarks(aligner.best_face(aligner.detect(mirrored), mirrored.shape).landmarks)
    assert np.sign(mirror_yaw) == -np.sign(yaw) and abs(mirror_yaw) == pytest.approx(abs(yaw), abs=5)


def test_laplacian_variance_matches_a_reference_loop_and_drops_with_blur(data_dir, aligner):
    image = rgb(cfp(data_dir, "003", "frontal", 2))
    crop = aligner.align(image, aligner.best_face(aligner.detect(image), image.shape))
    grey = np.asarray(Image.fromarray(crop).convert("L"), dtype=np.float64)[:40, :40]
    reference = [
        grey[i - 1, j] + grey[i + 1, j] + grey[i, j - 1] + grey[i, j + 1] - 4 * grey[i, j]
        for i in range(1, 39)
        for j in range(1, 39)
    ]
    assert laplacian_variance(grey) == pytest.approx(np.var(reference), rel=1e-6)
    blurred = np.asarray(Image.fromarray(crop).filter(ImageFilter.GaussianBlur(2)))
    assert laplacian_variance(blurred) < 0.3 * laplacian_variance(crop)


def test_best_face_prefers_larger_then_central():
    points = np.zeros((5, 2), np.float32)
    shape = (400, 400, 3)
    central = DetectedFace((150, 150, 250, 250), 1.0, points)
    corner_same = DetectedFace((0, 0, 100, 100), 2.0, points)
    corner_big = DetectedFace((0, 0, 150, 150), 0.5, points)
    rule = FaceAligner.best_face
    assert rule([corner_same, central], shape) is central
    assert rule([central, corner_big], shape) is corner_big
    assert rule([], shape) is None


def test_composite_of_two_faces_counts_both_and_keeps_the_larger(tmp_path, data_dir, aligner):
    big = Image.open(cfp(data_dir, "010", "frontal", 1)).convert("RGB")
    small = Image.open(cfp(data_dir, "020", "frontal", 1)).convert("RGB")
    big = big.resize((300, round(300 * big.height / big.width)))
    small = small.resize((200, round(200 * small.height / small.width)))
    paths = []
    for name, order in (("big_left.png", (big, small)), ("big_right.png", (small, big))):
        canvas = Image.new("RGB", (order[0].width + order[1].width, max(big.height, small.height)), "grey")
        canvas.paste(order[0], (0, 0))
        canvas.paste(order[1], (order[0].width, 0))
        canvas.save(tmp_path / name)
        paths.append(tmp_path / name)
    out = run_stage(tmp_path, table_for(paths)).to_pylist()
    assert [row["n_faces"] for row in out] == [2, 2]
    assert out[0]["box_x1"] <= 300 + 10 and out[1]["box_x0"] >= 200 - 10  # inside the larger picture
    assert all(row["status"] == "ok" and row["face_source"] == "detected" for row in out)


def test_stage_columns_on_cfp_and_content_addressed_crops(tmp_path, data_dir):
    paths = [cfp(data_dir, identity, "frontal", 3) for identity in IDENTITIES[:3]]
    out = run_stage(tmp_path, table_for([*paths, paths[0]]))
    assert out.schema.names == list(BASE_COLUMNS) + list(COLUMNS)
    assert all(out.schema.field(name).type == kind for name, kind in COLUMNS.items())
    rows = out.to_pylist()
    assert all(row["status"] == "ok" and row["face_source"] == "detected" for row in rows)
    for row in rows:
        crop_path = Path(row["crop_path"])
        digest = hashlib.sha256(crop_path.read_bytes()).hexdigest()
        assert crop_path == (tmp_path / "work" / "crops" / digest[:2] / f"{digest}.png").resolve()
        assert Image.open(crop_path).size == (150, 150)
        assert len(row["landmarks"]) == 10 and row["face_px"] > 40 and row["blur"] > 0
        assert row["box_x0"] < row["landmarks"][0] < row["box_x1"] and row["n_faces"] == 1
    assert rows[0]["crop_path"] == rows[3]["crop_path"]
    assert len({row["crop_path"] for row in rows}) == 3
    again = run_stage(tmp_path, table_for(paths[:1])).to_pylist()
    assert again[0]["crop_path"] == rows[0]["crop_path"]


def test_non_face_and_undecodable_images_are_kept_with_a_reason(tmp_path, data_dir):
    Image.new("RGB", (200, 200), (120, 160, 90)).save(tmp_path / "flat.png")
    noise = np.random.default_rng(0).integers(0, 256, (240, 240, 3), dtype=np.uint8)
    Image.fromarray(noise).save(tmp_path / "noise.png")
    (tmp_path / "broken.jpg").write_bytes(cfp(data_dir, "001", "frontal", 1).read_bytes()[:300])
    out = run_stage(
        tmp_path, table_for([tmp_path / "flat.png", tmp_path / "noise.png", tmp_path / "broken.jpg"])
    )
    rows = out.to_pylist()
    assert [row["status"] for row in rows] == ["no_face", "no_face", "failed_decode"]
    assert all("no face" in row["reason"] for row in rows[:2]) and rows[2]["reason"]
    assert [row["n_faces"] for row in rows] == [0, 0, None]
    assert all(row["crop_path"] is None and row["box_x0"] is None for row in rows)


def test_min_face_px_turns_small_faces_into_low_quality(tmp_path, data_dir):
    path = cfp(data_dir, "001", "frontal", 8)  # a 124 x 92 image: the face is about 60 px
    rows = run_stage(tmp_path, table_for([path]), min_face_px=100).to_pylist()
    assert rows[0]["status"] == "low_quality" and "min_face_px=100" in rows[0]["reason"]
    assert run_stage(tmp_path, table_for([path]), min_face_px=40).to_pylist()[0]["status"] == "ok"


def test_keep_whole_if_no_face_gives_whole_image_crops_for_orl(tmp_path, data_dir, aligner):
    paths = sorted((data_dir / "orl_faces" / "s1").glob("*.pgm")) + sorted(
        (data_dir / "orl_faces" / "s7").glob("*.pgm")
    )
    missed = [not aligner.detect(rgb(p)) for p in paths]
    assert any(missed) and not all(missed)
    kept = run_stage(tmp_path, table_for(paths), detector="hog", keep_whole_if_no_face=True).to_pylist()
    assert all(row["status"] == "ok" and row["crop_path"] for row in kept)
    assert [row["face_source"] == "whole_image" for row in kept] == missed
    for path, row, miss in zip(paths, kept, missed, strict=True):
        crop = np.asarray(Image.open(row["crop_path"]))
        assert crop.shape == (150, 150, 3)
        if miss:
            assert np.array_equal(crop, whole_image_crop(rgb(path), 150))
            assert row["box_x0"] is None and row["yaw_deg"] is None and row["blur"] > 0
    dropped = run_stage(tmp_path, table_for(paths), detector="hog").to_pylist()
    assert [row["status"] == "no_face" for row in dropped] == missed


def test_rows_not_ok_pass_through_untouched_and_empty_shard(tmp_path, data_dir):
    paths = [
        cfp(data_dir, "001", "frontal", 1),
        cfp(data_dir, "002", "frontal", 1),
        cfp(data_dir, "003", "frontal", 1),
    ]
    table = table_for(paths, ["failed_download", "ok", "excluded"])
    out = run_stage(tmp_path, table)
    assert out.select(list(BASE_COLUMNS)).equals(table)
    rows = out.to_pylist()
    for row in (rows[0], rows[2]):
        assert all(row[name] is None for name in COLUMNS)
    assert rows[1]["face_source"] == "detected"
    empty = run_stage(tmp_path, empty_table(BASE_COLUMNS))
    assert empty.num_rows == 0 and empty.schema.names == list(BASE_COLUMNS) + list(COLUMNS)
    assert len(list((tmp_path / "work" / "crops").rglob("*.png"))) == 1  # only the ok row made a crop


def test_aligned_crop_or_whole_helper(data_dir, aligner):
    image = rgb(cfp(data_dir, "001", "frontal", 1))
    crop, info = aligned_crop_or_whole(aligner, image, keep_whole_if_no_face=False)
    assert info.source == "detected" and info.n_faces == 1 and crop.shape == (150, 150, 3)
    assert np.array_equal(crop, aligner.align(image, info.face))
    flat = np.full((120, 120, 3), 200, np.uint8)
    assert aligned_crop_or_whole(aligner, flat, False)[0] is None
    whole, info = aligned_crop_or_whole(aligner, flat, True)
    assert info.source == "whole_image" and whole.shape == (150, 150, 3)
    both = FaceAligner(retry_detector="cnn", models=load_models("hog", "cnn"))
    for shape in [(1, 1, 3), (4, 900, 3), (900, 3, 3)]:  # slivers: no face, and no detector error
        crop, info = aligned_crop_or_whole(both, np.zeros(shape, np.uint8), True)
        assert info.source == "whole_image" and crop.shape == (150, 150, 3)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("upsample", -1),
        ("upsample", 5),
        ("crop_size", 8),
        ("padding", -0.1),
        ("min_face_px", -3),
        ("max_side", 10),
        ("detector", "mtcnn"),
        ("retry_detector", "centerface"),
        ("retry_max_side", 10),
    ],
)
def test_bad_config_names_the_key(key, value):
    with pytest.raises(ConfigError) as error:
        build_config(FacesConfig, {key: value})
    assert error.value.key == key


def test_cli_faces_after_collect(tmp_path, data_dir):
    from curate.cli import app  # the whole app: imported here so the library tests run without it

    source = tmp_path / "images"
    for identity in IDENTITIES[:2]:
        (source / identity).mkdir(parents=True)
        for number in (1, 2):
            (source / identity / f"{number}.jpg").write_bytes(
                cfp(data_dir, identity, "frontal", number).read_bytes()
            )
    Image.new("RGB", (90, 90), "white").save(source / IDENTITIES[0] / "flat.png")
    work = tmp_path / "w"
    runner = CliRunner()
    common = ["-w", str(work), "--workers", "1", "--shards", "2"]
    assert runner.invoke(app, [*common, "collect", str(source)]).exit_code == 0
    options = [
        "--crop-size",
        "112",
        "--detector",
        "hog",
        "--retry-detector",
        "cnn",
        "--retry-max-side",
        "200",
    ]
    result = runner.invoke(app, [*common, "faces", *options])
    assert result.exit_code == 0, result.output
    frame = pd.read_parquet(work / "faces")
    assert len(frame) == 5 and (frame.status == "ok").sum() == 4 and (frame.status == "no_face").sum() == 1
    assert all(Image.open(p).size == (112, 112) for p in frame.crop_path.dropna())
    assert "then cnn upsample 0" in frame[frame.status == "no_face"].reason.iloc[0]
    bad = runner.invoke(app, [*common, "faces", "--upsample", "9"])
    assert bad.exit_code == 1 and "upsample" in bad.output
