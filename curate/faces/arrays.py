"""Image arrays as the face detectors take them: RGB uint8, shrunk for detection, or a whole-image crop."""

from __future__ import annotations

import numpy as np
from PIL import Image


def as_rgb_array(rgb: np.ndarray | Image.Image) -> np.ndarray:
    """An ``HxWx3`` C-contiguous uint8 array (what dlib accepts) from an RGB/grey array or PIL image."""
    if isinstance(rgb, Image.Image):
        rgb = np.asarray(rgb.convert("RGB"))
    array = np.asarray(rgb)
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 RGB image, got shape {array.shape}")
    return np.ascontiguousarray(array, dtype=np.uint8)


def shrink(rgb: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """``rgb`` shrunk so its longer side is at most ``max_side`` (0 = as is), and the scale applied."""
    longest = max(rgb.shape[:2])
    if not max_side or longest <= max_side:
        return rgb, 1.0
    scale = max_side / longest
    size = (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale)))
    return np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BILINEAR)), scale


def whole_image_crop(rgb: np.ndarray, size: int) -> np.ndarray:
    """The image's largest centred square, resized to ``size`` x ``size`` (aspect ratio kept).

    Used for data sets that are already face crops (ORL, the synthetic set) when no face is detected.
    """
    height, width = rgb.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    square = Image.fromarray(as_rgb_array(rgb)[top : top + side, left : left + side])
    return np.asarray(square.resize((size, size), Image.Resampling.BILINEAR))
