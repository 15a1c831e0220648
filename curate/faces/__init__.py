"""Faces: detection (CenterFace or dlib), 5-point alignment and crops, plus cheap quality measures.

The same :class:`FaceAligner`, built by :func:`make_aligner` from the faces stage's settings, aligns
training images (the ``faces`` stage) and evaluation images.
"""

from curate.faces.aligner import AlignerSettings, make_aligner
from curate.faces.arrays import whole_image_crop
from curate.faces.detect import (
    DEFAULT_MAX_SIDE,
    DEFAULT_RETRY_MAX_SIDE,
    DetectedFace,
    DetectionPass,
    DetectorKind,
    FaceAligner,
    FaceInfo,
    FaceModels,
    aligned_crop_or_whole,
    load_models,
)
from curate.faces.quality import face_size, laplacian_variance, yaw_from_landmarks

__all__ = [
    "DEFAULT_MAX_SIDE",
    "DEFAULT_RETRY_MAX_SIDE",
    "AlignerSettings",
    "DetectedFace",
    "DetectionPass",
    "DetectorKind",
    "FaceAligner",
    "FaceInfo",
    "FaceModels",
    "aligned_crop_or_whole",
    "face_size",
    "laplacian_variance",
    "load_models",
    "make_aligner",
    "whole_image_crop",
    "yaw_from_landmarks",
]
