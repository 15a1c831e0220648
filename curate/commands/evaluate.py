"""``curate evaluate``: pair verification and identification of a model on a benchmark.

Options are generated from :class:`~curate.evaluate_config.EvaluateConfig` (:mod:`curate.commands.options`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from curate.commands.options import config_options
from curate.config import build_config, config_to_dict
from curate.evaluate_config import EvaluateConfig
from curate.progress import Bars

console = Console(stderr=True)
app = typer.Typer()


def _print_report(report: dict[str, Any]) -> None:
    from curate.evaluate.verification import accuracy_text

    table = Table(title=f"{report['protocol']}: {report['embedder']} ({len(report['folds'])} folds)")
    table.add_column("metric")
    table.add_column("value")
    missing = report.get("missing", {})
    if missing.get("pairs"):
        table.add_row("pairs with missing images", f"{missing['pairs']} (scored as failures)")
    if report.get("note"):
        table.add_row("pairs", report["note"])
    table.add_row("accuracy", accuracy_text(report))
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


def settings_fingerprint(config: EvaluateConfig) -> str:
    """8 hex digits of the settings that change an evaluation's figures (pairs, images, folds, alignment,
    grouping...): two evaluations of one model with other settings get their own report folders."""
    from curate.lineage import digest_of

    chosen = {k: v for k, v in config_to_dict(config).items() if k not in ("model", "out", "cache")}
    return digest_of(chosen)[:8]


@app.command("evaluate")
@config_options(EvaluateConfig)
def evaluate_command(
    ctx: typer.Context,
    settings: dict[str, Any],
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON on stdout")] = False,
) -> None:
    """Pair verification (k-fold accuracy, ROC AUC, TAR@FAR, ROC plot) and rank-1/5 identification."""
    config = build_config(EvaluateConfig, settings)
    from curate.evaluate import evaluate
    from curate.evaluate.run import model_fingerprint
    from curate.evaluate.workdir import default_model

    workdir = ctx.obj.workdir
    model, protocol = config.model or default_model(workdir), config.resolved_protocol().value
    label = f"{protocol}-{Path(model).name}-{model_fingerprint(model)[:8]}-{settings_fingerprint(config)}"
    with Bars(eta=True) as bars:
        report = evaluate(
            model,
            config.pairs,
            config.images,
            protocol,
            cache_dir=config.cache or workdir / "cache",
            out_dir=config.out or workdir / "evaluate" / label,
            workdir=workdir,
            align=config.align,
            folds=config.folds or None,
            group_by=config.group_by,
            manifest_stage=config.manifest_stage,
            progress=bars.update,
            allow_missing=config.allow_missing,
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
