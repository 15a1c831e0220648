"""``curate review export|serve|import|decisions|apply``: manual review of the curated images."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from curate.commands.common import console, global_options, run_with_progress
from curate.commands.options import config_options
from curate.stages.review_config import ReviewConfig

InputOption = Annotated[
    str | None, typer.Option("--input", help="stage to review (default: the newer of dedup and rank)")
]
BlockOption = Annotated[int, typer.Option(help="images per block (VGG-Face: 200)")]
BudgetOption = Annotated[
    int | None, typer.Option(help="review only the N most uncertain images, most uncertain first")
]


app = typer.Typer(no_args_is_help=True, help="Manual review: export blocks, serve a page, apply.")


@app.command("export")
def export(
    ctx: typer.Context,
    out: Annotated[Path | None, typer.Option(help="folder (default <workdir>/_review/export)")] = None,
    block: BlockOption = 200,
    budget: BudgetOption = None,
    input_stage: InputOption = None,
    sheets: Annotated[bool, typer.Option(help="write a PNG contact sheet per block")] = True,
) -> None:
    """Write review blocks (Parquet + CSV), duplicate pairs, flagged identities and contact sheets."""
    from curate.review.export import export_review

    r = export_review(global_options(ctx).workdir, out, block, budget, input_stage, sheets)
    console.print(
        f"review export from '{r.input_stage}': {r.items} images of {r.identities} identities, "
        f"{r.pairs} duplicate pairs, {r.sheets} contact sheets in {r.out} ({r.seconds:.1f}s)"
    )


@app.command("serve")
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="address to bind (loopback by default)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port (0 = any free port)")] = 0,
    token: Annotated[str | None, typer.Option(help="access token (default: a random one)")] = None,
    export_dir: Annotated[Path | None, typer.Option("--export", help="review export folder")] = None,
    block: BlockOption = 200,
    budget: BudgetOption = None,
    input_stage: InputOption = None,
) -> None:
    """Serve the review page; prints its URL with the access token.

    Uses the review export (made first, without contact sheets, when there is none or its input
    stage was re-run since; --block, --budget and --input apply then).
    """
    from curate.review.launch import serve as run_server

    def announce(line: str) -> None:
        typer.echo(line)

    workdir = global_options(ctx).workdir
    run_server(workdir, host, port, token, export_dir, block, budget, input_stage, announce)


@app.command("import")
def import_(
    ctx: typer.Context,
    file: Annotated[
        Path, typer.Argument(help="CSV: image_id,decision,reviewer,time,note[,identity_id,target]")
    ],
) -> None:
    """Add decisions made elsewhere (another tool, a script) to the workdir's decision log."""
    from curate.review.apply import store_events
    from curate.review.decisions import read_numbered_csv

    events = read_numbered_csv(file)
    stored = store_events(global_options(ctx).workdir, events)
    console.print(f"imported {stored} decisions ({len(events) - stored} already stored)")


@app.command("decisions")
def decisions(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option(help="CSV file to write")],
    history: Annotated[bool, typer.Option(help="every event, undone and superseded ones too")] = False,
) -> None:
    """Write the decisions (each reviewer's latest per image, identity and pair) as CSV."""
    from curate.errors import CurateError
    from curate.review.decisions import write_csv
    from curate.review.source import store_path
    from curate.review.store import DecisionStore

    path = store_path(global_options(ctx).workdir)
    if not path.exists():
        raise CurateError(f"no review decisions at {path}; review with 'curate review serve' first")
    store = DecisionStore(path)
    try:
        count = write_csv(store, out, history)
    finally:
        store.close()
    console.print(f"wrote {count} decisions to {out}")


@app.command("apply")
@config_options(ReviewConfig, skip=("digest",))  # the digest is computed from the decision log
def apply(ctx: typer.Context, settings: dict[str, Any], input_stage: InputOption = None) -> None:
    """Write the 'review' stage: decisions applied to the manifest, conflicts and gone images listed."""
    from curate.review.apply import review_spec, summarize

    options = global_options(ctx)
    spec = review_spec(options.workdir, input_stage, settings.get("decisions", ""))
    result = run_with_progress(options, [spec], overwrite=True)[0]
    summary = summarize(options.workdir, result, spec.input_stage or "")
    console.print(f"decisions by outcome: {summary.outcomes}")
    console.print(f"rows changed by review: {summary.changed or 'none'}")
    for row in summary.conflicts.to_dict("records"):
        console.print(
            f"conflict on {row['kind']} {row['key']}: {row['votes']} -> {row['decision']} ({row['how']})"
        )
    for row in summary.gone.to_dict("records"):
        console.print(
            f"gone: {row['decision']} by {row['reviewer']} on {row['image_id'] or row['identity_id']}"
        )
