"""``curate export OUT`` (the curated set as files, with a dataset card) and ``curate report`` (one page)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from curate.commands.common import console, global_options
from curate.errors import ConfigError
from curate.export_config import ExportConfig, ExportFormat, ImageKind
from curate.progress import Bars

app = typer.Typer()


@app.command("export")
def export(
    ctx: typer.Context,
    out: Annotated[Path, typer.Argument(file_okay=False, help="export folder (a re-export updates it)")],
    input_stage: Annotated[
        str | None, typer.Option("--input", help="manifest stage (default: review, else the last stage)")
    ] = None,
    images: Annotated[ImageKind, typer.Option(help="aligned face crops or the original files")] = (
        ImageKind.CROPS
    ),
    formats: Annotated[
        list[ExportFormat] | None,
        typer.Option("--format", help="imagefolder and/or webdataset (repeat the option for both)"),
    ] = None,
    shard_size: Annotated[int, typer.Option(help="WebDataset samples per shard (about)")] = 1000,
    card: Annotated[bool, typer.Option("--card/--no-card", help="write the dataset card")] = True,
) -> None:
    """Export the curated images (ImageFolder tree, WebDataset shards), manifest, list and card."""
    from curate.export import export_dataset

    options = global_options(ctx)
    config = ExportConfig(
        out=out,
        input_stage=input_stage,
        images=images,
        formats=list(formats or [ExportFormat.IMAGEFOLDER]),
        shard_size=shard_size,
        card=card,
    )
    with Bars() as bars:
        result = export_dataset(options.workdir, config, bars.update)
    for kind, counts in result.counts.items():
        console.print(f"{kind}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    console.print(
        f"exported {result.rows} images of {result.identities} identities from '{result.stage}' to {out}"
    )
    if result.card is not None:
        console.print(f"dataset card: {result.card}")


@app.command("report")
def report(
    ctx: typer.Context,
    out: Annotated[Path | None, typer.Option(help="HTML file (default <workdir>/report.html)")] = None,
    input_stage: Annotated[
        str | None, typer.Option("--input", help="manifest stage (default: review, else the last stage)")
    ] = None,
    models: Annotated[
        list[Path] | None,
        typer.Option("--model", help="a training output folder (metrics.jsonl, model/); repeatable"),
    ] = None,
    evaluations: Annotated[
        list[Path] | None,
        typer.Option("--evaluation", help="an evaluate output folder (report.json); repeatable"),
    ] = None,
    pairs: Annotated[
        Path | None, typer.Option(exists=True, dir_okay=False, help="LFW pairs.txt for the saliency maps")
    ] = None,
    pair_images: Annotated[
        Path | None, typer.Option(exists=True, file_okay=False, help="image root of --pairs")
    ] = None,
) -> None:
    """Write one self-contained HTML page: funnel, histograms, contact sheets, training and evaluation."""
    from curate.report import ReportInputs, write_report
    from curate.report.saliency import sample_pairs

    options = global_options(ctx)
    if (pairs is None) != (pair_images is None):
        raise ConfigError("pairs", pairs, "give --pairs and --pair-images together (or neither)")
    inputs = ReportInputs(
        workdir=options.workdir,
        stage=input_stage,
        models=list(models or []),
        evaluations=list(evaluations or []),
        saliency_pairs=sample_pairs(pairs, pair_images) if pairs and pair_images else [],
    )
    path = write_report(inputs, out or options.workdir / "report.html")
    typer.echo(str(path))
