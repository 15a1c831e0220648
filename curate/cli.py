"""The ``curate`` command line: global options, logging, the workdir lock, signals, one-line errors.

Commands live in ``curate.commands.*``, one module (with its own Typer ``app``) per group, and stay thin:
build a config, call the library. A stage's options are generated from its ``Config``
(:mod:`curate.commands.options`). Heavy libraries load only when a command runs, so ``--help`` is quick. Any
:class:`~curate.errors.CurateError`, usage mistake or environment error (disk full, permissions) becomes
one line on stderr and exit code 1. Every command that writes into the workdir holds its lock
(:mod:`curate.workdir_lock`) from the moment its options are parsed until it ends. SIGINT and SIGTERM stop
the run with one line saying how to resume, exit 130 / 143 (:mod:`curate.interrupts`).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from curate.commands import (
    candidates,
    collect,
    dedup,
    demo,
    evaluate,
    export,
    faces,
    rank,
    review,
    run,
    synth,
    train,
)
from curate.commands.common import GlobalOptions
from curate.envcheck import check_workdir, os_error_message
from curate.errors import CurateError
from curate.interrupts import GENERIC_STOP_LINE, RunInterrupted, install_handlers, received_stop
from curate.workdir_lock import hold_workdir

SCHEDULER_HELP = "dask scheduler address (tcp://HOST:PORT); default $CURATE_SCHEDULER, else a local cluster"
WORKERS_HELP = "local worker processes; 0 runs every stage in this process (small inputs do so anyway)"
READ_ONLY_COMMANDS = {"status", "synth"}  # commands that never write into the workdir
SELF_LOCKING_COMMANDS = {"demo"}  # they choose their workdir themselves and lock it
OUTPUT_ONLY_IF_PRESENT = {"train", "evaluate"}  # lock only a workdir that exists (they may write elsewhere)
_WORKDIR: dict[str, Path] = {}  # this invocation's --workdir, for environment error messages


class _OneLineErrors(TyperGroup):
    """Turns user errors into a single line and exit code 1 instead of a traceback or usage block."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        try:
            result = super().main(*args, standalone_mode=False, **kwargs)
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
        except RunInterrupted as stopped:
            typer.echo(str(stopped), err=True)
            sys.exit(stopped.exit_code)
        except OSError as error:
            message = os_error_message(error, _WORKDIR.get("workdir", Path(".")))
            if message is None:
                raise
            typer.echo(f"error: {message}", err=True)
            sys.exit(1)
        stopped = received_stop()
        if stopped is not None:  # typer caught the interrupt (outside a run guard) and returned 130
            typer.echo(GENERIC_STOP_LINE, err=True)
            sys.exit(stopped)
        return result


def _holds_workdir(name: str, command: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a command so that it runs holding its workdir's lock (after its options parsed)."""

    @functools.wraps(command)
    def locked(*args: Any, **kwargs: Any) -> Any:
        ctx = kwargs.get("ctx")
        workdir = ctx.obj.workdir if ctx is not None and ctx.obj is not None else None
        if workdir is None or (name in OUTPUT_ONLY_IF_PRESENT and not Path(workdir).is_dir()):
            return command(*args, **kwargs)
        access = check_workdir(workdir)  # before any work starts: a file, no permission, disk full
        with hold_workdir(workdir) if access.writable else contextlib.nullcontext():
            return command(*args, **kwargs)

    return locked


app = typer.Typer(
    cls=_OneLineErrors,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: no markup to swallow "[train]", no rich import for --help
    help="Build clean face-recognition training sets and train embedding models on them.",
)


@app.callback()
def main_options(
    ctx: typer.Context,
    workdir: Annotated[Path, typer.Option("--workdir", "-w", help="where manifests go")] = Path(
        "runs/default"
    ),
    scheduler: Annotated[str | None, typer.Option(help=SCHEDULER_HELP)] = None,
    workers: Annotated[int, typer.Option(help=WORKERS_HELP)] = 2,
    shards: Annotated[int | None, typer.Option(help="shards for a new workdir (default 8)")] = None,
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING or ERROR")] = "WARNING",
) -> None:
    """Global options, given before the command."""
    level = logging.getLevelName(log_level.upper())
    if not isinstance(level, int):
        raise typer.BadParameter(
            f"'{log_level}': use DEBUG, INFO, WARNING or ERROR", param_hint="--log-level"
        )
    if workers < 0:
        raise typer.BadParameter(
            f"'{workers}': give 0 (in-process) or more worker processes", param_hint="--workers"
        )
    if shards is not None and shards < 1:
        raise typer.BadParameter(f"'{shards}': give 1 or more shards", param_hint="--shards")
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:  # shard logs raise curate's level, not the console's
        handler.setLevel(level)
    _WORKDIR["workdir"] = workdir
    ctx.obj = GlobalOptions(workdir=workdir, scheduler=scheduler, workers=workers, shards=shards)


COMMANDS = (run, collect, candidates, faces, dedup, rank, train, evaluate, export, synth, demo)
for module in COMMANDS:
    for info in module.app.registered_commands:
        if info.name not in READ_ONLY_COMMANDS | SELF_LOCKING_COMMANDS and info.callback is not None:
            info.callback = _holds_workdir(info.name or "", info.callback)
    app.add_typer(module.app)
app.add_typer(review.app, name="review")


def main() -> None:
    """Console-script entry point."""
    install_handlers()
    app(prog_name="curate")
