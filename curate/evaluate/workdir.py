"""Evaluation without a benchmark: the workdir's own model and identities (``curate evaluate``, no flags).

``curate train`` writes its model to ``<workdir>/train/model``: :func:`default_model` finds it. Without a
pair list, :func:`manifest_pairs` draws verification pairs from the manifest the model was trained on (the
``ok`` rows, their aligned crops as training read them, so no second alignment): identities are split
into identity-disjoint folds, each fold holding genuine pairs of its identities and as many impostor
pairs between them. These identities were seen in training, so the figures measure how well the model
separates the people it learnt (a sanity check that training worked), not how it generalises; the report
says so. Give ``--pairs`` and ``--images`` of a benchmark (LFW, CFP) for that.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from itertools import combinations
from pathlib import Path

import numpy as np

from curate import manifest
from curate.errors import ConfigError
from curate.evaluate.pairs import PairSet, _Builder
from curate.record import Status

logger = logging.getLogger(__name__)

WORKDIR_PROTOCOL = "workdir"
MAX_PAIRS = 6000  # as many as LFW's 10 folds hold
FOLDS = 10


def train_dir(workdir: Path) -> Path:
    """Where ``curate train`` writes by default (checkpoints, metrics, ``model/``)."""
    return Path(workdir) / "train"


def default_model(workdir: Path) -> str:
    """The model ``curate train`` exported into ``workdir``; ConfigError naming the fix when there is none."""
    model = train_dir(workdir) / "model"
    if not (model / "embedder.json").is_file():
        raise ConfigError(
            "model",
            None,
            f"evaluate needs a model and {model} holds none; run `curate train` first (it writes it there), "
            "or give --model dlib or an exported model folder",
        )
    return str(model)


def _recorded_stage(workdir: Path) -> str | None:
    """The manifest stage ``curate train`` recorded in its ``config.json``; None when unreadable or absent."""
    try:
        recorded = json.loads((train_dir(workdir) / "config.json").read_text())
    except (OSError, ValueError):
        return None
    if isinstance(recorded, dict) and recorded.get("workdir") and recorded.get("manifest_stage"):
        return str(recorded["manifest_stage"])
    return None


def trained_stage(workdir: Path, model: str) -> str:
    """The manifest stage ``model`` was trained on: train's recorded one, else the one train would read
    (else the last curation stage that has a manifest)."""
    if Path(model).resolve() == (train_dir(workdir) / "model").resolve():
        recorded = _recorded_stage(workdir)
        if recorded is not None:
            return recorded
    from curate.review.source import training_stage

    stage = training_stage(workdir)
    if manifest.list_shards(workdir, stage):
        return stage
    present = [s for s in ("review", "dedup", "rank") if manifest.list_shards(workdir, s)]
    return present[0] if present else stage


def pairs_note(workdir: Path, model: str, stage: str) -> str:
    """What the workdir's pairs measure for ``model``: said in the report beside the figures."""
    where = f"pairs of the workdir's own identities ({Path(workdir) / stage})"
    if Path(model).resolve().is_relative_to(train_dir(workdir).resolve()):
        return f"{where}, seen in training: a sanity check that training worked, not a benchmark"
    return where


def _identities(workdir: Path, stage: str) -> dict[str, list[Path]]:
    """Per identity (review's merged one when applied), the sorted images of its ``ok`` rows."""
    table = manifest.read_stage(workdir, stage)
    wanted = ["status", "identity_id", "review_identity_id", "path", "crop_path"]
    columns = table.select([c for c in wanted if c in table.column_names]).to_pydict()
    labels = columns.get("review_identity_id") or columns["identity_id"]
    crops = columns.get("crop_path", [None] * table.num_rows)
    found: dict[str, list[Path]] = defaultdict(list)
    for status, label, path, crop in zip(columns["status"], labels, columns["path"], crops, strict=True):
        if status == Status.OK.value and (crop or path):
            found[label].append(Path(crop or path))
    return {label: sorted(paths) for label, paths in sorted(found.items())}


def manifest_pairs(
    workdir: Path, stage: str, max_pairs: int = MAX_PAIRS, n_folds: int = FOLDS, seed: int = 0
) -> PairSet:
    """Genuine and impostor pairs of the ``ok`` rows of ``workdir/stage`` in identity-disjoint folds."""
    people = _identities(workdir, stage)
    if len(people) < 2 or all(len(paths) < 2 for paths in people.values()):
        raise ConfigError(
            "pairs",
            None,
            f"{workdir}/{stage} has {len(people)} identities with ok images, too few for pairs of its own; "
            "give --pairs and --images of a benchmark",
        )
    rng = np.random.default_rng(seed)
    names = [list(people)[i] for i in rng.permutation(len(people))]
    k = max(1, min(n_folds, len(names) // 2))  # at least two identities per fold, for its impostor pairs
    folds = [names[f::k] for f in range(k)]
    per_identity = max(1, max_pairs // 2 // len(names))
    builder = _Builder()
    for fold, members in enumerate(folds, start=1):
        genuine = 0
        for name in members:
            pairs = list(combinations(people[name], 2))
            for i in sorted(rng.permutation(len(pairs))[:per_identity].tolist()):
                a, b = pairs[i]
                builder.add(builder.image(a, name), builder.image(b, name), True, fold)
                genuine += 1
        for _ in range(genuine):
            first, second = rng.choice(len(members), size=2, replace=False)
            a, b = members[first], members[second]
            left = people[a][rng.integers(len(people[a]))]
            right = people[b][rng.integers(len(people[b]))]
            builder.add(builder.image(left, a), builder.image(right, b), False, fold)
    logger.info(
        "%d pairs from %d identities of %s/%s in %d folds", len(builder.rows), len(names), workdir, stage, k
    )
    return builder.build()
