"""A skin-tone group per identity, measured from its pictures, for bias checks where no attribute is recorded.

The Individual Typology Angle (ITA, Chardon et al. 1991), ``atan((L* - 50) / b*)`` in degrees over CIELAB
pixels, is the dermatologists' skin-tone measure that face-data audits use when no label exists: higher is
lighter. It is taken as the median over the central square of each image (the middle of an aligned face:
cheeks, nose, forehead) and then over an identity's images; identities split at the median ITA into
``lighter`` and ``darker`` halves. A measured proxy, not a self-reported attribute: lighting and cosmetics
move it, so read the groups as "lighter-looking / darker-looking in these pictures".
"""

from __future__ import annotations

import logging
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image

logger = logging.getLogger(__name__)

ATTRIBUTE = "skin tone (ITA of the face centre, median split of identities)"
WHITE_D65 = np.array([0.95047, 1.0, 1.08883])
SRGB_TO_XYZ = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """CIELAB (D65) of ``... x 3`` uint8 sRGB values."""
    c = rgb.astype(np.float64) / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    xyz = linear @ SRGB_TO_XYZ.T / WHITE_D65
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


def ita_degrees(path: Path, centre: float = 0.3) -> float:
    """Median ITA over the central ``centre`` x ``centre`` share of the image."""
    with Image.open(path) as image:
        rgb = np.asarray(image.convert("RGB"))
    h, w = rgb.shape[:2]
    dy, dx = int(h * centre / 2), int(w * centre / 2)
    lab = rgb_to_lab(rgb[h // 2 - dy : h // 2 + dy + 1, w // 2 - dx : w // 2 + dx + 1].reshape(-1, 3))
    return float(np.median(np.degrees(np.arctan2(lab[:, 0] - 50, np.maximum(lab[:, 2], 1e-6)))))


def skin_groups(paths: list[Path], identities: list[str]) -> list[str]:
    """Per image, its identity's group: ``lighter`` or ``darker`` (split at the identities' median ITA)."""
    values: dict[str, list[float]] = defaultdict(list)
    for path, identity in zip(paths, identities, strict=True):
        values[identity].append(ita_degrees(path))
    per_identity = {identity: float(np.median(v)) for identity, v in values.items()}
    cut = float(np.median(list(per_identity.values())))
    logger.info("skin-tone split at ITA %.1f degrees over %d identities", cut, len(per_identity))
    return ["lighter" if per_identity[identity] > cut else "darker" for identity in identities]
