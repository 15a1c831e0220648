"""``curate rank``: score and rank each identity's images, keep the top K, flag doubtful identities.

Options are generated from the stage's config (:mod:`curate.commands.options`).
"""

from __future__ import annotations

from typing import Any

import typer

from curate.commands.common import InputOption, OverwriteOption, run_stage_command
from curate.commands.options import config_options
from curate.stages.rank_config import RankConfig

app = typer.Typer()


@app.command("rank")
@config_options(RankConfig)
def rank(
    ctx: typer.Context,
    settings: dict[str, Any],
    input_stage: InputOption = None,
    overwrite: OverwriteOption = False,
) -> None:
    """Rank every identity's images with a classifier trained on its top results; keep the best."""
    run_stage_command(ctx, "rank", settings, overwrite, input_stage=input_stage)
