"""The ``faces`` stage: detect, align (5 points) and crop the subject's face in every ok image.

Per ok row: decode the file at ``path``, detect faces (:class:`~curate.faces.FaceAligner`: CenterFace or
dlib's HOG or CNN detector, then, only where it found nothing, an optional second pass ``retry_detector``),
keep the most
likely subject (largest and most central, see :meth:`~curate.faces.FaceAligner.best_face`) and record
how many faces there were, then store its aligned crop and cheap quality figures. Outcomes:

- a face: ``face_source = "detected"``, every column set;
- no face: status ``no_face`` with a reason (the row stays for review), unless ``keep_whole_if_no_face``,
  which keeps the whole image (centred square) as the crop with ``face_source = "whole_image"``;
- only faces smaller than ``min_face_px``: status ``low_quality`` (same ``keep_whole_if_no_face`` rule);
- a file that no longer decodes: the decoder's status (``failed_decode`` / ``unsafe_input``) and reason.

Crops are content-addressed: ``<workdir>/crops/<h[:2]>/<h>.png`` with ``h`` the sha256 of the PNG bytes.
So the same crop is stored once however often it is made (a re-run, a duplicate image, two stages with the
same settings), a file's name proves its content, and a re-run with changed settings never overwrites a
crop an earlier manifest points to. ``crop_path`` is absolute, like ``path``, and names the workdir that
wrote it; when the workdir is moved or copied, readers take each crop from the new place's store
(:func:`curate.manifest.with_moved_crops`).
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa

from curate import storage
from curate.crops import crop_png
from curate.decode import load_rgb
from curate.faces import (
    DetectorKind,
    FaceAligner,
    aligned_crop_or_whole,
    load_models,
    make_aligner,
)
from curate.faces.quality import laplacian_variance, yaw_from_landmarks
from curate.record import Status, add_columns, ok_mask, set_status
from curate.stage import ShardStage, StageContext
from curate.stages.faces_config import FacesConfig
from curate.storage import ContentStore

logger = logging.getLogger(__name__)

COLUMNS: dict[str, pa.DataType] = {
    "crop_path": pa.string(),  # aligned crop (PNG, crop_size square); null when there is none
    "face_source": pa.string(),  # "detected" or "whole_image"; null when there is no crop
    "n_faces": pa.int32(),  # faces found (at least min_face_px); 0 when none
    "box_x0": pa.int32(),  # chosen face box in original image pixels (may reach past the edges)
    "box_y0": pa.int32(),
    "box_x1": pa.int32(),
    "box_y1": pa.int32(),
    "landmarks": pa.list_(pa.float32(), 10),  # x0, y0, ..., x4, y4 in dlib's 5-point order, image pixels
    "det_score": pa.float32(),  # detector score (HOG: SVM margin, CNN: confidence, CenterFace: 0-1 peak)
    "face_px": pa.int32(),  # face size: sqrt(box width * box height)
    "blur": pa.float32(),  # variance of the Laplacian of the grey crop (low = blurred)
    "yaw_deg": pa.float32(),  # head yaw estimated from the 5 landmarks, 0 = frontal
}


def store_crop(workdir: Path, crop: np.ndarray) -> str:
    """Write ``crop`` as PNG under its content address in ``workdir`` and return the absolute path."""
    return str(ContentStore(storage.crops_dir(Path(workdir).resolve())).put(crop_png(crop), ".png"))


class FacesStage(ShardStage):
    """Detect, align and crop one face per ok image; see the module docstring for the outcomes."""

    name: ClassVar[str] = "faces"
    Config: ClassVar[type] = FacesConfig
    default_input: ClassVar[str | None] = "collect"

    def aligner(self, ctx: StageContext) -> FaceAligner:
        """This config's aligner; its models (dlib's, the ONNX session) are loaded once per worker process."""
        cfg: FacesConfig = self.config
        kinds = sorted(
            {DetectorKind(kind) for kind in (cfg.detector, cfg.retry_detector) if kind is not None}
        )
        key = "curate.faces.models." + "+".join(kind.value for kind in kinds)
        return make_aligner(cfg, ctx.resource(key, lambda: load_models(*kinds)))

    def face_columns(
        self, path: str | None, aligner: FaceAligner, workdir: Path
    ) -> tuple[dict[str, Any], Status, str]:
        """One image's face columns, its new status and the reason (empty when ok); never raises per image."""
        cfg: FacesConfig = self.config
        if not path:
            return {}, Status.FAILED_DECODE, "no local file (path is null)"
        decoded = load_rgb(path, max_pixels=cfg.max_pixels)
        if decoded.image is None:
            return {}, decoded.status, decoded.reason
        crop, info = aligned_crop_or_whole(
            aligner, np.asarray(decoded.image), cfg.keep_whole_if_no_face, min_face_px=cfg.min_face_px
        )
        if crop is None:
            status = Status.LOW_QUALITY if info.problem == "too_small" else Status.NO_FACE
            return {"n_faces": info.n_faces}, status, info.reason
        values: dict[str, Any] = {
            "crop_path": store_crop(workdir, crop),
            "face_source": info.source,
            "n_faces": info.n_faces,
            "blur": laplacian_variance(crop),
        }
        if info.face is not None:
            face = info.face
            values.update(zip(("box_x0", "box_y0", "box_x1", "box_y1"), face.box, strict=True))
            values["landmarks"] = face.landmarks.reshape(-1).tolist()
            values["det_score"] = face.score
            values["face_px"] = face.size
            values["yaw_deg"] = yaw_from_landmarks(face.landmarks)
        return values, Status.OK, ""

    def run_shard(self, table: pa.Table, ctx: StageContext) -> pa.Table:
        """Add the face columns to every row; ok rows may become no_face / low_quality / failed_decode."""
        columns: dict[str, list[Any]] = {name: [None] * table.num_rows for name in COLUMNS}
        rows = [i for i, ok in enumerate(ok_mask(table)) if ok]
        changed: dict[Status, tuple[list[int], list[str]]] = {}
        counts: Counter[str] = Counter()
        paths = table.column("path").to_pylist()
        aligner = self.aligner(ctx) if rows else None
        for done, row in enumerate(rows, 1):
            values, status, reason = self.face_columns(paths[row], aligner, ctx.workdir)
            for name, value in values.items():
                columns[name][row] = value
            if status is not Status.OK:
                changed.setdefault(status, ([], []))[0].append(row)
                changed[status][1].append(reason)
            counts[f"faces_{values.get('face_source') or status.value}"] += 1
            counts["faces_multi"] += (values.get("n_faces") or 0) > 1
            ctx.progress(done, len(rows))
        table = add_columns(table, columns, COLUMNS)
        for status, (changed_rows, reasons) in changed.items():
            table = set_status(table, changed_rows, status, reasons)
        ctx.stats.update(counts)
        return table
