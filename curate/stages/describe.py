"""The ``describe`` stage: perceptual hashes and embeddings per image, for dedup and rank.

Per ok row it reads the face crop (``crop_path`` when the column exists and the value is set, else the
image at ``path``) with :func:`curate.decode.load_rgb`, trims a flat-coloured frame
(:func:`curate.hashing.trim_uniform_border`, on by default) and resamples it once to a 64x64 square, the
input of the hashes, the thumbnails and the handcrafted embedder. Face-model embedders (dlib, exported
models) get the untrimmed crop resized to their input size, as the faces stage aligned it. It computes:

* per hash kind in ``hashes``: ``<kind>`` (16 hex digits) and ``<kind>_code`` (the same 64 bits as a
  signed int64; bit order in :mod:`curate.hashing`);
* per embedder in ``embedders``: one vector per manifest row, stored with
  ``ctx.write_vectors(embedder.name, array)`` in ``dtype``. Rows that are not ok, or that fail to decode
  here, get an all-zero row (cosine 0 with everything), so the arrays always line up with the shard;
* with ``thumbnails`` (default on): the 32x32 grey thumbnail (pHash's input) as ``thumbnail`` vectors,
  uint8, 1024 per row, zeros for rows not described; dedup aligns them to verify borderline pairs.

``described`` is true for rows described here, false for ok rows whose image could not be read (they take
the decoder's status, e.g. ``failed_decode``, and its reason), null for rows that were not ok on input.
Images larger than ``max_side`` are shrunk by an integer box filter first, which costs little and changes
the hashes of a large photo no more than resizing it does. A JPEG is decoded for the square at a reduced
DCT scale (:func:`curate.hashing.decode_for_square`), as collect decodes it; a face-model embedder
describing the whole image gets it decoded in full.

Decode once: when the input has collect's ``square`` column (``curate collect --squares``), a row without
a face crop is described from that stored 64x64 square instead of decoding its file again. The values are
the very ones decoding would give (the same function made the square from the same decoded image), so
this is used only when it cannot change them: ``max_side`` and ``trim_borders`` at their defaults (the
settings collect made the squares with) and only the handcrafted embedder, which reads the square (a face
model needs the whole image). Otherwise the file is decoded as usual. describe's own manifest leaves the
``square`` column out: it served describe, and no later stage reads it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
from PIL import Image

from curate import record
from curate.decode import load_rgb
from curate.embedders import Embedder, get_embedder, model_files, resource_key
from curate.errors import ConfigError
from curate.hashing import (
    HASH_KINDS,
    SQUARE_COLUMN,
    SQUARE_MAX_SIDE,
    SQUARE_SIDE,
    describe_square,
    hashes_and_thumbnails,
    is_reduced,
    load_for_square,
    resized,
    shrink,
    square_array,
)
from curate.preflight import input_columns, vector_name
from curate.record import Status
from curate.stage import ShardStage, StageContext
from curate.stages.describe_config import DescribeConfig

logger = logging.getLogger(__name__)

COLUMNS: dict[str, pa.DataType] = {"described": pa.bool_()}  # true: described; false: unreadable here
for _kind in HASH_KINDS:
    COLUMNS[_kind] = pa.string()  # 16 hex digits
    COLUMNS[f"{_kind}_code"] = pa.int64()  # the 64 hash bits as a signed integer

HASH_SIDE = SQUARE_SIDE  # hashes (and embedders that take this size) work on one 64x64 resample
THUMBNAILS = "thumbnail"  # vector name of the 32x32 grey thumbnails (uint8, 1024 per row)


class DescribeStage(ShardStage):
    """Perceptual hashes and embeddings for every ok row; see the module docstring."""

    # 2: the square resampled with SQUARE_REDUCING_GAP; 3: frames trimmed to their inner edge; 4: a JPEG
    # decoded for the square at the scale keeping its side (twice it where a frame may be)
    version: ClassVar[int] = 4
    name: ClassVar[str] = "describe"
    Config: ClassVar[type] = DescribeConfig
    default_input: ClassVar[str | None] = "faces"

    def vectors_written(self) -> list[str]:
        """One vector set per embedder, plus the thumbnails when they are on."""
        config: DescribeConfig = self.config
        return [vector_name(spec) for spec in config.embedders] + ([THUMBNAILS] if config.thumbnails else [])

    def read_files(self, workdir: Path) -> list[Path]:
        """The exported models among the embedders: one trained again makes this stage's vectors stale."""
        return model_files(self.config.embedders)

    def check_input(self, workdir: Path, input_stage: str | None) -> None:
        """Refuse, before any work, a face-model embedder on an input without the faces stage's crops."""
        config: DescribeConfig = self.config
        models = [spec for spec in config.embedders if spec != "handcrafted"]
        if not models or not input_stage or "crop_path" in input_columns(workdir, input_stage):
            return
        raise ConfigError(
            "embedders",
            config.embedders,
            f"describe's '{models[0]}' embedder needs the aligned face crops (crop_path) of faces, "
            f"which '{input_stage}' does not have; run `curate faces` first, or "
            "`curate describe --embedders handcrafted`",
        )

    def embedders(self, ctx: StageContext) -> list[Embedder]:
        """The configured embedders, each loaded once per worker process."""
        specs: list[str] = self.config.embedders
        return [ctx.resource(resource_key(spec), lambda spec=spec: get_embedder(spec)) for spec in specs]

    def read(
        self, path: str | None, for_square: bool = False
    ) -> tuple[Image.Image | None, bool, Status, str]:
        """(the RGB image to describe, large ones shrunk, or None; whether it was decoded at a reduced
        scale; status; reason). ``for_square``: decoded at the scale the square needs
        (:func:`curate.hashing.decode_for_square`), else in full."""
        if not path:
            return None, False, Status.FAILED_DECODE, "no local file (path is null)"
        decoded = load_for_square(path, trim=self.config.trim_borders) if for_square else load_rgb(path)
        if decoded.image is None:
            return None, False, decoded.status, decoded.reason
        return shrink(decoded.image, self.config.max_side), is_reduced(decoded), Status.OK, ""

    def stored_squares(self, table: pa.Table, sources: list[str | None]) -> list[bytes | None]:
        """Per row, collect's stored square where it can stand in for decoding (see the module), else None."""
        config: DescribeConfig = self.config
        none: list[bytes | None] = [None] * table.num_rows
        if SQUARE_COLUMN not in table.column_names:
            return none
        if (
            config.max_side != SQUARE_MAX_SIDE
            or not config.trim_borders
            or set(config.embedders) - {"handcrafted"}
        ):
            logger.info(
                "collect's squares not used (they need max_side %d, trim_borders on and only the handcrafted "
                "embedder): decoding the files",
                SQUARE_MAX_SIDE,
            )
            return none
        paths = table.column("path").to_pylist()
        squares = table.column(SQUARE_COLUMN).to_pylist()
        # a row described from its face crop needs that crop decoded, not the whole image's square
        return [sq if src == path else None for sq, src, path in zip(squares, sources, paths, strict=True)]

    def square(
        self, source: str | None, stored: bytes | None
    ) -> tuple[np.ndarray | None, Image.Image | None, Status, str]:
        """(64x64x3 uint8 square, shrunk image or None when the stored square was used, status, reason)."""
        if stored is not None:
            return square_array(stored), None, Status.OK, ""
        image, reduced, status, reason = self.read(source, for_square=True)
        if image is None:
            return None, None, status, reason
        square = np.asarray(describe_square(image, trim=self.config.trim_borders))
        if reduced and set(self.config.embedders) - {"handcrafted"}:  # a face model reads every pixel
            image, _, status, reason = self.read(source)
        return square, image, status, reason

    def describe_batch(
        self,
        batch_rows: list[int],
        smalls: list[np.ndarray],
        images: list[Image.Image | None],
        embedders: list[Embedder],
        columns: dict[str, list[Any]],
        vectors: dict[str, np.ndarray],
    ) -> None:
        """Hashes, thumbnails and embeddings of one batch, written into ``columns`` and ``vectors``.

        The squares are stacked once; the hashes, the thumbnails and the handcrafted embedding are computed
        for the whole stack at once (the same values as one square at a time).
        """
        squares = np.stack(smalls)
        hashes, thumbs = hashes_and_thumbnails(squares, self.config.hashes, self.config.thumbnails)
        for kind, (hexes, codes) in hashes.items():
            for row, hex_string, code in zip(batch_rows, hexes, codes, strict=True):
                columns[kind][row], columns[f"{kind}_code"][row] = hex_string, code
        if thumbs is not None:
            vectors[THUMBNAILS][batch_rows] = thumbs.reshape(len(batch_rows), -1)
        for embedder in embedders:
            if embedder.name == "handcrafted":  # a near-duplicate descriptor: the trimmed squares
                arrays: list[np.ndarray] | np.ndarray = squares
            else:  # a face model: the crop as the faces stage aligned it (never a stored square)
                side = embedder.input_size
                arrays = [np.asarray(resized(image, side)) for image in images if image is not None]
            vectors[embedder.name][batch_rows] = embedder.embed(arrays)

    def run_shard(self, table: pa.Table, ctx: StageContext) -> pa.Table:
        """Add hash columns and ``described``; write one vector array per embedder."""
        config: DescribeConfig = self.config
        n = table.num_rows
        embedders = self.embedders(ctx)
        vectors = {e.name: np.zeros((n, e.dim), dtype=config.dtype) for e in embedders}
        if config.thumbnails:
            vectors[THUMBNAILS] = np.zeros((n, 32 * 32), dtype=np.uint8)
        columns: dict[str, list[Any]] = {"described": [None] * n}
        for kind in config.hashes:
            columns[kind] = [None] * n
            columns[f"{kind}_code"] = [None] * n
        sources = table.column("path").to_pylist()
        if "crop_path" in table.column_names:
            crops = table.column("crop_path").to_pylist()
            sources = [crop or path for crop, path in zip(crops, sources, strict=True)]
        rows = [i for i, ok in enumerate(record.ok_mask(table)) if ok]
        squares = self.stored_squares(table, sources)
        failed: dict[Status, tuple[list[int], list[str]]] = {}
        for start in range(0, len(rows), config.batch_size):
            batch_rows, smalls, images = [], [], []
            for row in rows[start : start + config.batch_size]:
                small, image, status, reason = self.square(sources[row], squares[row])
                columns["described"][row] = small is not None
                if small is None:
                    failed.setdefault(status, ([], []))[0].append(row)
                    failed[status][1].append(reason)
                    continue
                batch_rows.append(row)
                smalls.append(small)
                images.append(image)
            if batch_rows:
                self.describe_batch(batch_rows, smalls, images, embedders, columns, vectors)
            ctx.progress(min(start + config.batch_size, len(rows)), len(rows))
        table = record.add_columns(table, columns, COLUMNS)
        if SQUARE_COLUMN in table.column_names:  # described: later stages need not carry 12 KB a row
            table = table.drop_columns([SQUARE_COLUMN])
        for status, (failed_rows, reasons) in failed.items():
            table = record.set_status(table, failed_rows, status, reasons)
        for name, array in vectors.items():
            ctx.write_vectors(name, array)
        described = sum(1 for value in columns["described"] if value)
        ctx.stats.update({"described": described, "describe_failed": len(rows) - described})
        logger.info("described %d of %d ok rows", described, len(rows))
        return table
