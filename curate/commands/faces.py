"""``curate faces`` and ``curate select``: detect, align and crop faces; apply the candidate list.

Options are generated from the stages' configs (:mod:`curate.commands.options`).
"""

from __future__ import annotations

from typing import Any

import typer

from curate.commands.common import InputOption, OverwriteOption, run_stage_command
from curate.commands.options import config_options
from curate.stages.faces_config import FacesConfig
from curate.stages.select_config import SelectConfig

app = typer.Typer()


@app.command("faces")
@config_options(FacesConfig)
def faces(
    ctx: typer.Context,
    settings: dict[str, Any],
    input_stage: InputOption = None,
    overwrite: OverwriteOption = False,
) -> None:
    """Detect, align (5 points) and crop the subject's face in every ok image."""
    run_stage_command(ctx, "faces", settings, overwrite, input_stage=input_stage)


@app.command("select")
@config_options(SelectConfig)
def select(
    ctx: typer.Context,
    settings: dict[str, Any],
    input_stage: InputOption = None,
    overwrite: OverwriteOption = False,
) -> None:
    """Exclude images of identities the candidate list leaves out, then identities with too few images."""
    run_stage_command(ctx, "select", settings, overwrite, input_stage=input_stage)
