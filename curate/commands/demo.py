"""``curate demo``: the whole job on the embedded synthetic collection, then a report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from curate.commands.common import console, global_options, run_with_progress
from curate.envcheck import check_workdir
from curate.workdir_lock import hold_workdir

DEFAULT_WORKDIR = Path("runs/default")
DEMO_WORKDIR = Path("runs/demo")


def _print_report(report: dict) -> None:
    curation = report["curation"]
    table = Table(title="curation against the ground truth")
    table.add_column("figure")
    table.add_column("value")
    table.add_row(
        "purity before -> after", f"{curation['purity_before']:.3f} -> {curation['purity_after']:.3f}"
    )
    table.add_row("true images kept", f"{curation['true_images_kept']:.3f}")
    for kind in ("intruders", "non_faces", "corrupt", "near_duplicates"):
        row = curation[kind]
        table.add_row(f"{kind.replace('_', ' ')} removed", f"{row['removed']} of {row['planted']}")
    pairs = curation["duplicate_pairs"]
    table.add_row(
        "planted duplicate pairs",
        f"{pairs['planted']}: dedup found {pairs['found']}, {pairs['resolved_earlier']} resolved earlier"
        f" (one copy removed), {pairs['left']} left in the kept set",
    )
    console.print(table)
    table = Table(title="verification on held-out synthetic identities (10-fold; means over seeds)")
    for column in ("trained on", "accuracy", "by seed", "ROC AUC", "TAR @ FAR 1e-1"):
        table.add_column(column)
    for label, figures in report["verification_heldout"].items():
        tar = figures["tar_at_far"].get("1e-1")
        table.add_row(
            label,
            f"{figures['accuracy_mean']:.3f} ± {figures['accuracy_std']:.3f}",
            " ".join(f"{accuracy:.3f}" for accuracy in figures["accuracy_by_seed"]),
            f"{figures['roc_auc']:.3f}",
            f"{tar:.3f}" if tar is not None else "-",
        )
    console.print(table)
    budgets = report["training"]
    console.print(
        "training: the same recipe and number of optimiser steps for both ("
        + "; ".join(
            f"{label}: {b['seeds']} x {b['steps']} steps, {b['epochs']} epochs of {b['images']} images"
            for label, b in budgets.items()
        )
        + ")",
        soft_wrap=True,
    )
    review = report["review"]
    changed = ", ".join(f"{k} {v}" for k, v in sorted(review["changed"].items())) or "nothing"
    console.print(
        f"review: {review['decisions']} decisions by a script reading the ground truth, standing in for a "
        f"person (budget {review['budget_images']} images); review changed: {changed}",
        soft_wrap=True,
    )
    console.print(report["comparison"]["sentence"], soft_wrap=True)
    console.print(f"[dim]{report['comparison']['method']}[/dim]")
    console.print(f"exported: {report['export']['out']} ({report['export']['images']} images)")
    console.print(f"report: {report['report_html']}  ({report['seconds']:.0f} s)", soft_wrap=True)


app = typer.Typer()


@app.command("demo")
def demo(
    ctx: typer.Context,
    identities: Annotated[int, typer.Option(help="identities in the synthetic collection")] = 30,
    images_per_identity: Annotated[int, typer.Option(help="files per identity folder")] = 20,
    intruder_rate: Annotated[
        float, typer.Option(help="share of files showing someone else (web-like: 0.35)")
    ] = 0.35,
    epochs: Annotated[
        int, typer.Option(help="training epochs of the uncurated model (the curated one takes as many steps)")
    ] = 12,
    seed: Annotated[int, typer.Option(help="seed of the collection and the training")] = 0,
    training_seeds: Annotated[
        int, typer.Option(help="models trained per set for the comparison (seed, seed + 1, ...)", min=1)
    ] = 3,
) -> None:
    """Synthesise a web collection, curate it, train on it before and after, and report."""
    from curate.demo import DemoConfig, demo_pipeline_data, run_demo  # torch loads only when a demo runs

    options = global_options(ctx)
    if options.workdir == DEFAULT_WORKDIR:
        options.workdir = DEMO_WORKDIR
    options.shards = options.shards or demo_pipeline_data()["shards"]
    config = DemoConfig(
        identities=identities,
        images_per_identity=images_per_identity,
        intruder_rate=intruder_rate,
        seed=seed,
        epochs=epochs,
        training_seeds=training_seeds,
    )
    check_workdir(options.workdir)
    with hold_workdir(options.workdir):  # the whole demo: stages, training, evaluation
        report = run_demo(options.workdir, lambda specs: run_with_progress(options, specs, False), config)
    _print_report(report)
