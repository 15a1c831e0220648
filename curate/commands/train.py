"""``curate train``: an embedding network on a curated manifest or a folder tree.

Options are generated from :class:`~curate.train.config.TrainConfig` (:mod:`curate.commands.options`);
``--config`` reads the same keys from a TOML file's ``[train]`` table, and options given win.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from curate.commands.options import config_options
from curate.config import build_config
from curate.errors import ConfigError
from curate.train.config import TrainConfig

console = Console(stderr=True)
app = typer.Typer()

CONFIG_HELP = "TOML file with a [train] table (or its keys at the top level); options given here win"


def toml_settings(path: Path | None) -> dict[str, Any]:
    """The ``[train]`` table of a TOML file (or its top level when it has no such table)."""
    if path is None:
        return {}
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise ConfigError("config", str(path), f"fix the TOML syntax ({error})") from error
    return dict(data.get("train", data))


def train_settings(workdir: Path, given: dict[str, Any], config_file: Path | None) -> dict[str, Any]:
    """The TOML file's settings, then the options given; the manifest of ``workdir`` unless ``images``."""
    settings = {**toml_settings(config_file), **given}
    if settings.get("images") is None:
        from curate.review.source import training_stage  # reads the workdir: pandas

        settings["workdir"] = workdir
        if settings.get("manifest_stage") is None:
            settings["manifest_stage"] = training_stage(workdir)  # 'review' once applied
    settings.setdefault("out", workdir / "train")
    return settings


@app.command("train")
@config_options(TrainConfig, skip=("workdir",))
def train_command(
    ctx: typer.Context,
    settings: dict[str, Any],
    config: Annotated[
        Path | None, typer.Option("--config", exists=True, dir_okay=False, help=CONFIG_HELP)
    ] = None,
) -> None:
    """Train an embedding network and export it to <out>/model (loadable by every embedder user).

    It reads the manifest in --workdir (the 'review' stage once applied, else 'dedup'), or --images.
    """
    resolved = build_config(TrainConfig, train_settings(ctx.obj.workdir, settings, config))
    from curate.train.loop import train  # torch loads only when training starts

    result = train(resolved)
    console.print(f"trained {result.epochs_done} epochs; model: {result.model_dir}; metrics: {result.out}")
