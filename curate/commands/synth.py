"""``curate synth OUT``: write the synthetic web collection (the embedded default data)."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from curate.synth_config import SynthConfig

logger = logging.getLogger(__name__)

_DEFAULTS = SynthConfig()

app = typer.Typer()


@app.command("synth")
def synth(
    out: Annotated[Path, typer.Argument(help="Folder to write images/, heldout/, truth.parquet into.")],
    identities: Annotated[
        int, typer.Option(help="Identity folders in the collection.")
    ] = _DEFAULTS.identities,
    images_per_identity: Annotated[
        int, typer.Option(help="Files per identity folder, noise included.")
    ] = _DEFAULTS.images_per_identity,
    intruder_rate: Annotated[
        float,
        typer.Option(help="Fraction of files showing someone else (a person not in the collection)."),
    ] = _DEFAULTS.intruder_rate,
    duplicate_rate: Annotated[
        float, typer.Option(help="Fraction of files that are near-duplicates of another file.")
    ] = _DEFAULTS.duplicate_rate,
    corrupt_rate: Annotated[
        float, typer.Option(help="Fraction of undecodable files.")
    ] = _DEFAULTS.corrupt_rate,
    non_face_rate: Annotated[
        float, typer.Option(help="Fraction of decodable pictures with no face.")
    ] = _DEFAULTS.non_face_rate,
    intruder_identities: Annotated[
        int, typer.Option(help="Size of the pool of people intruder faces come from.")
    ] = _DEFAULTS.intruder_identities,
    cross_duplicate_share: Annotated[
        float, typer.Option(help="Share of near-duplicates copying a file from another folder.")
    ] = _DEFAULTS.cross_duplicate_share,
    image_size: Annotated[int, typer.Option(help="Image width and height in pixels.")] = _DEFAULTS.image_size,
    nuisance: Annotated[
        float, typer.Option(help="Strength of pose, lighting, expression and occlusion changes (0..2).")
    ] = _DEFAULTS.nuisance,
    seed: Annotated[
        int, typer.Option(help="Random seed; the same seed gives identical files.")
    ] = _DEFAULTS.seed,
    heldout_identities: Annotated[
        int, typer.Option(help="Clean extra identities for verification (0 for none).")
    ] = _DEFAULTS.heldout_identities,
    heldout_images: Annotated[
        int, typer.Option(help="Images per held-out identity.")
    ] = _DEFAULTS.heldout_images,
    pair_folds: Annotated[int, typer.Option(help="Folds in heldout_pairs.txt.")] = _DEFAULTS.pair_folds,
    pairs_per_fold: Annotated[
        int, typer.Option(help="Genuine (and as many impostor) pairs per fold.")
    ] = _DEFAULTS.pairs_per_fold,
    overwrite: Annotated[bool, typer.Option(help="Replace a collection already in OUT.")] = False,
) -> None:
    """Draw a synthetic web collection of faces with known ground truth into OUT."""
    config = SynthConfig(
        identities=identities,
        images_per_identity=images_per_identity,
        intruder_rate=intruder_rate,
        duplicate_rate=duplicate_rate,
        corrupt_rate=corrupt_rate,
        non_face_rate=non_face_rate,
        intruder_identities=intruder_identities,
        cross_duplicate_share=cross_duplicate_share,
        image_size=image_size,
        nuisance=nuisance,
        seed=seed,
        heldout_identities=heldout_identities,
        heldout_images=heldout_images,
        pair_folds=pair_folds,
        pairs_per_fold=pairs_per_fold,
    )
    config.validate()
    from curate.synth import planned_files, synthesize  # numpy, pandas: only when drawing

    console = Console(stderr=True)
    started = time.perf_counter()
    columns = (TextColumn("drawing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("synth", total=planned_files(config))
        truth = synthesize(config, out, overwrite=overwrite, progress=lambda n: progress.advance(task, n))
    counts = truth["kind"].value_counts()
    summary = ", ".join(f"{kind} {counts[kind]}" for kind in sorted(counts.index))
    elapsed = time.perf_counter() - started
    typer.echo(f"wrote {len(truth)} files to {out / 'images'} ({summary}) in {elapsed:.1f} s")
    typer.echo(f"ground truth: {out / 'truth.parquet'}")
    if config.heldout_identities:
        typer.echo(f"held-out set: {out / 'heldout'} with pairs {out / 'heldout_pairs.txt'}")
