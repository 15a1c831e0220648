"""Cheap per-face quality measures: size, sharpness (blur) and head yaw from the 5 landmarks.

These are numbers for filtering and for histograms in the dataset card, not precise estimates: each
costs microseconds and needs nothing beyond what the ``faces`` stage already has.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import numpy as np

logger = logging.getLogger(__name__)

NOSE_DEPTH_RATIO = 0.5
"""Assumed depth of the nose base in front of the eye centres, in half inter-eye distances.

A rough figure for a generic adult face (eye centres about 30 mm either side of the midline, nose base
about 15 mm in front of them); individual faces vary, so the degrees are approximate.
"""

_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R BT.601, as PIL's "L" conversion


def face_size(box: Sequence[int]) -> int:
    """A face box's size in pixels: the geometric mean of its width and height (the side for a square)."""
    x0, y0, x1, y1 = box
    return round(math.sqrt(max(x1 - x0, 0) * max(y1 - y0, 0)))


def laplacian_variance(image: np.ndarray) -> float:
    """Sharpness: the variance of the 4-neighbour Laplacian of the grey image (low = blurred).

    ``image`` is HxW grey or HxWx3 RGB, values 0-255. The figure depends on the crop size, so compare
    only crops cut at the same size (the ``faces`` stage measures its own crops).
    """
    grey = np.asarray(image, dtype=np.float32)
    if grey.ndim == 3:
        grey = grey @ _LUMA
    if grey.shape[0] < 3 or grey.shape[1] < 3:
        return 0.0
    centre = grey[1:-1, 1:-1]
    laplacian = grey[:-2, 1:-1] + grey[2:, 1:-1] + grey[1:-1, :-2] + grey[1:-1, 2:] - 4.0 * centre
    return float(laplacian.var())


def yaw_from_landmarks(landmarks: np.ndarray) -> float:
    """Head yaw in degrees from dlib's 5 points: 0 = frontal, the sign says which way the nose points.

    Under orthographic projection a head turned by ``yaw`` shows the eye centres ``w * cos(yaw)`` either
    side of their midpoint and the nose base ``d * sin(yaw)`` off it, so the nose offset along the eye
    line, divided by half the eye distance, is ``(d / w) * tan(yaw)`` with ``d / w`` =
    :data:`NOSE_DEPTH_RATIO`. Measuring along the eye line makes the estimate independent of roll.
    Positive when the nose lies towards the image's right of the eye midpoint.
    """
    points = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
    eye_right = (points[0] + points[1]) / 2  # the eye on the image's right
    eye_left = (points[2] + points[3]) / 2
    axis = eye_right - eye_left
    half_distance = float(np.linalg.norm(axis)) / 2
    if half_distance < 1e-6:
        return 0.0
    offset = float(np.dot(points[4] - (eye_left + eye_right) / 2, axis / (2 * half_distance)))
    return math.degrees(math.atan(offset / half_distance / NOSE_DEPTH_RATIO))
