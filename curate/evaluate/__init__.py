"""Evaluate a face embedding model: pair verification (LFW / CFP protocols) and rank-k identification.

:func:`evaluate` reads the pairs, embeds every image they use (:mod:`curate.evaluate.run`, cached),
scores pairs by cosine similarity (:mod:`curate.evaluate.verification`), searches a gallery/probe split of
the same images with faiss (:mod:`curate.evaluate.identification`), optionally breaks accuracy down by a
manifest attribute, and writes ``report.json`` and ``roc.png``.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from curate.errors import CurateError
from curate.evaluate.identification import gallery_probe_split, identify
from curate.evaluate.pairs import CFP_PROTOCOLS, PairSet, read_cfp_split, read_lfw_pairs
from curate.evaluate.run import EmbeddedImages, ProgressFn, embed_images
from curate.evaluate.verification import by_group, pair_scores, plot_roc, verify
from curate.evaluate.workdir import WORKDIR_PROTOCOL, manifest_pairs, pairs_note, trained_stage
from curate.storage import atomic_write_text

logger = logging.getLogger(__name__)

PROTOCOLS = ("lfw", *CFP_PROTOCOLS, WORKDIR_PROTOCOL)


def read_pairs(protocol: str, pairs: Path, images: Path | None) -> PairSet:
    """The pair set of ``protocol``: ``lfw`` reads a pairs.txt file under the image root ``images``,
    ``cfp-*`` the CFP Protocol folder (images where its lists say, or under ``images`` when given)."""
    if protocol == "lfw":
        if images is None:
            raise CurateError("the lfw protocol needs --images, the folder of <name>/<name>_NNNN.jpg files")
        if not Path(pairs).is_file():
            raise CurateError(f"--pairs {pairs}: the lfw protocol needs a pairs.txt file")
        return read_lfw_pairs(pairs, images)
    if protocol in CFP_PROTOCOLS:
        return read_cfp_split(pairs, protocol, images)
    raise CurateError(f"unknown protocol {protocol!r}; use one of {', '.join(PROTOCOLS)}")


def image_groups(
    paths: list[Path], identities: list[str], workdir: Path, stage: str, column: str
) -> list[str]:
    """Per image, the manifest's ``column`` value: matched by file path, else by identity id or name."""
    from curate.manifest import read_stage

    table = read_stage(workdir, stage)
    if column not in table.column_names:
        raise CurateError(
            f"{workdir}/{stage} has no column {column!r}; columns: {', '.join(table.column_names)}"
        )
    rows = table.select(
        [c for c in ("path", "crop_path", "identity_id", "identity_name", column) if c in table.column_names]
    )
    by_path: dict[str, str] = {}
    by_identity: dict[str, str] = {}
    for row in rows.to_pylist():
        value = str(row[column])
        for key in ("path", "crop_path"):
            if row.get(key):
                by_path[str(Path(row[key]).resolve())] = value
        for key in ("identity_id", "identity_name"):
            if row.get(key):
                by_identity.setdefault(str(row[key]), value)
    return [
        by_path.get(str(Path(p).resolve()), by_identity.get(identity, "unknown"))
        for p, identity in zip(paths, identities, strict=True)
    ]


def evaluate(
    model: str,
    pairs: Path | None,
    images: Path | None,
    protocol: str = "lfw",
    cache_dir: Path = Path("runs/default/cache"),
    out_dir: Path | None = None,
    workdir: Path | None = None,
    align: bool = True,
    folds: list[int] | None = None,
    group_by: str | None = None,
    manifest_stage: str | None = None,
    progress: ProgressFn | None = None,
    allow_missing: bool = False,
) -> dict[str, Any]:
    """Run verification and identification for ``model`` and return the report (also written to ``out_dir``).

    ``workdir`` supplies the faces stage's alignment settings and, with ``group_by``, the manifest whose
    attribute splits the pairs (``manifest_stage``, default the one ``model`` was trained on). The
    ``workdir`` protocol ignores ``pairs`` and ``images``: it draws pairs from that manifest's own
    identities (:mod:`curate.evaluate.workdir`), its crops used as they are. ``folds`` restricts the
    protocol to some folds (1-based). Pairs that name a missing or unreadable image raise
    :class:`CurateError` unless ``allow_missing``; then such a pair is scored as "not same" (a failure of a
    genuine pair) and ``report["missing"]`` counts them.
    """
    start = time.perf_counter()
    if workdir is not None and manifest_stage is None:
        manifest_stage = trained_stage(workdir, model)
    pair_set, note = _pair_set(protocol, pairs, images, workdir, manifest_stage, model)
    align = align and protocol != WORKDIR_PROTOCOL  # the workdir's crops are aligned already
    if folds:
        pair_set = pair_set.subset(folds)
    used = np.unique(np.concatenate([pair_set.left, pair_set.right]))
    absent = [int(i) for i in used if not pair_set.images[i].is_file()]
    if absent and not allow_missing:
        raise CurateError(_missing_message(pair_set, absent, "missing"))
    embedded = embed_images([pair_set.images[i] for i in used], model, cache_dir, align, workdir, progress)
    failed = [int(i) for i, status in zip(used, embedded.status, strict=True) if status != "ok"]
    if failed and not allow_missing:
        raise CurateError(_missing_message(pair_set, failed, "unreadable"))
    vectors = _vectors_by_image(len(pair_set.images), used, embedded.vectors)
    scores = pair_scores(vectors, pair_set.left, pair_set.right)
    result = verify(scores, pair_set.same, pair_set.fold)
    report: dict[str, Any] = {
        "model": model,
        "embedder": embedded.model_name,
        "protocol": protocol,
        "folds": sorted(set(pair_set.fold.tolist())),
        **note,
        **result.to_dict(),
        "identification": _identification(pair_set, used, vectors),
        "images": {"total": len(used), "from_cache": embedded.from_cache, **embedded.counts()},
        "missing": _missing_counts(pair_set, failed),
    }
    if group_by:
        if workdir is None:
            raise CurateError("--group-by needs --workdir with a manifest that has the attribute")
        stage = manifest_stage or trained_stage(workdir, model)
        report["groups"] = _by_group(pair_set, result, scores, workdir, stage, group_by)
    report["seconds"] = round(time.perf_counter() - start, 1)
    if out_dir is not None:
        report["files"] = _write(report, result, Path(out_dir), embedded)
    return report


def _vectors_by_image(n_images: int, used: np.ndarray, embedded: np.ndarray) -> np.ndarray:
    """One row per image of the pair set: the embedded rows where used, NaN elsewhere."""
    vectors = np.full((n_images, embedded.shape[1]), np.nan, dtype=np.float32)
    vectors[used] = embedded
    return vectors


def _by_group(
    pair_set: PairSet, result: Any, scores: np.ndarray, workdir: Path, stage: str, group_by: str
) -> dict[str, Any]:
    """Accuracy and TAR per value of the manifest column ``group_by`` (pairs across groups: "mixed")."""
    groups = image_groups(pair_set.images, pair_set.identities, workdir, stage, group_by)
    pair_groups = [
        groups[a] if groups[a] == groups[b] else "mixed"
        for a, b in zip(pair_set.left, pair_set.right, strict=True)
    ]
    return {"by": group_by, **by_group(result, pair_set.same, scores, pair_groups)}


def _pair_set(
    protocol: str,
    pairs: Path | None,
    images: Path | None,
    workdir: Path | None,
    stage: str | None,
    model: str,
) -> tuple[PairSet, dict[str, str]]:
    """The protocol's pairs and, for the workdir's own pairs, a note on what they measure."""
    if protocol == WORKDIR_PROTOCOL:
        if workdir is None or stage is None:
            raise CurateError("the workdir protocol needs --workdir with a curated manifest")
        return manifest_pairs(workdir, stage), {"note": pairs_note(workdir, model, stage)}
    if pairs is None:
        raise CurateError(f"the {protocol} protocol needs --pairs (and --images for lfw)")
    return read_pairs(protocol, pairs, images), {}


def _pairs_using(pair_set: PairSet, images: list[int]) -> np.ndarray:
    """Mask of the pairs that use any of ``images``."""
    return np.isin(pair_set.left, images) | np.isin(pair_set.right, images)


def _missing_message(pair_set: PairSet, images: list[int], kind: str) -> str:
    """One line: how many pairs name missing/unreadable images, the first few, and the fix."""
    first = ", ".join(str(pair_set.images[i]) for i in images[:3])
    pairs = int(_pairs_using(pair_set, images).sum())
    return (
        f"{pairs} of {len(pair_set.same)} pairs name {kind} images ({len(images)} images, first: {first}); "
        "check --images (the image root the pairs refer to), or pass --allow-missing to score those "
        "pairs as failures"
    )


def _missing_counts(pair_set: PairSet, images: list[int]) -> dict[str, Any]:
    """How many images could not be read and how many pairs (genuine among them) they touch."""
    touched = _pairs_using(pair_set, images)
    return {
        "images": len(images),
        "pairs": int(touched.sum()),
        "genuine_pairs": int((touched & pair_set.same).sum()),
        "first": [str(pair_set.images[i]) for i in images[:5]],
    }


def _identification(pair_set: PairSet, used: np.ndarray, vectors: np.ndarray) -> dict[str, Any]:
    """Rank-1/5 over the images the pairs use: per identity the first image (by path) is the gallery."""
    order = sorted(used.tolist(), key=lambda i: str(pair_set.images[i]))
    identities = [pair_set.identities[i] for i in order]
    gallery, probes = gallery_probe_split(identities)
    if len(probes) == 0:
        return {"skipped": "no identity has a second image to probe with"}
    return identify(vectors[order], identities, gallery, probes).to_dict()


def _write(report: dict[str, Any], result: Any, out_dir: Path, embedded: EmbeddedImages) -> list[str]:
    """Write ``report.json`` and ``roc.png`` into ``out_dir``; return their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    title = f"{report['protocol']} ({len(report['folds'])} folds): {embedded.model_name}"
    plot_roc({embedded.model_name: (result.fpr, result.tpr)}, out_dir / "roc.png", title)
    atomic_write_text(out_dir / "report.json", json.dumps(report, indent=2) + "\n")
    logger.info("wrote %s and roc.png", out_dir / "report.json")
    return [str(out_dir / "report.json"), str(out_dir / "roc.png")]
