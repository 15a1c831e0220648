"""What every command shares: the global options and running stages with progress bars."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from curate.progress import Bars

if TYPE_CHECKING:  # the executor and pipelines load dask and pyarrow: imported when a stage runs
    from curate.executor import ExecutorOptions, StageResult
    from curate.pipeline import StageSpec

console = Console(stderr=True)
INPUT_HELP = (
    "stage to read (default: the last of collect, exact, faces, select, describe, rank run before it)"
)
InputOption = Annotated[str | None, typer.Option("--input", help=INPUT_HELP)]
OverwriteOption = Annotated[bool, typer.Option(help="redo finished shards")]


@dataclass
class GlobalOptions:
    """Options given before the command name: ``curate -w runs/x --workers 4 faces``."""

    workdir: Path
    scheduler: str | None
    workers: int
    shards: int | None

    def executor_options(self) -> ExecutorOptions:
        """The executor settings these options ask for."""
        from curate.executor import ExecutorOptions

        return ExecutorOptions(scheduler=self.scheduler, workers=self.workers)


def global_options(ctx: typer.Context) -> GlobalOptions:
    """The global options stored by the app's callback."""
    return ctx.obj


def run_with_progress(options: GlobalOptions, specs: list[StageSpec], overwrite: bool) -> list[StageResult]:
    """Run stages on the executor with a progress bar per stage, then print a summary table."""
    from curate.pipeline import run_specs

    with Bars("shards", status=True) as bars:
        results = run_specs(
            specs, options.workdir, options.executor_options(), options.shards, overwrite, bars.stage_callback
        )
    print_results(results)
    return results


def print_results(results: list[StageResult]) -> None:
    """A table of rows per status for each stage run."""
    table = Table(title="stage results")
    for column in ("stage", "shards run", "skipped", "rows by status", "seconds"):
        table.add_column(column)
    for r in results:
        counts = ", ".join(f"{k}={v}" for k, v in sorted(r.status_counts.items()))
        table.add_row(r.stage, str(r.shards_run), str(r.shards_skipped), counts, f"{r.seconds:.1f}")
    console.print(table)


def resolved_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """The settings given, paths made absolute: a stage run by hand and in a pipeline have one config."""
    return {k: v.resolve() if isinstance(v, Path) else v for k, v in settings.items() if v is not None}


def run_stage_command(
    ctx: typer.Context,
    key: str,
    settings: dict[str, Any],
    overwrite: bool = False,
    input_stage: str | None = None,
) -> StageResult:
    """Run one registered stage from a CLI command (settings left as None take the config defaults)."""
    from curate.config import build_config
    from curate.pipeline import StageSpec
    from curate.stages import config_class

    options = global_options(ctx)
    given = resolved_settings(settings)
    build_config(config_class(key), given, where=f"{key}.")  # a bad setting: one line, before any output
    spec = StageSpec(key, given, input_stage)
    return run_with_progress(options, [spec], overwrite)[0]
