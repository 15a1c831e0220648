"""``curate describe`` and ``curate dedup``: descriptors per image, then near-duplicate removal."""

from __future__ import annotations

from typing import Annotated

import typer

from curate.commands.common import INPUT_HELP, run_stage_command


def register(app: typer.Typer) -> None:
    """Add the ``describe`` and ``dedup`` commands to ``app``."""

    @app.command("describe")
    def describe(
        ctx: typer.Context,
        hashes: Annotated[
            str | None, typer.Option(help="comma-separated perceptual hashes: phash, dhash, ahash, whash")
        ] = None,
        embedders: Annotated[
            str | None,
            typer.Option(help="comma-separated embedders: dlib, handcrafted, or an exported model folder"),
        ] = None,
        batch_size: Annotated[int | None, typer.Option(help="images per embedder call")] = None,
        dtype: Annotated[str | None, typer.Option(help="vector storage type: float32 or float16")] = None,
        trim_borders: Annotated[
            bool | None,
            typer.Option("--trim-borders/--no-trim-borders", help="remove a flat frame before describing"),
        ] = None,
        max_side: Annotated[int | None, typer.Option(help="shrink larger images first (0 = never)")] = None,
        input_stage: Annotated[str | None, typer.Option("--input", help=INPUT_HELP)] = None,
        overwrite: Annotated[bool, typer.Option(help="redo finished shards")] = False,
    ) -> None:
        """Perceptual hashes and embeddings for every ok image (the face crop when there is one)."""
        settings = {
            "hashes": hashes,
            "embedders": embedders,
            "batch_size": batch_size,
            "dtype": dtype,
            "trim_borders": trim_borders,
            "max_side": max_side,
        }
        run_stage_command(ctx, "describe", settings, overwrite, input_stage=input_stage)

    @app.command("dedup")
    def dedup(
        ctx: typer.Context,
        hashes: Annotated[
            str | None, typer.Option(help="comma-separated hashes to search (phash...)")
        ] = None,
        embedding: Annotated[
            str | None, typer.Option(help="vectors to search (an embedder name; '' for none)")
        ] = None,
        max_hamming_bits: Annotated[int | None, typer.Option(help="duplicate at or below (bits)")] = None,
        review_max_hamming_bits: Annotated[int | None, typer.Option(help="review at or below (bits)")] = None,
        min_cosine: Annotated[float | None, typer.Option(help="duplicate at or above (cosine)")] = None,
        review_min_cosine: Annotated[float | None, typer.Option(help="review at or above (cosine)")] = None,
        across_identities: Annotated[
            bool | None,
            typer.Option(
                "--across-identities/--within-identities-only",
                help="also flag the same photo under two identities (identity_conflict)",
            ),
        ] = None,
        confirm_conflicts_with: Annotated[
            str | None, typer.Option(help="face embedder confirming identity_conflict pairs ('' = off)")
        ] = None,
        index: Annotated[str | None, typer.Option(help="flat (exact), ivf (approximate) or auto")] = None,
        descriptor_stage: Annotated[
            str | None, typer.Option(help="stage that wrote the descriptors (default: describe)")
        ] = None,
        input_stage: Annotated[str | None, typer.Option("--input", help=INPUT_HELP)] = None,
        overwrite: Annotated[bool, typer.Option(help="redo the step")] = False,
    ) -> None:
        """Remove near-duplicates within identities; flag the same photo under two identities."""
        settings = {
            "hashes": hashes,
            "embedding": embedding,
            "max_hamming_bits": max_hamming_bits,
            "review_max_hamming_bits": review_max_hamming_bits,
            "min_cosine": min_cosine,
            "review_min_cosine": review_min_cosine,
            "across_identities": across_identities,
            "confirm_conflicts_with": confirm_conflicts_with,
            "index": index,
            "descriptor_stage": descriptor_stage,
        }
        run_stage_command(ctx, "dedup", settings, overwrite, input_stage=input_stage)
