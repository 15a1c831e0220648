"""The ``curate`` command line: global options, logging, and one-line errors.

Commands live in ``curate.commands.*`` and stay thin: build a config, call the library. Any
:class:`~curate.errors.CurateError` or usage mistake becomes one line on stderr and exit code 1.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from curate.commands import candidates, dedup, demo, export, faces, rank, run, synth, train
from curate.commands.common import GlobalOptions
from curate.errors import CurateError

SCHEDULER_HELP = "dask scheduler address (tcp://HOST:PORT); default $CURATE_SCHEDULER, else a local cluster"


class _OneLineErrors(TyperGroup):
    """Turns user errors into a single line and exit code 1 instead of a traceback or usage block."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        try:
            return super().main(*args, standalone_mode=False, **kwargs)
        except typer.Exit as done:
            if standalone_mode:
                sys.exit(done.exit_code)
            return done.exit_code
        except typer.Abort:
            typer.echo("error: aborted", err=True)
            sys.exit(1)
        except typer.TyperException as error:  # usage errors: bad option, missing argument, bad value
            context = getattr(error, "ctx", None)
            if type(error).__name__ == "NoArgsIsHelpError" and context is not None:
                typer.echo(context.get_help())
                sys.exit(0)
            command = context.command_path if context is not None else "curate"
            message = " ".join(error.format_message().split())
            typer.echo(f"error: {message} (see '{command} --help')", err=True)
            sys.exit(1)
        except CurateError as error:
            typer.echo(f"error: {' '.join(str(error).split())}", err=True)
            sys.exit(1)


app = typer.Typer(
    cls=_OneLineErrors,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Build clean face-recognition training sets and train embedding models on them.",
)


@app.callback()
def main_options(
    ctx: typer.Context,
    workdir: Annotated[Path, typer.Option("--workdir", "-w", help="where manifests go")] = Path(
        "runs/default"
    ),
    scheduler: Annotated[str | None, typer.Option(help=SCHEDULER_HELP)] = None,
    workers: Annotated[int, typer.Option(help="local worker processes")] = 2,
    shards: Annotated[int | None, typer.Option(help="shards for a new workdir (default 8)")] = None,
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING or ERROR")] = "WARNING",
) -> None:
    """Global options, given before the command."""
    level = logging.getLevelName(log_level.upper())
    if not isinstance(level, int):
        raise typer.BadParameter(
            f"'{log_level}': use DEBUG, INFO, WARNING or ERROR", param_hint="--log-level"
        )
    if workers < 1:
        raise typer.BadParameter(f"'{workers}': give 1 or more worker processes", param_hint="--workers")
    if shards is not None and shards < 1:
        raise typer.BadParameter(f"'{shards}': give 1 or more shards", param_hint="--shards")
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    ctx.obj = GlobalOptions(workdir=workdir, scheduler=scheduler, workers=workers, shards=shards)


for module in (run, candidates, synth, faces, dedup, rank, train, export, demo):
    module.register(app)


def main() -> None:
    """Console-script entry point."""
    app(prog_name="curate")
