"""``curate demo``: the whole recipe on the embedded default, a synthetic web collection with known truth.

1. Draw the collection (``synth/``), unless the workdir already holds it.
2. Run the packaged pipeline (``curate/pipelines/demo.toml``) up to ``faces``, and train a first-pass model
   on everything that decoded (the uncurated set).
3. The rest of the pipeline, ``describe`` -> ``rank`` -> ``dedup``, with that model as the ranking
   embedder: VGG-Face's last curation step, where a model trained on a first pass ranks the data for the
   next; near-duplicate clusters then keep their best-ranked member.
4. :func:`scripted_review`: review decisions scripted from the ground truth (standing in for a person)
   are applied as the ``review`` stage.
5. ``export`` the final manifest (ImageFolder tree, WebDataset shards, dataset card) and train the same
   recipe on the exported shards (the curated set) for the same number of optimiser steps: the curated set
   is smaller, and fewer steps would compare training budgets instead of data (as DataComp fixes the
   samples seen).
6. Train both sets with more seeds (``training_seeds``, 3 in all), evaluate every model on held-out
   identities (40 clean people, 2,000 pairs; the synthetic default of 10 people makes the comparison mostly
   noise) and compare the sets with a paired bootstrap over seeds and folds (:mod:`curate.evaluate.compare`),
   score the manifest against the ground truth (:mod:`curate.groundtruth`), and write the HTML report.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

from curate import manifest
from curate.config import config_to_dict
from curate.embedders import get_embedder
from curate.errors import CurateError
from curate.evaluate.compare import compare_models
from curate.executor import StageResult
from curate.export import ExportConfig, ExportFormat, export_dataset
from curate.export.files import STATE_FILE
from curate.groundtruth import curation_figures
from curate.lineage import digest_of, sha256_file
from curate.pipeline import PipelineSpec, StageSpec, parse_pipeline, select_range
from curate.report import ReportInputs, write_report
from curate.report.saliency import sample_pairs
from curate.storage import atomic_write_json, atomic_write_text
from curate.synth import SynthConfig, synthesize
from curate.train.config import HeadKind, TrainConfig
from curate.train.data import from_manifest
from curate.train.loop import train

logger = logging.getLogger(__name__)

RunStages = Callable[[list[StageSpec]], list[StageResult]]
DATA_STAMP = "demo_data.json"  # beside each demo model: the fingerprint of the data it was trained on
REVIEW_BUDGET = 120  # images a person would look at: the most uncertain first (about a fifth of the demo)
SALIENCY_PAIRS = 2  # genuine and as many impostor pairs explained in the report
BATCH_SIZE = 64


@dataclass
class DemoConfig:
    """Size of the demo: the synthetic collection and the training budget."""

    identities: int = 30
    images_per_identity: int = 20
    intruder_rate: float = 0.35  # web-like label noise; see docs/demo.md for why not the synth default
    seed: int = 0
    epochs: int = 12
    input_size: int = 64
    head: HeadKind = HeadKind.SOFTMAX  # margin heads need more images per identity than the demo has
    heldout_identities: int = 40  # verification people: with the synth default (10) the comparison is noise
    pairs_per_fold: int = 100  # genuine (and as many impostor) held-out pairs in each of the 10 folds
    training_seeds: int = 3  # models per set in the comparison: one seed's verdict turns on the file order


def demo_pipeline_data() -> dict[str, Any]:
    """The packaged demo pipeline as parsed TOML (not yet validated: its input may not exist yet)."""
    return tomllib.loads(resources.files("curate.pipelines").joinpath("demo.toml").read_text())


def demo_pipeline(workdir: Path) -> PipelineSpec:
    """The packaged demo pipeline, validated, with relative paths resolved against ``workdir``."""
    return parse_pipeline(demo_pipeline_data(), base=workdir)


def _with_ranker(specs: list[StageSpec], model_dir: Path) -> list[StageSpec]:
    """Add the first-pass model to ``describe`` and rank with its vectors."""
    name = get_embedder(str(model_dir)).name
    updated = []
    for spec in specs:
        settings = dict(spec.settings)
        if spec.key == "describe":
            settings["embedders"] = [*settings.get("embedders", ["handcrafted"]), str(model_dir)]
        if spec.key == "rank":
            settings["embedder"] = name
        updated.append(replace(spec, settings=settings))
    return updated


def _batch_size(images: int) -> int:
    """64, or half the images of a set too small for that (a tiny demo must still train)."""
    return min(BATCH_SIZE, max(2, images // 2))


def _steps_per_epoch(images: int) -> int:
    """Optimiser steps in one epoch over ``images`` (full batches only, as training drops the last one)."""
    return max(1, images // _batch_size(images))


def matching_epochs(epochs: int, base_images: int, images: int) -> int:
    """Epochs over ``images`` that take at least the optimiser steps of ``epochs`` over ``base_images``."""
    return -(-epochs * _steps_per_epoch(base_images) // _steps_per_epoch(images))


# what may differ between a stored model's settings and a re-run's: where things are, and how it reports
# (``stop_at_chance`` too: a stored model ran to the end, whatever the setting)
_TRAIN_RUN_KEYS = {
    "out",
    "workdir",
    "images",
    "manifest_stage",
    "progress",
    "threads",
    "resume",
    "stop_at_chance",
}


def _recipe(train_settings: dict[str, Any]) -> dict[str, Any]:
    """The settings that make a model what it is (not where its files are or how it reports)."""
    return {key: value for key, value in train_settings.items() if key not in _TRAIN_RUN_KEYS}


def refuse_other_settings(workdir: Path, what: str, stored: dict[str, Any], wanted: dict[str, Any]) -> None:
    """Raise a one-line error when ``workdir`` already holds ``what`` made with settings other than
    ``wanted``: a re-run resumes only what the same settings would make, never another run's results."""
    differ = sorted(key for key in wanted.keys() | stored.keys() if stored.get(key) != wanted.get(key))
    if differ:
        changes = ", ".join(f"{key} {stored.get(key)} -> {wanted.get(key)}" for key in differ)
        raise CurateError(
            f"{workdir} already holds a demo {what} made with other settings ({changes}): pass another "
            f"--workdir, or delete {workdir} to start over"
        )


def _train(data: dict[str, Any], out: Path, config: DemoConfig, epochs: int, seed: int) -> Path:
    """Train the demo recipe for ``epochs`` with ``seed`` (``data``: the data source and batch size); return
    the exported model folder, or the one a previous run exported from the same data with the same
    settings. A model whose data changed since (an upstream stage ran again) is trained again."""
    settings = TrainConfig(
        out=out,
        epochs=epochs,
        input_size=config.input_size,
        head=config.head,
        seed=seed,
        threads=2,
        progress=True,
        # the demo reports every model's accuracy: one still at chance after a small budget (a tiny
        # --identities or --epochs) is a result to show, with the monitor's warning, not a reason to stop
        stop_at_chance=False,
        **data,
    )
    settings.validate()
    model_dir = out / "model"
    fingerprint = _data_fingerprint(data)
    if (model_dir / "embedder.json").exists():
        stamp = out / DATA_STAMP
        if stamp.is_file() and json.loads(stamp.read_text()).get("data") == fingerprint:
            stored = json.loads((out / "config.json").read_text())
            wanted = json.loads(json.dumps(config_to_dict(settings)))
            refuse_other_settings(out.parents[1], f"model ({out.name})", _recipe(stored), _recipe(wanted))
            return model_dir
        logger.warning("demo model %s was trained on other data than this run's: training it again", out.name)
        shutil.rmtree(out)
    result = train(settings)
    assert result.model_dir is not None
    atomic_write_json(out / DATA_STAMP, {"data": fingerprint})
    return result.model_dir


def _data_fingerprint(data: dict[str, Any]) -> str:
    """A digest of what a demo model trains on: the export's record of every file it wrote (sha256s), or a
    manifest's ok images (content-addressed crops) with their identities."""
    if "images" in data:
        return sha256_file(Path(data["images"]).parent / STATE_FILE)
    images = from_manifest(Path(data["workdir"]), data["manifest_stage"])
    return digest_of([images.classes, [str(path) for path in images.paths], images.labels])


def _budget(out: Path, images: int, seeds: int) -> dict[str, int]:
    """What a demo set's models trained on: images, the epochs and optimiser steps each took (its first
    model's metrics log) and how many seeds were trained."""
    last = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    return {"images": images, "epochs": int(last["epoch"]), "steps": int(last["step"]), "seeds": seeds}


def scripted_review(workdir: Path, truth: pd.DataFrame, run_stages: RunStages) -> dict[str, Any]:
    """The review step, with decisions scripted from the ground truth standing in for a person.

    The review plan is exported as for a person (the ``REVIEW_BUDGET`` most uncertain images first, the
    borderline duplicate pairs, the flagged identities); each planned item is decided from ``truth`` and
    stored in the workdir's decision log; the ``review`` stage then applies them and ``export`` reads it.
    A re-run finds the decisions stored and the stage done, and changes nothing.
    """
    from curate.review import decide_from_truth, export_review, read_plan, record_decisions, store_path
    from curate.review.apply import review_spec, summarize
    from curate.review.source import review_input_stage

    plan_input = review_input_stage(workdir)
    if not store_path(workdir).exists():
        exported = export_review(workdir, block=200, budget=REVIEW_BUDGET, sheets=False)
        record_decisions(workdir, decide_from_truth(read_plan(exported.out), truth))
    spec = review_spec(workdir, plan_input)
    applied = summarize(workdir, run_stages([spec])[0], plan_input)
    decided = int(sum(applied.outcomes.values()))
    return {
        "reviewer": "scripted from the ground truth (stands in for a person)",
        "budget_images": REVIEW_BUDGET,
        "decisions": decided,
        "changed": applied.changed,
    }


def _collection(workdir: Path, config: DemoConfig) -> pd.DataFrame:
    synth_dir = workdir / "synth"
    synth = SynthConfig(
        identities=config.identities,
        images_per_identity=config.images_per_identity,
        intruder_rate=config.intruder_rate,
        seed=config.seed,
        heldout_identities=config.heldout_identities,
        pairs_per_fold=config.pairs_per_fold,
    )
    if (synth_dir / "truth.parquet").exists():
        stored = json.loads((synth_dir / "synth_config.json").read_text())
        refuse_other_settings(workdir, "collection", stored, json.loads(json.dumps(config_to_dict(synth))))
    else:
        synthesize(synth, synth_dir, overwrite=synth_dir.exists())
    return pd.read_parquet(synth_dir / "truth.parquet")


def _model_figures(comparison: dict[str, Any]) -> dict[str, Any]:
    """The held-out verification figures of both models and their paired comparison, for the summary."""
    return {
        "verification_heldout": {
            label: {
                k: figures[k]
                for k in ("accuracy_mean", "accuracy_std", "roc_auc", "tar_at_far", "accuracy_by_seed")
            }
            for label, figures in comparison["models"].items()
        },
        "comparison": {k: comparison[k] for k in ("difference", "sentence", "method")},
    }


def run_demo(workdir: Path, run_stages: RunStages, config: DemoConfig | None = None) -> dict[str, Any]:
    """Run the demo end to end in ``workdir`` and return its summary (also saved as ``report.json``)."""
    config = config or DemoConfig()
    workdir = Path(workdir).resolve()
    start = time.perf_counter()
    truth = _collection(workdir, config)
    synth_dir = workdir / "synth"
    pipeline = demo_pipeline(workdir)

    run_stages(select_range(pipeline, None, "faces"))
    models = workdir / "models"
    decoded = int((manifest.read_stage(workdir, "faces").column("status").to_numpy(False) == "ok").sum())
    source = {"workdir": workdir, "manifest_stage": "faces", "batch_size": _batch_size(decoded)}
    uncurated = _train(source, models / "uncurated", config, config.epochs, config.seed)
    run_stages(_with_ranker(select_range(pipeline, "describe", None), uncurated))
    review = scripted_review(workdir, truth, run_stages)
    exported = export_dataset(
        workdir,
        ExportConfig(out=workdir / "export", formats=[ExportFormat.IMAGEFOLDER, ExportFormat.WEBDATASET]),
    )
    shards = {"images": workdir / "export" / "webdataset", "batch_size": _batch_size(exported.rows)}
    # the same number of optimiser steps as the uncurated model: the curated set is smaller, and a model
    # trained for fewer steps would be compared on its training budget rather than on its data
    epochs = matching_epochs(config.epochs, decoded, exported.rows)
    curated = _train(shards, models / "curated", config, epochs, config.seed)
    # more seeds of both, for the comparison only (the first uncurated model ranked the data)
    compared = {"uncurated": [str(uncurated)], "curated": [str(curated)]}
    for seed in range(config.seed + 1, config.seed + config.training_seeds):
        compared["uncurated"].append(
            str(_train(source, models / f"uncurated-seed{seed}", config, config.epochs, seed))
        )
        compared["curated"].append(str(_train(shards, models / f"curated-seed{seed}", config, epochs, seed)))

    budgets = {
        "uncurated": _budget(models / "uncurated", decoded, config.training_seeds),
        "curated": _budget(models / "curated", exported.rows, config.training_seeds),
    }
    pairs, heldout = synth_dir / "heldout_pairs.txt", synth_dir / "heldout"
    comparison = compare_models(compared, pairs, heldout, workdir / "cache")
    collected = manifest.read_stage(workdir, "collect").to_pandas()
    final = manifest.read_stage(workdir, exported.stage).to_pandas()
    curation = curation_figures(collected, final, truth, synth_dir / "images")
    report_path = write_report(
        ReportInputs(
            workdir=workdir,
            stage=exported.stage,
            models=[models / "uncurated", models / "curated"],
            saliency_pairs=sample_pairs(pairs, heldout, SALIENCY_PAIRS),
            saliency_model=curated,
            extra={
                "comparison": comparison,
                "ground_truth": curation,
                "groups": comparison["groups"],
                "review": review,
            },
        ),
        workdir / "report.html",
    )
    summary = {
        "workdir": str(workdir),
        "final_stage": exported.stage,
        "curation": curation,
        **_model_figures(comparison),
        "training": budgets,
        "review": review,
        "export": {"out": str(exported.out), "images": exported.rows, "identities": exported.identities},
        "report_html": str(report_path),
        "seconds": round(time.perf_counter() - start, 1),
    }
    atomic_write_text(workdir / "report.json", json.dumps(summary, indent=1, default=float))
    return summary
