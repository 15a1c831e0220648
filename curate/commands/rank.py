"""``curate rank``: score and rank each identity's images, keep the top K, flag doubtful identities."""

from __future__ import annotations

from typing import Annotated

import typer

from curate.commands.common import INPUT_HELP, run_stage_command
from curate.stages.rank import ScorerName


def register(app: typer.Typer) -> None:
    """Add the ``rank`` command to ``app``."""

    @app.command("rank")
    def rank(
        ctx: typer.Context,
        embedder: Annotated[
            str | None, typer.Option(help="name of the descriptor vectors to rank on (default: dlib)")
        ] = None,
        descriptor_stage: Annotated[
            str | None, typer.Option(help="stage that stored the vectors (default: describe)")
        ] = None,
        scorer: Annotated[
            ScorerName | None, typer.Option(help="classifier (VGG-Face), centre or cluster (CAST-style)")
        ] = None,
        positives: Annotated[
            int | None, typer.Option(help="round-1 positives: top search results or nearest the centre")
        ] = None,
        negatives_per_identity: Annotated[
            int | None, typer.Option(help="other identities' images sampled as negatives")
        ] = None,
        keep: Annotated[int | None, typer.Option(help="keep at most this many images per identity")] = None,
        min_score: Annotated[
            float | None, typer.Option(help="drop images scoring below this (0-1; 0.5 = as likely as not)")
        ] = None,
        rounds: Annotated[int | None, typer.Option(help="self-training rounds (1 = no retraining)")] = None,
        overlap_min_cosine: Annotated[
            float | None, typer.Option(help="identity centres more similar than this may be one person")
        ] = None,
        min_purity: Annotated[
            float | None, typer.Option(help="identities estimated less pure than this go to review")
        ] = None,
        seed: Annotated[int | None, typer.Option(help="seed for negative sampling and folds")] = None,
        input_stage: Annotated[str | None, typer.Option("--input", help=INPUT_HELP)] = None,
        overwrite: Annotated[bool, typer.Option(help="redo the stage even if finished")] = False,
    ) -> None:
        """Rank every identity's images with a classifier trained on its top results; keep the best."""
        settings = {
            "embedder": embedder,
            "descriptor_stage": descriptor_stage,
            "scorer": scorer,
            "positives": positives,
            "negatives_per_identity": negatives_per_identity,
            "keep": keep,
            "min_score": min_score,
            "rounds": rounds,
            "overlap_min_cosine": overlap_min_cosine,
            "min_purity": min_purity,
            "seed": seed,
        }
        run_stage_command(ctx, "rank", settings, overwrite, input_stage=input_stage)
