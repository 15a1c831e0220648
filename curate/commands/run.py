"""``curate run`` (a declared pipeline) and ``curate status`` (what the workdir holds)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from curate.commands.common import console, global_options, run_with_progress

app = typer.Typer()


@app.command("run")
def run(
    ctx: typer.Context,
    pipeline: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="pipeline TOML file")],
    start: Annotated[str | None, typer.Option("--from", help="first stage to run")] = None,
    stop: Annotated[str | None, typer.Option("--to", help="last stage to run")] = None,
    overwrite: Annotated[bool, typer.Option(help="redo finished shards")] = False,
) -> None:
    """Run a declared pipeline in order, resuming from finished shards."""
    from curate.pipeline import WORKDIR_FILE, load_pipeline, select_range

    options = global_options(ctx)
    spec = load_pipeline(pipeline)
    if spec.shards is not None and options.shards is None and not (options.workdir / WORKDIR_FILE).exists():
        options.shards = spec.shards  # the file's count starts a new workdir; an existing one keeps its own
    run_with_progress(options, select_range(spec, start, stop), overwrite)


@app.command("status")
def status(
    ctx: typer.Context,
    verify: Annotated[
        bool, typer.Option(help="re-hash every shard file (default: trust size and mtime)")
    ] = False,
) -> None:
    """Per stage: done / partial / stale / corrupt shards, why, and rows per status."""
    from curate.envcheck import check_status_workdir
    from curate.status import workdir_status

    workdir = global_options(ctx).workdir
    check_status_workdir(workdir)
    report = workdir_status(workdir, verify=verify)
    table = Table(title=f"status of {workdir}")
    for column in ("stage", "state", "done", "stale", "corrupt", "rows by status", "why"):
        table.add_column(column, overflow="fold")
    for row in report:
        counts = ", ".join(f"{k}={v}" for k, v in sorted(row.status_counts.items()))
        table.add_row(
            row.stage,
            row.state,
            f"{row.done}/{row.total}",
            str(row.stale),
            str(row.corrupt),
            counts,
            row.why,
        )
    console.print(table)
    for row in report:
        for line in row.problems:
            console.print(line, markup=False, highlight=False, soft_wrap=True)
