"""``curate run``, ``curate status`` and ``curate collect``: pipelines, progress, the first stage."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from curate.commands.common import console, global_options, run_stage_command, run_with_progress
from curate.pipeline import load_pipeline, select_range
from curate.status import workdir_status


def register(app: typer.Typer) -> None:
    """Add the pipeline commands to ``app``."""

    @app.command("run")
    def run(
        ctx: typer.Context,
        pipeline: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="pipeline TOML file")],
        start: Annotated[str | None, typer.Option("--from", help="first stage to run")] = None,
        stop: Annotated[str | None, typer.Option("--to", help="last stage to run")] = None,
        overwrite: Annotated[bool, typer.Option(help="redo finished shards")] = False,
    ) -> None:
        """Run a declared pipeline in order, resuming from finished shards."""
        options = global_options(ctx)
        spec = load_pipeline(pipeline)
        if spec.shards is not None and options.shards is None:
            options.shards = spec.shards
        run_with_progress(options, select_range(spec, start, stop), overwrite)

    @app.command("status")
    def status(ctx: typer.Context) -> None:
        """Finished/total shards per stage and rows per status."""
        report = workdir_status(global_options(ctx).workdir)
        table = Table(title=f"status of {global_options(ctx).workdir}")
        for column in ("stage", "shards done", "rows by status"):
            table.add_column(column)
        for row in report:
            counts = ", ".join(f"{k}={v}" for k, v in sorted(row.status_counts.items()))
            table.add_row(row.stage, f"{row.done}/{row.total}", counts)
        console.print(table)

    @app.command("collect")
    def collect(
        ctx: typer.Context,
        source: Annotated[
            Path, typer.Argument(exists=True, help="DIR/<identity>/<images> or URLS.csv|.jsonl")
        ],
        names_file: Annotated[
            Path | None, typer.Option(exists=True, dir_okay=False, help="line N names numbered folder N")
        ] = None,
        max_pixels: Annotated[int | None, typer.Option(help="refuse images with more pixels")] = None,
        concurrency: Annotated[int | None, typer.Option(help="downloads in flight per shard")] = None,
        allow_private_addresses: Annotated[
            bool, typer.Option(help="allow URLs on private/loopback addresses (tests)")
        ] = False,
        squares: Annotated[
            bool, typer.Option(help="folders: also store describe's 64x64 squares (describe skips decoding)")
        ] = False,
        overwrite: Annotated[bool, typer.Option(help="redo finished shards")] = False,
    ) -> None:
        """Collect images: a folder tree of identities, or a URL list (CSV/JSONL) to download."""
        if source.is_dir():
            settings = {
                "source": source,
                "names_file": names_file,
                "max_pixels": max_pixels,
                "squares": squares,
            }
            run_stage_command(ctx, "collect", settings, overwrite)
        else:
            settings = {
                "source": source,
                "max_pixels": max_pixels,
                "concurrency": concurrency,
                "allow_private_addresses": allow_private_addresses or None,
            }
            run_stage_command(ctx, "download", settings, overwrite)
