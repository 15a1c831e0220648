"""Where review reads from and writes to inside a workdir.

Review follows the last curation stage present: ``dedup`` or ``rank`` (their order differs between
pipelines), whichever finished last, unless the user names one with ``--input``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd

from curate import manifest, storage
from curate.errors import CurateError
from curate.review.store import decisions_digest
from curate.storage import review_dir

logger = logging.getLogger(__name__)

CURATION_STAGES = ("dedup", "rank")
REVIEW_DIR = storage.REVIEW_DIR
WANTED_COLUMNS = (
    "image_id",
    "identity_id",
    "identity_name",
    "source",
    "path",
    "crop_path",
    "status",
    "reason",
    "rank_score",
    "identity_purity",
    "identity_review",
    "overlap_with",
    "needs_review",
    "review_reason",
)


def store_path(workdir: Path) -> Path:
    """The SQLite decision log of a workdir."""
    return review_dir(workdir) / "decisions.sqlite"


def default_export_dir(workdir: Path) -> Path:
    """Where ``curate review export`` writes unless told otherwise."""
    return review_dir(workdir) / "export"


def unapplied_decisions(workdir: Path) -> str:
    """Why the ``review`` stage no longer shows the decision log ('' when it does, or there is no review).

    ``review apply`` records a fingerprint of the log it applied; a decision made, imported or undone
    since then is not in the stage's manifest until ``review apply`` runs again.
    """
    try:
        saved = json.loads(storage.config_path(workdir, "review").read_text())["config"]
    except (OSError, ValueError, KeyError, TypeError):
        return ""
    log = Path(saved.get("decisions") or store_path(workdir))
    if not log.is_file() or decisions_digest(log) == saved.get("digest"):
        return ""
    return "decisions were made, imported or undone after 'review apply' ran; run 'curate review apply'"


def finished_at(workdir: Path, stage: str) -> float | None:
    """When the stage's last shard finished (newest marker), or None when it has no finished shard."""
    markers = list(storage.done_dir(workdir, stage).glob("*"))
    if not markers or not manifest.list_shards(workdir, stage):
        return None
    return max(m.stat().st_mtime for m in markers)


def review_input_stage(workdir: Path, override: str | None = None) -> str:
    """The stage review reads: ``override`` if given, else the newest of ``dedup`` / ``rank``."""
    if override:
        if not manifest.list_shards(workdir, override):
            raise CurateError(f"--input {override}: no manifest at {manifest.stage_dir(workdir, override)}")
        return override
    finished = {s: t for s in CURATION_STAGES if (t := finished_at(workdir, s)) is not None}
    if not finished:
        raise CurateError(
            f"no rank or dedup manifest in {workdir}; run 'curate rank' first or name a stage with --input"
        )
    return max(finished, key=lambda s: (finished[s], s == "dedup"))


def training_stage(workdir: Path) -> str:
    """The manifest ``curate train`` reads by default: ``review`` once applied, else the last curation stage.

    A ``review`` stage older than a re-run ``rank``/``dedup`` is stale: it is skipped with a warning (run
    ``curate review apply`` again; the decisions are kept). A curation stage re-run after the one that
    reads it (``rank`` re-run after ``dedup``) is refused: the stale reader must run again first.
    """
    reviewed = finished_at(workdir, "review")
    curated = [t for s in CURATION_STAGES if (t := finished_at(workdir, s)) is not None]
    if reviewed is not None and reviewed >= max(curated, default=0.0):
        return "review"
    if reviewed is not None:
        logger.warning("the review stage is older than rank/dedup; run 'curate review apply' again")
    finished = {s: t for s in CURATION_STAGES if (t := finished_at(workdir, s)) is not None}
    if not finished:
        return "dedup"
    newest = max(finished, key=lambda s: (finished[s], s == "dedup"))
    for other in finished:
        if other != newest and _input_stage(workdir, other) == newest:
            raise CurateError(
                f"'{newest}' was re-run after '{other}', which reads it: '{other}' is stale and '{newest}' "
                f"alone lacks what '{other}' removes; run 'curate {other}' again (or train "
                f"--manifest-stage {newest})"
            )
    return newest


def _input_stage(workdir: Path, stage: str) -> str | None:
    """The stage ``stage`` read when it last ran (its saved config), or None when that is unknown."""
    try:
        return json.loads(storage.config_path(workdir, stage).read_text()).get("input_stage")
    except (OSError, ValueError, AttributeError):
        return None


def load_rows(workdir: Path, stage: str) -> pd.DataFrame:
    """The columns review needs from a stage's manifest, one row per manifest row."""
    table = manifest.read_stage(workdir, stage)
    frame = table.select([c for c in WANTED_COLUMNS if c in table.column_names]).to_pandas()
    for column in WANTED_COLUMNS:
        if column not in frame:
            frame[column] = None
    return frame
