"""``curate candidates``: build the candidate identity list that the ``select`` stage applies."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer()


@app.command("candidates")
def candidates(
    ctx: typer.Context,
    sources: Annotated[
        list[Path],
        typer.Argument(exists=True, dir_okay=False, help="name lists: TXT, CSV, JSONL, VGGFace2 meta"),
    ],
    exclude: Annotated[
        list[Path] | None,
        typer.Option(exists=True, dir_okay=False, help="benchmark name list to exclude (repeatable)"),
    ] = None,
    balance: Annotated[
        str | None, typer.Option(help="attribute to balance, e.g. gender: equal counts per value")
    ] = None,
    max_identities: Annotated[
        int | None, typer.Option("--max", min=1, help="keep at most N identities, most popular first")
    ] = None,
    max_typo_edits: Annotated[
        int, typer.Option(min=0, max=2, help="edits that still flag a likely typo (0: off)")
    ] = 2,
) -> None:
    """Merge name sources into one candidate list; exclude benchmark overlaps; balance and cap it."""
    from curate.candidates import REVIEW_FILE, CandidatesConfig, build_candidates, summarize, write_candidates

    config = CandidatesConfig(
        exclude=list(exclude or []),
        balance=balance,
        max_identities=max_identities,
        max_typo_edits=max_typo_edits,
    )
    table = build_candidates(list(sources), config)
    path = write_candidates(table, Path(ctx.obj.workdir))
    summary = summarize(table)
    typer.echo(f"candidates: {summary.kept} kept of {summary.total} identities -> {path}")
    for stem in sorted({*summary.per_benchmark, *(Path(path).stem for path in config.exclude)}):
        typer.echo(f"  excluded, overlap with {stem}: {summary.per_benchmark.get(stem, 0)}")
    for kind in ("balance", "max"):
        if summary.per_exclusion.get(kind):
            typer.echo(f"  excluded by {kind}: {summary.per_exclusion[kind]}")
    typer.echo(f"  likely typos for review: {summary.likely_typos} (see {path.with_name(REVIEW_FILE)})")
    if summary.benchmark_near_matches:
        typer.echo(
            f"  kept identities a typo away from a benchmark name: {summary.benchmark_near_matches} "
            f"(column benchmark_near_match)"
        )
