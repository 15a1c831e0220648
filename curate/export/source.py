"""What an export holds: the final manifest of a workdir and, per kept row, the file to export.

The final manifest is the ``review`` stage when it exists, else the last curation stage: the stage that no
other image stage reads (its ``_config.json`` names its input), so the answer follows the order the
pipeline actually ran in. ``--input`` overrides it.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd

from curate import lineage, manifest, storage
from curate.errors import ConfigError, CurateError
from curate.export_config import ImageKind
from curate.record import Status
from curate.storage import WORKDIR_FILE

logger = logging.getLogger(__name__)

REVIEW_STAGE = "review"
CANONICAL_ORDER = ("download", *lineage.CANONICAL_ORDER, REVIEW_STAGE)
"""Tie-break between two leaf stages: the later one here wins."""

EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "GIF": "gif", "WEBP": "webp", "BMP": "bmp", "TIFF": "tif"}


def _stage_configs(workdir: Path) -> dict[str, dict]:
    """Every image stage that ran in ``workdir`` with its saved config (finished or not)."""
    meta = workdir / WORKDIR_FILE
    if not meta.is_file():
        raise CurateError(f"{workdir} is not a curate workdir (no {WORKDIR_FILE}); give the right --workdir")
    found = {}
    for saved in sorted(workdir.glob(f"*/{storage.CONFIG_FILE}")):
        config = json.loads(saved.read_text())
        stage = saved.parent.name
        if manifest.list_shards(workdir, stage):
            found[stage] = config
    return found


def _require_done(workdir: Path, stage: str, what: str = "the final stage") -> str:
    """``stage`` when it is complete and current; else one line naming what is wrong and the fix."""
    n_shards = int(json.loads((workdir / WORKDIR_FILE).read_text())["n_shards"])
    state = lineage.stage_state(lineage.Checks(workdir, n_shards), stage)
    if state.label != "done":
        raise CurateError(
            f"{what} '{stage}' in {workdir} is {state.label} ({state.why()}); "
            f"run '{stage}' again (see 'curate status') before exporting"
        )
    return stage


def chosen_stage(workdir: Path, stage: str | None) -> str:
    """The stage to read: ``stage`` (an ``--input``) once it is complete and current, else the final one."""
    if not stage:
        return final_stage(workdir)
    workdir = Path(workdir)
    if not manifest.list_shards(workdir, stage):
        raise CurateError(f"--input {stage}: no manifest at {manifest.stage_dir(workdir, stage)}")
    if not (workdir / WORKDIR_FILE).is_file():
        raise CurateError(f"{workdir} is not a curate workdir (no {WORKDIR_FILE}); give the right --workdir")
    return _require_done(workdir, stage, "--input")


def final_stage(workdir: Path) -> str:
    """The manifest an export reads: ``review`` if finished, else the last finished curation stage."""
    workdir = Path(workdir)
    stages = _stage_configs(workdir)
    if not stages:
        raise CurateError(f"no finished stage in {workdir}; run the pipeline first")
    if REVIEW_STAGE in stages:
        return _require_done(workdir, REVIEW_STAGE)
    read = {config.get("input_stage") for config in stages.values()}
    leaves = [stage for stage in stages if stage not in read]

    def order(stage: str) -> tuple[int, float]:
        position = CANONICAL_ORDER.index(stage) if stage in CANONICAL_ORDER else -1
        return position, storage.config_path(workdir, stage).stat().st_mtime

    return _require_done(workdir, max(leaves or list(stages), key=order))


def _extensions(rows: pd.DataFrame, kind: ImageKind) -> pd.Series:
    """File extension per row: the crop's own suffix, or the original's format (else its path's suffix)."""
    if kind is ImageKind.CROPS:
        return rows["crop_path"].map(lambda p: Path(p).suffix.lstrip(".") or "png")
    formats = (
        rows.get("format", pd.Series("", index=rows.index)).astype(object).fillna("").astype(str).str.upper()
    )
    suffixes = rows["path"].map(lambda p: Path(p).suffix.lstrip(".").lower() or "bin")
    return formats.map(EXTENSIONS).fillna(suffixes)


def kept_rows(workdir: Path, stage: str, kind: ImageKind) -> pd.DataFrame:
    """The ok rows of ``stage`` with ``export_source``, ``export_name`` and ``export_sha256`` columns.

    Rows are ordered by identity then image id, so every export of the same manifest lists them alike.
    """
    table = manifest.read_stage(workdir, stage).to_pandas()
    ok = table[table["status"] == Status.OK.value].copy()
    column = "crop_path" if kind is ImageKind.CROPS else "path"
    if column not in ok:
        fix = "run the faces stage or export --images originals" if kind is ImageKind.CROPS else "re-collect"
        raise ConfigError("images", kind.value, f"{workdir}/{stage} has no '{column}' column; {fix}")
    missing = ok[column].isna()
    if missing.any():
        example = ok.loc[missing, "source"].iloc[0]
        raise CurateError(
            f"{int(missing.sum())} ok rows of {workdir}/{stage} have no {column} (e.g. {example}); "
            "re-run the stage that writes it"
        )
    if "review_identity_id" in ok:  # review merged twins: rows count under the identity review chose
        ok["collected_identity_id"] = ok["identity_id"]
        ok["identity_id"] = ok["review_identity_id"].fillna(ok["identity_id"])
    ok = ok.sort_values(["identity_id", "image_id"], kind="stable").reset_index(drop=True)
    stems = ok["image_id"].str.slice(0, 16)
    if ok.duplicated(["identity_id", "image_id"]).any():
        raise CurateError(f"{workdir}/{stage} keeps one image twice under one identity; run the exact stage")
    clash = pd.DataFrame({"identity": ok["identity_id"], "stem": stems}).duplicated(keep=False)
    stems = stems.where(~clash, ok["image_id"])
    ok["export_source"] = ok[column]
    ok["export_name"] = stems + "." + _extensions(ok, kind)
    if kind is ImageKind.CROPS:
        ok["export_sha256"] = ok["crop_path"].map(lambda p: Path(p).stem)
    else:
        ok["export_sha256"] = ok["image_id"]
    logger.info("%s/%s: %d ok rows to export (%s)", workdir, stage, len(ok), kind.value)
    return ok
