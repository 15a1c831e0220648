"""``curate collect``, ``curate download`` and ``curate exact``: the source stages and the exact-copy check.

Options are generated from the stages' configs (:mod:`curate.commands.options`).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from curate.commands.common import InputOption, OverwriteOption, console, global_options, run_stage_command
from curate.commands.options import config_options, flag
from curate.errors import ConfigError
from curate.stages.download_config import DownloadConfig
from curate.stages.exact_config import ExactConfig
from curate.stages.ingest_config import IngestConfig

if TYPE_CHECKING:
    from curate.executor import StageResult

app = typer.Typer()


def collected_merges(workdir: Path, result: StageResult) -> list[dict]:
    """The ``name_merges`` recorded in the stats of every shard of a collect run."""
    from curate.executor import stats_path

    merges: list[dict] = []
    for shard in range(result.shards_total):
        path = stats_path(workdir, result.stage, shard)
        if path.is_file():
            merges.extend(json.loads(path.read_text()).get("name_merges", []))
    return sorted(merges, key=lambda merge: merge["identity_id"])


def _run_source(ctx: typer.Context, key: str, settings: dict[str, Any], overwrite: bool) -> None:
    """Run a source stage, then print how identity names were merged."""
    from curate.names import merge_summary

    result = run_stage_command(ctx, key, settings, overwrite)
    sensitive = bool(settings.get("case_sensitive_names"))
    summary = merge_summary(collected_merges(global_options(ctx).workdir, result), sensitive)
    if summary:
        console.print(summary, soft_wrap=True, markup=False, highlight=False)


@app.command("collect")
@config_options(IngestConfig, DownloadConfig)
def collect(ctx: typer.Context, settings: dict[str, Any], overwrite: OverwriteOption = False) -> None:
    """Collect images: a folder tree DIR/<identity>/<images>, or a URL list (CSV/JSONL) to download.

    A folder runs the 'collect' stage, a URL list the 'download' stage (see 'curate download').
    """
    source = Path(settings["source"])
    if not source.exists():
        raise ConfigError(
            "source", str(source), "does not exist; give a folder DIR/<identity>/<images> or a URL list"
        )
    key, cls = ("collect", IngestConfig) if source.is_dir() else ("download", DownloadConfig)
    names = {field.name for field in dataclasses.fields(cls)}
    stray = [name for name in settings if name not in names]
    if stray:
        kind = "URL lists" if key == "collect" else "folders"
        raise ConfigError(flag(stray[0]), settings[stray[0]], f"applies to {kind} only; {source} is not one")
    _run_source(ctx, key, settings, overwrite)


@app.command("download")
@config_options(DownloadConfig)
def download(ctx: typer.Context, settings: dict[str, Any], overwrite: OverwriteOption = False) -> None:
    """Download the images a URL list (CSV/JSONL) names into the content store (the 'download' stage)."""
    _run_source(ctx, "download", settings, overwrite)


@app.command("exact")
@config_options(ExactConfig)
def exact(
    ctx: typer.Context,
    settings: dict[str, Any],
    input_stage: InputOption = None,
    overwrite: OverwriteOption = False,
) -> None:
    """Flag one photo (same sha256) filed under two identities as identity_conflict."""
    run_stage_command(ctx, "exact", settings, overwrite, input_stage=input_stage)
