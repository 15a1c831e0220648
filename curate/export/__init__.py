"""``curate export``: take a curated data set away from its workdir.

An export folder holds::

    manifest.parquet        the kept rows, with relative file paths, sha256 checksums and integer labels
    images/<identity>/<f>   the images as an ImageFolder tree (torchvision, arcface_torch-style loaders)
    webdataset/shard-N.tar  WebDataset shards: per sample the image and its row as JSON (``curate train``
                            reads them with ``--images OUT/webdataset``)
    list.txt                ``<relative path> <label>`` per image (Caffe ImageData / im2rec style)
    identities.tsv          label, identity id, name and image count per identity
    README.md, card.json    the dataset card (:mod:`curate.export.card`) and its figures
    _export.json            what was written, so a re-export rewrites only what changed

The rows come from :func:`~curate.export.source.final_stage` unless an input stage is named.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from curate import manifest
from curate.errors import ConfigError
from curate.export.files import (
    STATE_FILE,
    Progress,
    load_state,
    remove_shards,
    remove_tree,
    row_records,
    save_state,
    write_shards,
    write_tree,
)
from curate.export.source import chosen_stage, final_stage, kept_rows
from curate.export_config import ExportConfig, ExportFormat, ImageKind
from curate.storage import atomic_write_text

logger = logging.getLogger(__name__)

__all__ = ["ExportConfig", "ExportFormat", "ExportResult", "ImageKind", "export_dataset", "final_stage"]

DROPPED_COLUMNS = ("path", "crop_path", "export_source", "export_name", "export_sha256")


@dataclass
class ExportResult:
    """What an export did."""

    out: Path
    stage: str
    rows: int
    identities: int
    counts: dict[str, dict[str, int]]
    card: Path | None = None


def _check_out(out: Path) -> None:
    if out.is_dir() and any(out.iterdir()) and not (out / STATE_FILE).is_file():
        raise ConfigError(
            "out", str(out), "the folder holds files but no export; choose an empty or new folder"
        )


def export_dataset(workdir: Path, config: ExportConfig, progress: Progress | None = None) -> ExportResult:
    """Export the final manifest of ``workdir`` into ``config.out``; see the module docstring."""
    config.validate()
    workdir, out = Path(workdir), Path(config.out)
    _check_out(out)
    stage = chosen_stage(workdir, config.input_stage)
    rows = kept_rows(workdir, stage, config.images)
    identities = sorted(rows["identity_id"].unique())
    rows["label"] = rows["identity_id"].map({identity: i for i, identity in enumerate(identities)})
    rows["sha256"] = rows["export_sha256"]
    out.mkdir(parents=True, exist_ok=True)
    state = load_state(out)
    state.update(workdir=str(workdir.resolve()), stage=stage, images=config.images.value)
    counts: dict[str, dict[str, int]] = {}
    if ExportFormat.IMAGEFOLDER in config.formats:
        counts["imagefolder"] = write_tree(rows, out, state, progress)
        save_state(out, state)
    else:
        remove_tree(out, state)
    public = [c for c in rows.columns if c not in DROPPED_COLUMNS]
    if ExportFormat.WEBDATASET in config.formats:
        records = row_records(rows, public)
        counts["webdataset"] = write_shards(rows, records, out, config.shard_size, state, progress)
    else:
        remove_shards(out, state)
    save_state(out, state)
    public = [c for c in rows.columns if c not in DROPPED_COLUMNS]
    table = pa.Table.from_pandas(rows[public], preserve_index=False)
    manifest.write_shard(table, out / "manifest.parquet", kind="export")
    _write_lists(rows, out, ExportFormat.IMAGEFOLDER in config.formats)
    result = ExportResult(out, stage, len(rows), len(identities), counts)
    if config.card:
        from curate.export.card import write_card

        result.card = write_card(workdir, stage, rows, out, config)
    logger.info("exported %d images of %d identities from %s/%s", len(rows), len(identities), workdir, stage)
    return result


def _write_lists(rows: Any, out: Path, tree: bool) -> None:
    """``list.txt`` (when the tree was written) and ``identities.tsv``."""
    if tree:
        atomic_write_text(
            out / "list.txt",
            "".join(f"{f} {label}\n" for f, label in zip(rows["file"], rows["label"], strict=True)),
        )
    elif (out / "list.txt").exists():
        (out / "list.txt").unlink()
    per = rows.groupby(["label", "identity_id", "identity_name"], sort=True).size()
    lines = ["label\tidentity_id\tidentity_name\timages\n"]
    lines += [f"{label}\t{identity}\t{name}\t{n}\n" for (label, identity, name), n in per.items()]
    atomic_write_text(out / "identities.tsv", "".join(lines))
