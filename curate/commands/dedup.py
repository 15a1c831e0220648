"""``curate describe`` and ``curate dedup``: descriptors per image, then near-duplicate removal.

Options are generated from the stages' configs (:mod:`curate.commands.options`).
"""

from __future__ import annotations

from typing import Any

import typer

from curate.commands.common import InputOption, OverwriteOption, run_stage_command
from curate.commands.options import config_options
from curate.stages.dedup_config import DedupConfig
from curate.stages.describe_config import DescribeConfig

app = typer.Typer()


@app.command("describe")
@config_options(DescribeConfig)
def describe(
    ctx: typer.Context,
    settings: dict[str, Any],
    input_stage: InputOption = None,
    overwrite: OverwriteOption = False,
) -> None:
    """Perceptual hashes and embeddings for every ok image (the face crop when there is one)."""
    run_stage_command(ctx, "describe", settings, overwrite, input_stage=input_stage)


@app.command("dedup")
@config_options(DedupConfig)
def dedup(
    ctx: typer.Context,
    settings: dict[str, Any],
    input_stage: InputOption = None,
    overwrite: OverwriteOption = False,
) -> None:
    """Remove near-duplicates within identities; flag the same photo under two identities."""
    run_stage_command(ctx, "dedup", settings, overwrite, input_stage=input_stage)
