"""``curate train`` (an embedding network on a curated manifest or a folder tree) and ``curate evaluate``."""

from __future__ import annotations

import json
import logging
import tomllib
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from curate.config import build_config
from curate.errors import ConfigError
from curate.review.source import training_stage
from curate.train.config import HeadKind, Mining, Optimizer, PairLoss, Recipe, Schedule, TrainConfig

logger = logging.getLogger(__name__)
console = Console(stderr=True)

PROTOCOL_HELP = (
    "lfw (PAIRS = pairs.txt), cfp-ff or cfp-fp (PAIRS = the CFP Protocol folder, IMAGES = CFP root); "
    "default lfw with --pairs, else workdir (pairs of the workdir's own identities)"
)


def _toml_settings(path: Path | None) -> dict[str, Any]:
    """The ``[train]`` table of a TOML file (or its top level when it has no such table)."""
    if path is None:
        return {}
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise ConfigError("config", str(path), f"fix the TOML syntax ({error})") from error
    return dict(data.get("train", data))


def _folds(text: str | None) -> list[int] | None:
    if not text:
        return None
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConfigError("folds", text, "give fold numbers separated by commas, e.g. 6,7,8,9,10") from None


def _print_report(report: dict[str, Any]) -> None:
    table = Table(title=f"{report['protocol']}: {report['embedder']} ({len(report['folds'])} folds)")
    table.add_column("metric")
    table.add_column("value")
    missing = report.get("missing", {})
    if missing.get("pairs"):
        table.add_row("pairs with missing images", f"{missing['pairs']} (scored as failures)")
    if report.get("note"):
        table.add_row("pairs", report["note"])
    table.add_row("accuracy", f"{report['accuracy_mean']:.4f} ± {report['accuracy_std']:.4f}")
    table.add_row("ROC AUC", f"{report['roc_auc']:.4f}")
    for far, tar in report["tar_at_far"].items():
        table.add_row(f"TAR @ FAR {far}", f"{tar:.4f}")
    for key, value in report["identification"].items():
        table.add_row(f"identification {key}", f"{value:.4f}" if isinstance(value, float) else str(value))
    table.add_row("images", ", ".join(f"{k}={v}" for k, v in report["images"].items()))
    for group, figures in report.get("groups", {}).items():
        if isinstance(figures, dict):
            table.add_row(
                f"group {group}", f"accuracy {figures['accuracy']:.4f} over {figures['pairs']} pairs"
            )
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add ``train`` and ``evaluate`` to ``app``."""

    @app.command("train")
    def train_command(
        ctx: typer.Context,
        images: Annotated[
            Path | None,
            typer.Option(exists=True, file_okay=False, help="train on <DIR>/<identity>/<image> files"),
        ] = None,
        manifest_stage: Annotated[
            str | None,
            typer.Option(help="manifest stage in --workdir (default review if applied, else dedup)"),
        ] = None,
        out: Annotated[Path | None, typer.Option(help="output folder (default <workdir>/train)")] = None,
        config: Annotated[
            Path | None, typer.Option(exists=True, dir_okay=False, help="TOML with a [train] table")
        ] = None,
        backbone: Annotated[str | None, typer.Option(help="small, resnet18, resnet34 or resnet50")] = None,
        embedding_dim: Annotated[int | None, typer.Option(help="embedding size")] = None,
        input_size: Annotated[
            int | None, typer.Option(help="square input side in pixels (multiple of 16)")
        ] = None,
        head: Annotated[HeadKind | None, typer.Option(help="classification head")] = None,
        scale: Annotated[float | None, typer.Option(help="logit scale of the margin heads")] = None,
        margin_rad: Annotated[float | None, typer.Option(help="ArcFace additive angle (radians)")] = None,
        margin_cos: Annotated[float | None, typer.Option(help="CosFace cosine margin")] = None,
        margin_mult: Annotated[int | None, typer.Option(help="SphereFace angle multiplier")] = None,
        center_loss_weight: Annotated[
            float | None, typer.Option(help="weight of the centre loss (0 = off)")
        ] = None,
        pair_loss: Annotated[PairLoss | None, typer.Option(help="pair/triplet loss on P x K batches")] = None,
        mining: Annotated[Mining | None, typer.Option(help="triplet negative mining")] = None,
        triplet_margin_dist: Annotated[float | None, typer.Option(help="triplet margin (distance)")] = None,
        recipe: Annotated[
            Recipe | None, typer.Option(help="vggface: classifier, then triplet projection")
        ] = None,
        projection_dim: Annotated[int | None, typer.Option(help="vggface recipe: projection size")] = None,
        projection_epochs: Annotated[
            int | None, typer.Option(help="vggface recipe: projection epochs")
        ] = None,
        optimizer: Annotated[Optimizer | None, typer.Option(help="sgd or adamw")] = None,
        lr: Annotated[float | None, typer.Option(help="peak learning rate")] = None,
        weight_decay: Annotated[float | None, typer.Option(help="weight decay")] = None,
        schedule: Annotated[Schedule | None, typer.Option(help="decay after warm-up")] = None,
        warmup_epochs: Annotated[float | None, typer.Option(help="linear warm-up length in epochs")] = None,
        margin_warmup_epochs: Annotated[
            float | None, typer.Option(help="margin heads: epochs over which the margin grows from 0")
        ] = None,
        stop_at_chance: Annotated[
            bool | None,
            typer.Option(
                "--stop-at-chance/--no-stop-at-chance",
                help="stop when training accuracy is still at chance after the warm-up",
            ),
        ] = None,
        epochs: Annotated[int | None, typer.Option(help="training epochs")] = None,
        batch_size: Annotated[int | None, typer.Option(help="batch size without a pair loss")] = None,
        identities_per_batch: Annotated[
            int | None, typer.Option("--p", help="P identities per batch")
        ] = None,
        images_per_identity: Annotated[int | None, typer.Option("--k", help="K images per identity")] = None,
        workers: Annotated[int | None, typer.Option(help="DataLoader worker processes")] = None,
        threads: Annotated[int | None, typer.Option(help="torch CPU threads (0 = default)")] = None,
        seed: Annotated[int | None, typer.Option(help="random seed")] = None,
        device: Annotated[str | None, typer.Option(help="auto, cpu, cuda or cuda:N")] = None,
        precision: Annotated[str | None, typer.Option(help="auto, fp32, bf16 or fp16")] = None,
        resume: Annotated[
            bool | None, typer.Option("--resume/--no-resume", help="continue from <out>/checkpoints/last.pt")
        ] = None,
        progress: Annotated[
            bool | None, typer.Option("--progress/--no-progress", help="progress bar")
        ] = None,
    ) -> None:
        """Train an embedding network and export it to <out>/model (loadable by every embedder user)."""
        from curate.train.loop import train

        workdir = ctx.obj.workdir
        cli = {
            k: v
            for k, v in locals().items()
            if k not in ("ctx", "config", "workdir", "train") and v is not None
        }
        settings = {**_toml_settings(config), **cli}
        if settings.get("images") is None:
            settings["workdir"] = workdir
            settings.setdefault("manifest_stage", training_stage(workdir))  # 'review' once applied
        settings.setdefault("out", workdir / "train")
        result = train(build_config(TrainConfig, settings, where=""))
        console.print(
            f"trained {result.epochs_done} epochs; model: {result.model_dir}; metrics: {result.out}"
        )

    @app.command("evaluate")
    def evaluate_command(
        ctx: typer.Context,
        model: Annotated[
            str | None,
            typer.Option(
                help="'dlib', an exported model folder or a checkpoint (default <workdir>/train/model)"
            ),
        ] = None,
        pairs: Annotated[
            Path | None, typer.Option(exists=True, help="pairs.txt or the CFP Protocol folder")
        ] = None,
        images: Annotated[
            Path | None, typer.Option(exists=True, file_okay=False, help="image root of --pairs")
        ] = None,
        protocol: Annotated[str | None, typer.Option(help=PROTOCOL_HELP)] = None,
        as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON on stdout")] = False,
        folds: Annotated[str | None, typer.Option(help="only these folds, e.g. 6,7,8,9,10")] = None,
        align: Annotated[bool, typer.Option(help="detect and align faces as the faces stage does")] = True,
        cache: Annotated[Path | None, typer.Option(help="embedding cache (default <workdir>/cache)")] = None,
        out: Annotated[
            Path | None, typer.Option(help="report folder (default <workdir>/evaluate/...)")
        ] = None,
        group_by: Annotated[
            str | None, typer.Option(help="manifest column to break accuracy down by")
        ] = None,
        manifest_stage: Annotated[
            str | None, typer.Option(help="manifest stage holding --group-by (default: the one trained on)")
        ] = None,
        allow_missing: Annotated[
            bool, typer.Option(help="score pairs whose images are missing or unreadable as failures")
        ] = False,
    ) -> None:
        """Pair verification (k-fold accuracy, ROC AUC, TAR@FAR, ROC plot) and rank-1/5 identification."""
        from curate.evaluate import PROTOCOLS, evaluate
        from curate.evaluate.run import model_fingerprint
        from curate.evaluate.workdir import WORKDIR_PROTOCOL, default_model

        protocol = protocol or ("lfw" if pairs is not None else WORKDIR_PROTOCOL)
        if protocol not in PROTOCOLS:
            raise ConfigError("protocol", protocol, f"choose one of: {', '.join(PROTOCOLS)}")
        workdir = ctx.obj.workdir
        model = model or default_model(workdir)
        label = f"{protocol}-{Path(model).name}-{model_fingerprint(model)[:8]}"
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=console,
        ) as bar:
            tasks: dict[str, Any] = {}

            def update(stage: str, done: int, total: int) -> None:
                if stage not in tasks:
                    tasks[stage] = bar.add_task(stage, total=total)
                bar.update(tasks[stage], completed=done)

            report = evaluate(
                model,
                pairs,
                images,
                protocol,
                cache_dir=cache or workdir / "cache",
                out_dir=out or workdir / "evaluate" / label,
                workdir=workdir,
                align=align,
                folds=_folds(folds),
                group_by=group_by,
                manifest_stage=manifest_stage,
                progress=update,
                allow_missing=allow_missing,
            )
        missing = report["missing"]
        if missing["pairs"]:
            console.print(
                f"{missing['pairs']} pairs ({missing['genuine_pairs']} genuine) name {missing['images']} "
                "missing or unreadable images, scored as failures (--allow-missing)",
                soft_wrap=True,
            )
        if as_json:
            typer.echo(json.dumps(report))
        else:
            _print_report(report)
        console.print(f"report files: {', '.join(report['files'])}", soft_wrap=True)
