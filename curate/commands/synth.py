"""``curate synth OUT``: write the synthetic web collection (the embedded default data)."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from curate.commands.options import config_options
from curate.config import build_config
from curate.progress import Bars
from curate.synth_config import SynthConfig

logger = logging.getLogger(__name__)

app = typer.Typer()


@app.command("synth")
@config_options(SynthConfig)
def synth(
    settings: dict[str, Any],
    out: Annotated[
        Path, typer.Argument(help="Folder to write images/, heldout/, truth.parquet into.", metavar="OUT")
    ],
    overwrite: Annotated[bool, typer.Option(help="Replace a collection already in OUT.")] = False,
) -> None:
    """Draw a synthetic web collection of faces with known ground truth into OUT."""
    config = build_config(SynthConfig, settings)
    from curate.synth import planned_files, synthesize  # numpy, pandas: only when drawing

    started = time.perf_counter()
    with Bars(transient=True) as bars:
        total = planned_files(config)
        truth = synthesize(
            config, out, overwrite=overwrite, progress=lambda n: bars.advance("drawing", n, total)
        )
    counts = truth["kind"].value_counts()
    summary = ", ".join(f"{kind} {counts[kind]}" for kind in sorted(counts.index))
    elapsed = time.perf_counter() - started
    typer.echo(f"wrote {len(truth)} files to {out / 'images'} ({summary}) in {elapsed:.1f} s")
    typer.echo(f"ground truth: {out / 'truth.parquet'}")
    if config.heldout_identities:
        typer.echo(f"held-out set: {out / 'heldout'} with pairs {out / 'heldout_pairs.txt'}")
