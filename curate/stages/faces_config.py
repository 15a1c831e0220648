"""Settings of the ``faces`` stage (:mod:`curate.stages.faces`); light to import."""

from __future__ import annotations

from dataclasses import dataclass

from curate.constants import (
    DEFAULT_COARSE_SIDE,
    DEFAULT_MAX_PIXELS,
    DEFAULT_MAX_SIDE,
    DEFAULT_RETRY_MAX_SIDE,
    DetectorKind,
)
from curate.errors import ConfigError
from curate.settings import setting


@dataclass
class FacesConfig:
    """How faces are found and cropped."""

    detector: DetectorKind = setting(
        DetectorKind.CENTERFACE,
        help="centerface (frontal and profile), hog or cnn (dlib); see bench/results/faces.md",
    )
    upsample: int = setting(
        1, help="dlib only: image doublings before detection (faces to ~40 px at 1, ~20 at 2)", min=0, max=3
    )
    retry_detector: DetectorKind | None = setting(
        None, help="on a miss, a second pass with this detector (cnn: more poses; none = off)"
    )
    retry_upsample: int = setting(0, help="upsample of the second pass", min=0, max=3)
    retry_max_side: int = setting(
        DEFAULT_RETRY_MAX_SIDE, help="longest side the second pass sees (0 = any)", unit="pixels", min=0
    )
    dlib_landmarks_max_yaw: float = setting(
        60.0,
        help="centerface: faces turned under half this get dlib's 5 landmarks in CenterFace's box, "
        "blending to CenterFace's own at it (steadier crops of copies; 0 = off)",
        unit="degrees",
        min=0.0,
        max=90.0,
    )
    crop_size: int = setting(
        150,
        help="side of the aligned crop (150 with padding 0.25 suits dlib)",
        unit="pixels",
        min=16,
        max=1024,
    )
    padding: float = setting(
        0.25, help="margin around the landmarks' face, as a fraction of the face size", min=0.0, max=2.0
    )
    keep_whole_if_no_face: bool = setting(
        False, help="for data sets of face crops (ORL, synthetic): keep the whole image when no face is found"
    )
    min_face_px: int = setting(0, help="ignore faces smaller than this (0 = off)", unit="pixels", min=0)
    max_side: int = setting(
        DEFAULT_MAX_SIDE, help="shrink larger images before detection (0 = never)", unit="pixels", min=0
    )
    coarse_side: int = setting(
        DEFAULT_COARSE_SIDE,
        help="look first with larger images shrunk to this, at max_side only where no face is found "
        "(0 = off; same faces, about a third of the time on web photos: bench/results/faces.md)",
        unit="pixels",
        min=0,
    )
    max_pixels: int = setting(
        DEFAULT_MAX_PIXELS, help="images with more pixels are refused (unsafe_input)", unit="pixels", min=1
    )

    def validate(self) -> None:
        """Raise ConfigError on a combination that cannot work (ranges are checked from the metadata)."""
        retry = self.retry_detector
        if retry is not None and retry == self.detector == DetectorKind.CENTERFACE:
            raise ConfigError(
                "retry_detector", retry.value, "a centerface retry repeats the first pass; use cnn"
            )
        if retry is not None and retry == self.detector and self.retry_upsample <= self.upsample:
            fix = f"a {retry.value} retry needs retry_upsample above upsample={self.upsample}, or use cnn"
            raise ConfigError("retry_detector", retry.value, fix)
        for key in ("max_side", "coarse_side", "retry_max_side"):
            if getattr(self, key) != 0 and getattr(self, key) < 64:
                raise ConfigError(key, getattr(self, key), "use 0 (never shrink) or at least 64 pixels")
