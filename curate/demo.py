"""``curate demo``: the whole job on the embedded default, a synthetic web collection with known truth.

1. Draw the collection (``synth/``), unless the workdir already holds it.
2. Run the declared demo pipeline (``curate/pipelines/demo.toml``) up to ``faces``.
3. Train a first-pass model on everything that decoded (the uncurated set).
4. Run ``describe`` -> ``rank`` -> ``dedup`` with that model as the ranking embedder — VGG-Face's last
   curation step, where a model trained on a first pass ranks the data for the next; near-duplicate
   clusters then keep their best-ranked member.
5. Train the same recipe on the curated set, evaluate both on held-out identities (LFW pairs format), and
   score the manifest against the ground truth: purity, true images kept, intruders, non-faces, corrupt
   files and planted near-duplicates caught.
"""

from __future__ import annotations

import json
import logging
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

from curate import manifest
from curate.embedders import get_embedder
from curate.evaluate import evaluate
from curate.executor import StageResult
from curate.groundtruth import curation_figures
from curate.pipeline import PipelineSpec, StageSpec, parse_pipeline, select_range
from curate.synth import SynthConfig, synthesize
from curate.train.config import HeadKind, TrainConfig
from curate.train.loop import train

logger = logging.getLogger(__name__)

RunStages = Callable[[list[StageSpec]], list[StageResult]]
FINAL_STAGE = "dedup"  # the last stage of the demo pipeline: ranked, then near-duplicates removed


@dataclass
class DemoConfig:
    """Size of the demo: the synthetic collection and the training budget."""

    identities: int = 30
    images_per_identity: int = 20
    seed: int = 0
    epochs: int = 12
    input_size: int = 64
    head: HeadKind = HeadKind.SOFTMAX  # margin heads need more images per identity than the demo has


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


def _train(workdir: Path, stage: str, out: Path, config: DemoConfig) -> Path:
    """Train the demo recipe on a stage's ok rows; return the exported model folder."""
    model_dir = out / "model"
    if (model_dir / "embedder.json").exists():
        return model_dir
    settings = TrainConfig(
        out=out,
        workdir=workdir,
        manifest_stage=stage,
        epochs=config.epochs,
        input_size=config.input_size,
        head=config.head,
        seed=config.seed,
        threads=2,
        progress=True,
    )
    settings.validate()
    result = train(settings)
    assert result.model_dir is not None
    return result.model_dir


def run_demo(workdir: Path, run_stages: RunStages, config: DemoConfig | None = None) -> dict[str, Any]:
    """Run the demo end to end in ``workdir`` and return its report (also saved as ``report.json``)."""
    config = config or DemoConfig()
    workdir = Path(workdir).resolve()
    synth_dir = workdir / "synth"
    if not (synth_dir / "truth.parquet").exists():
        synth = SynthConfig(
            identities=config.identities, images_per_identity=config.images_per_identity, seed=config.seed
        )
        synthesize(synth, synth_dir, overwrite=synth_dir.exists())
    truth = pd.read_parquet(synth_dir / "truth.parquet")
    pipeline = demo_pipeline(workdir)

    run_stages(select_range(pipeline, None, "faces"))
    uncurated = _train(workdir, "faces", workdir / "models" / "uncurated", config)
    run_stages(_with_ranker(select_range(pipeline, "describe", None), uncurated))
    curated = _train(workdir, FINAL_STAGE, workdir / "models" / "curated", config)

    pairs, heldout = synth_dir / "heldout_pairs.txt", synth_dir / "heldout"
    verification = {}
    for label, model in (("uncurated", uncurated), ("curated", curated)):
        result = evaluate(
            str(model), pairs, heldout, protocol="lfw", cache_dir=workdir / "cache", align=False
        )
        verification[label] = {
            k: result[k] for k in ("accuracy_mean", "accuracy_std", "roc_auc", "tar_at_far")
        }
    collected = manifest.read_stage(workdir, "collect").to_pandas()
    final = manifest.read_stage(workdir, FINAL_STAGE).to_pandas()
    report = {
        "workdir": str(workdir),
        "curation": curation_figures(collected, final, truth, synth_dir / "images"),
        "verification_heldout": verification,
    }
    (workdir / "report.json").write_text(json.dumps(report, indent=1, default=float))
    return report
