"""``curate run``, ``curate status``, ``curate collect`` and ``curate exact``: pipelines, the first stages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from curate.commands.common import INPUT_HELP, console, global_options, run_stage_command, run_with_progress
from curate.envcheck import check_status_workdir
from curate.executor import StageResult, stats_path
from curate.names import merge_summary
from curate.pipeline import WORKDIR_FILE, load_pipeline, select_range
from curate.status import workdir_status


def collected_merges(workdir: Path, result: StageResult) -> list[dict]:
    """The ``name_merges`` recorded in the stats of every shard of a collect run."""
    merges: list[dict] = []
    for shard in range(result.shards_total):
        path = stats_path(workdir, result.stage, shard)
        if path.is_file():
            merges.extend(json.loads(path.read_text()).get("name_merges", []))
    return sorted(merges, key=lambda merge: merge["identity_id"])


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
        if (
            spec.shards is not None
            and options.shards is None
            and not (options.workdir / WORKDIR_FILE).exists()
        ):
            options.shards = (
                spec.shards
            )  # the file's count starts a new workdir; an existing one keeps its own
        run_with_progress(options, select_range(spec, start, stop), overwrite)

    @app.command("status")
    def status(
        ctx: typer.Context,
        verify: Annotated[
            bool, typer.Option(help="re-hash every shard file (default: trust size and mtime)")
        ] = False,
    ) -> None:
        """Per stage: done / partial / stale / corrupt shards, why, and rows per status."""
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
            bool, typer.Option(help="allow private ranges (10/8, 172.16/12, 192.168/16, fc00::/7)")
        ] = False,
        allow_network: Annotated[
            list[str] | None,
            typer.Option(help="CIDR to allow although not public, e.g. 127.0.0.0/8 (repeatable)"),
        ] = None,
        case_sensitive_names: Annotated[
            bool, typer.Option(help="keep names differing only in case apart (default: they fold)")
        ] = False,
        squares: Annotated[
            bool, typer.Option(help="folders: also store describe's 64x64 squares (describe skips decoding)")
        ] = False,
        overwrite: Annotated[bool, typer.Option(help="redo finished shards")] = False,
    ) -> None:
        """Collect images: a folder tree of identities, or a URL list (CSV/JSONL) to download."""
        common = {
            "source": source,
            "max_pixels": max_pixels,
            "case_sensitive_names": case_sensitive_names or None,
        }
        if source.is_dir():
            folder = {**common, "names_file": names_file, "squares": squares or None}
            result = run_stage_command(ctx, "collect", folder, overwrite)
        else:
            settings = {
                **common,
                "concurrency": concurrency,
                "allow_private_addresses": allow_private_addresses or None,
                "allowed_networks": allow_network or None,
            }
            result = run_stage_command(ctx, "download", settings, overwrite)
        summary = merge_summary(collected_merges(global_options(ctx).workdir, result), case_sensitive_names)
        if summary:
            console.print(summary, soft_wrap=True, markup=False, highlight=False)

    @app.command("exact")
    def exact(
        ctx: typer.Context,
        input_stage: Annotated[str | None, typer.Option("--input", help=INPUT_HELP)] = None,
        overwrite: Annotated[bool, typer.Option(help="redo the step")] = False,
    ) -> None:
        """Flag one photo (same sha256) filed under two identities as identity_conflict."""
        run_stage_command(ctx, "exact", {}, overwrite, input_stage=input_stage)
