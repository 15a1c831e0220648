"""Build the :class:`FaceAligner` a ``faces`` run used from its settings.

The faces stage, evaluation and the conflict checks all call :func:`make_aligner`, so evaluation images are
aligned exactly as training images were. The settings are read by name (:class:`AlignerSettings`; the
``faces`` stage's ``FacesConfig`` has them all), so this package never imports the stage.
"""

from __future__ import annotations

from typing import Protocol

from curate.faces.detect import DetectorKind, FaceAligner, FaceModels


class AlignerSettings(Protocol):
    """The settings of ``curate.stages.faces.FacesConfig`` that decide how a face is found and cropped."""

    detector: DetectorKind | str
    upsample: int
    crop_size: int
    padding: float
    max_side: int
    coarse_side: int
    retry_detector: DetectorKind | str | None
    retry_upsample: int
    retry_max_side: int
    dlib_landmarks_max_yaw: float


def make_aligner(config: AlignerSettings, models: FaceModels | None = None) -> FaceAligner:
    """The aligner a ``faces`` run used, from its config (e.g. rebuilt from the stage's ``_config.json``).

    Evaluation code calls this to align its images exactly as the training images were aligned.
    """
    return FaceAligner(
        DetectorKind(config.detector).value,
        config.upsample,
        config.crop_size,
        config.padding,
        max_side=config.max_side,
        coarse_side=config.coarse_side,
        retry_detector=None if config.retry_detector is None else DetectorKind(config.retry_detector).value,
        retry_upsample=config.retry_upsample,
        retry_max_side=config.retry_max_side,
        dlib_landmarks_max_yaw=config.dlib_landmarks_max_yaw,
        models=models,
    )
