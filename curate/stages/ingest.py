"""The ``collect`` stage for local folders: ``<source>/<identity>/**/<file>``, one row per file.

``plan`` walks the tree (no file is opened) and decides what needs no bytes: files outside an identity
folder, names that are not UTF-8, broken symlinks, symlinks leaving the tree, symlinked folders when
``follow_symlinks`` is off. ``run_shard`` reads each remaining file once (sha256 = ``image_id``), decodes it
with :func:`curate.hashing.decode_for_square` (a JPEG at a reduced DCT scale, every byte still checked)
and marks byte-identical copies within one identity as ``exact_duplicate``.
With ``squares`` on it also stores each ok image's describe square (:func:`curate.hashing.square_bytes`) in
the ``square`` column, so ``describe`` on collect's output need not decode the image again.

Decisions:
- Files directly in ``source/`` get a row each (``unsafe_input``, "not inside an identity folder",
  identity from ``""``): they are reported, never silently skipped.
- A path that is not valid UTF-8 keeps a row whose ``source`` shows the bad bytes as ``\\xNN`` escapes,
  with ``unsafe_input`` and no ``path``: Parquet strings must be UTF-8, so later stages could not reopen it.
- Symlinks: a broken one is ``failed_decode``; a file symlink is read through its resolved target, which
  must stay inside the source tree unless ``follow_symlinks`` is on; a symlinked folder is entered only
  when ``follow_symlinks`` is on, and a folder that contains itself through a symlink is not re-entered.
- With ``names_file``, folder ``001`` takes line 1; a numbered folder without a name there is a config
  error. Folders whose names are not all digits keep their own name.
- Folders whose names fold to one identity id (:func:`curate.names.identity_id`: Unicode form, accents,
  case unless ``case_sensitive_names``, punctuation) become one identity and are listed under
  ``name_merges`` in the shard's stats; ``curate collect`` prints them as one line.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from curate import manifest, record
from curate.errors import ConfigError
from curate.hashing import SQUARE_COLUMN, decode_for_square, square_bytes
from curate.names import identity_id, name_merges
from curate.record import BASE_COLUMNS, Status
from curate.safe_read import read_file
from curate.stage import ShardStage, StageContext
from curate.stages.ingest_config import IngestConfig

logger = logging.getLogger(__name__)

COLUMNS: dict[str, pa.DataType] = {
    "width": pa.int32(),  # pixels, after EXIF orientation when decoded; from the header when decoding failed
    "height": pa.int32(),
    "format": pa.string(),  # Pillow format name: JPEG, PNG, GIF, WEBP, BMP, TIFF, PPM, AVIF
    "mode": pa.string(),  # the file's own Pillow mode before conversion to RGB (L, P, CMYK, I;16...)
    "n_frames": pa.int32(),  # frames in an animation; 1 for a still image
    "file_bytes": pa.int64(),  # size of the original bytes
    "search_rank": pa.int32(),  # position in a search engine's results; null for local folders
    SQUARE_COLUMN: pa.binary(),  # with ``squares``: describe's 64x64 RGB square, raw bytes; null otherwise
}

_DIGITS = re.compile(r"[0-9]+")


@dataclass(frozen=True)
class _Found:
    """One file found by the walk, with the verdict that needed no bytes (``ok`` = read it later)."""

    identity_name: str
    source: str
    path: str | None
    status: Status = Status.OK
    reason: str = ""


def _printable(text: str) -> str:
    """A path from ``os.fsdecode`` as valid UTF-8: undecodable bytes shown as ``\\xNN``."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def read_names(names_file: Path) -> list[str]:
    """The names of a names file, one per line (line 1 first), surrounding spaces removed."""
    try:
        text = Path(names_file).read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError("names_file", str(names_file), f"save it as UTF-8 text ({exc.reason})") from exc
    return [line.strip() for line in text.splitlines()]


def _is_folder(entry: os.DirEntry[str]) -> bool:
    """A folder, or a symlink to one (whether to enter it is decided by ``follow_symlinks``)."""
    return entry.is_dir(follow_symlinks=False) or (entry.is_symlink() and os.path.isdir(entry.path))


class _Walker:
    """Walks ``<source>/<identity>/**`` in sorted order, producing one :class:`_Found` per file."""

    def __init__(self, config: IngestConfig) -> None:
        self.config = config
        self.root = os.path.abspath(config.source)
        self.real_root = os.path.realpath(self.root)
        self.names = read_names(config.names_file) if config.names_file is not None else None

    def identity_name(self, folder: str) -> str:
        """The name of an identity folder: its line in the names file when numbered, else the folder name."""
        if self.names is None or not _DIGITS.fullmatch(folder):
            return _printable(folder)
        line = int(folder)
        if 1 <= line <= len(self.names) and self.names[line - 1]:
            return self.names[line - 1]
        raise ConfigError(
            "names_file",
            str(self.config.names_file),
            f"it has {len(self.names)} lines but folder '{folder}' needs a name on line {line}; "
            "add the missing name or leave names_file out",
        )

    def walk(self) -> list[_Found]:
        """Every file under the source folder, each with its verdict."""
        found: list[_Found] = []
        root = frozenset({self.real_root})
        for entry in sorted(os.scandir(self.root), key=lambda e: e.name):
            if _is_folder(entry):
                found.extend(self._folder(entry.path, self.identity_name(entry.name), root))
            else:
                found.append(self._file(entry, ""))
        return found

    def _folder(self, path: str, name: str, ancestors: frozenset[str]) -> list[_Found]:
        source = _printable(path)
        if os.path.islink(path) and not self.config.follow_symlinks:
            reason = "symlinked folder not followed (set follow_symlinks = true to read it)"
            return [_Found(name, source, None, Status.UNSAFE_INPUT, reason)]
        real = os.path.realpath(path)
        if real in ancestors:
            return [_Found(name, source, None, Status.UNSAFE_INPUT, "symlink loop: folder contains itself")]
        try:
            entries = sorted(os.scandir(path), key=lambda e: e.name)
        except OSError as exc:
            reason = f"unreadable folder: {exc.strerror or exc}"
            return [_Found(name, source, None, Status.FAILED_DECODE, reason)]
        found: list[_Found] = []
        for entry in entries:
            if _is_folder(entry):
                found.extend(self._folder(entry.path, name, ancestors | {real}))
            else:
                found.append(self._file(entry, name))
        return found

    def _file(self, entry: os.DirEntry[str], name: str) -> _Found:
        source = _printable(entry.path)
        if not _is_utf8(entry.path):
            what = "file" if not _is_utf8(entry.name) else "folder"
            return _Found(name, source, None, Status.UNSAFE_INPUT, f"{what} name is not valid UTF-8")
        if os.path.dirname(entry.path) == self.root:
            return _Found("", source, None, Status.UNSAFE_INPUT, "not inside an identity folder")
        if not entry.is_symlink():
            return _Found(name, source, entry.path)
        target = os.readlink(entry.path)
        if not os.path.exists(entry.path):
            return _Found(name, source, None, Status.FAILED_DECODE, f"broken symlink -> {_printable(target)}")
        real = os.path.realpath(entry.path)
        if not _is_utf8(real):
            return _Found(name, source, None, Status.UNSAFE_INPUT, "symlink target name is not valid UTF-8")
        inside = os.path.commonpath([real, self.real_root]) == self.real_root
        if not inside and not self.config.follow_symlinks:
            reason = f"symlink points outside the source folder -> {_printable(real)}"
            return _Found(name, source, None, Status.UNSAFE_INPUT, reason)
        return _Found(name, source, real)


class IngestStage(ShardStage):
    """``collect`` from local folders: a row per file, sha256 ids, safe decoding, exact duplicates marked."""

    # 2: the square resampled with SQUARE_REDUCING_GAP; 3: frames trimmed to their inner edge; 4: a JPEG
    # decoded for the square at the scale keeping its side (twice it where a frame may be)
    version = 4
    name = "collect"
    Config = IngestConfig
    default_input = None

    @classmethod
    def code_version(cls, config: IngestConfig) -> int:
        """Version 4 changed the stored squares only: without them a version 3 output is still this one's,
        so upgrading does not redo the faces stage and the rest after it."""
        return cls.version if config.squares else 3

    def plan(self, workdir: Path, n_shards: int) -> dict[int, pa.Table]:
        """Walk the source folder; rows sorted by (identity_id, source), grouped by identity shard."""
        self.config.validate()
        found = _Walker(self.config).walk()
        rows = sorted(
            ((identity_id(f.identity_name, self.config.case_sensitive_names), f) for f in found),
            key=lambda item: (item[0], item[1].source),
        )
        by_shard: dict[int, list[dict[str, str | None]]] = {shard: [] for shard in range(n_shards)}
        for ident, f in rows:
            by_shard[manifest.shard_of(ident, n_shards)].append(
                {
                    "image_id": None,
                    "identity_id": ident,
                    "identity_name": f.identity_name,
                    "source": f.source,
                    "path": f.path,
                    "status": f.status.value,
                    "reason": f.reason,
                }
            )
        logger.info("planned %d files from %s into %d shards", len(rows), self.config.source, n_shards)
        return {
            shard: pa.Table.from_pylist(items, schema=pa.schema(list(BASE_COLUMNS.items())))
            for shard, items in by_shard.items()
        }

    def run_shard(self, table: pa.Table, ctx: StageContext) -> pa.Table:
        """Read, hash and decode every ``ok`` row; mark byte-identical copies within an identity."""
        n = table.num_rows
        image_ids = table.column("image_id").to_pylist()
        statuses = table.column("status").to_pylist()
        reasons = table.column("reason").to_pylist()
        paths = table.column("path").to_pylist()
        extra: dict[str, list[object]] = {column: [None] * n for column in COLUMNS}
        for i in range(n):
            ctx.progress(i, n)
            if statuses[i] != Status.OK.value:
                continue
            read = read_file(paths[i], max_bytes=self.config.max_file_bytes)
            if read.data is None:
                statuses[i], reasons[i] = read.status.value, read.reason
                continue
            image_ids[i] = hashlib.sha256(read.data).hexdigest()
            # the safe decode checks every byte; a JPEG's pixels come at the scale the square needs (a
            # possible frame is trimmed only when squares are made)
            decoded = decode_for_square(
                read.data, max_pixels=self.config.max_pixels, trim=self.config.squares
            )
            statuses[i], reasons[i] = decoded.status.value, decoded.reason
            for column in ("width", "height", "format", "mode", "n_frames"):
                extra[column][i] = getattr(decoded, column)
            extra["file_bytes"][i] = len(read.data)
            if self.config.squares and decoded.image is not None:
                extra[SQUARE_COLUMN][i] = square_bytes(decoded.image)
        ctx.progress(n, n)
        _mark_exact_duplicates(table, image_ids, statuses, reasons)
        if self.config.squares:  # only rows that stay ok are described
            extra[SQUARE_COLUMN] = [
                sq if st == Status.OK.value else None
                for sq, st in zip(extra[SQUARE_COLUMN], statuses, strict=True)
            ]
        table = record.add_columns(
            table, {"image_id": image_ids, "status": statuses, "reason": reasons}, BASE_COLUMNS
        )
        counts = Counter(statuses)
        ctx.stats["rows"] = n
        ctx.stats["status"] = dict(sorted(counts.items()))
        ctx.stats["name_merges"] = self._merges(table)
        ctx.logger.info("collect shard %s: %d rows, %s", ctx.shard, n, dict(counts))
        return record.add_columns(table, extra, COLUMNS)

    def _merges(self, table: pa.Table) -> list[dict]:
        """Identity folders (or names-file names) that folded into one identity of this shard."""
        root = _printable(os.path.abspath(self.config.source)) + os.sep
        folders = [
            source[len(root) :].split(os.sep, 1)[0] if source.startswith(root) else source
            for source in table.column("source").to_pylist()
        ]
        names = table.column("identity_name").to_pylist()
        return name_merges(table.column("identity_id").to_pylist(), names, folders)


def _mark_exact_duplicates(
    table: pa.Table, image_ids: list[str | None], statuses: list[str], reasons: list[str]
) -> None:
    """Within one identity, the first ``ok`` copy by source stays; later copies become ``exact_duplicate``."""
    identities = table.column("identity_id").to_pylist()
    sources = table.column("source").to_pylist()
    kept: dict[tuple[str, str], str] = {}
    for i in sorted(range(len(statuses)), key=lambda row: sources[row]):
        if statuses[i] != Status.OK.value:
            continue
        key = (identities[i], image_ids[i])
        if key in kept:
            statuses[i] = Status.EXACT_DUPLICATE.value
            reasons[i] = f"same bytes as {kept[key]}"
        else:
            kept[key] = sources[i]
