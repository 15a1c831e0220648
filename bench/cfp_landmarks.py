"""Landmarks and yaw of CFP images as the faces stage finds them, cached once for the CFP benches.

The aligner is the faces stage's default one (:func:`curate.evaluate.run.faces_config`, so the same as
``curate evaluate`` and the evaluation crop cache use: CenterFace since issue 12). Per image the cache holds
the chosen face's box (4) and its 5 landmarks in dlib's order (10), NaN when no face is found, in
``bench/out/cfp_faces-<aligner key>.npz`` (keyed by the path under ``cfp/Data/Images``), so a change of
detector or alignment settings never reads another's landmarks. ``bench/noisy_collection.py`` and
``bench/train_cfp.py`` take the head yaw (``yaw_deg``, computed as the faces stage computes it) from here.

    nice python bench/cfp_landmarks.py 1 250   # fill the cache for CFP identities 001-250
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from curate.evaluate.run import aligner_key, faces_config  # noqa: E402
from curate.faces.quality import yaw_from_landmarks  # noqa: E402

logger = logging.getLogger(__name__)

OUT = REPO / "bench" / "out"
IMAGES = REPO.parent / "shared" / "data" / "cfp" / "Data" / "Images"


def cached(
    cache: Path, keys: list[str], compute: Callable[[list[str]], Any], what: str
) -> dict[str, np.ndarray]:
    """Per-key arrays from an ``.npz`` cache; missing keys are computed in batches of 100 and saved."""
    known: dict[str, np.ndarray] = {}
    if cache.exists():
        stored = np.load(cache)
        known = dict(zip(stored["keys"].tolist(), stored["values"], strict=True))
    missing = [k for k in keys if k not in known]
    for start in range(0, len(missing), 100):
        batch = missing[start : start + 100]
        known.update(zip(batch, compute(batch), strict=True))
        names = sorted(known)
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(cache.stem + ".tmp.npz")
        np.savez(tmp, keys=np.array(names), values=np.stack([known[k] for k in names]))
        tmp.replace(cache)
        logger.info("%s: %d / %d computed", what, start + len(batch), len(missing))
    return {k: known[k] for k in keys}


def cfp_path(path: str | Path) -> str:
    """The key of a CFP image: its path under ``cfp/Data/Images`` (``<id>/<frontal|profile>/<n>.jpg``)."""
    return "/".join(Path(path).parts[-3:])


class CfpLandmarks:
    """Box and landmarks (cached) of the faces stage's chosen face in each CFP image."""

    def __init__(self, paths: list[str | Path]) -> None:
        self.config = faces_config(None)
        self.aligner: Any = None
        keys = [cfp_path(p) for p in paths]
        cache = OUT / f"cfp_faces-{aligner_key(self.config)}.npz"
        self.records = cached(cache, keys, self._detect, "face detection")

    def _detect(self, batch: list[str]) -> list[np.ndarray]:
        """Per image: box (4) and landmarks (10) of the chosen face, NaN when none."""
        from curate.decode import load_rgb
        from curate.faces import make_aligner

        if self.aligner is None:
            self.aligner = make_aligner(self.config)
        rows = []
        for key in batch:
            rgb = np.asarray(load_rgb(IMAGES / key, max_pixels=self.config.max_pixels).image)
            face = self.aligner.best_face(self.aligner.detect(rgb), rgb.shape)
            rows.append(np.full(14, np.nan) if face is None else np.r_[face.box, face.landmarks.ravel()])
        return rows

    def found(self, path: str | Path) -> bool:
        """Whether a face was found in the image."""
        return not np.isnan(self.records[cfp_path(path)][0])

    def yaw(self, path: str | Path) -> float:
        """The face's yaw in degrees from its landmarks, as the faces stage writes ``yaw_deg`` (NaN: none)."""
        record = self.records[cfp_path(path)]
        return float("nan") if np.isnan(record[0]) else yaw_from_landmarks(record[4:].reshape(5, 2))


def main() -> None:
    """Fill the cache for the CFP identities ``first``-``last`` (command-line arguments)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    first, last = int(sys.argv[1]), int(sys.argv[2])
    paths = [p for i in range(first, last + 1) for p in sorted((IMAGES / f"{i:03d}").glob("*/*.jpg"))]
    marks = CfpLandmarks(paths)
    found = sum(marks.found(p) for p in paths)
    print(f"{len(paths)} images, {found} with a face")


if __name__ == "__main__":
    main()
