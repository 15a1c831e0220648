"""Declared pipelines: an ordered list of stages with their settings, read from TOML and run with resume.

A pipeline file looks like::

    shards = 8                       # optional: shards per stage (fixed per workdir)
    stages = ["collect", "faces"]    # order to run
    [collect]
    source = "data/images"
    [faces]
    detector = "hog"

Each stage reads the manifest of the stage before it (``input = "<stage>"`` in its table overrides that);
a first stage that is not a source reads what a stage command would (:func:`curate.stageplan.default_input`).
Relative paths in a pipeline file are relative to the file's folder.
"""

from __future__ import annotations

import json
import logging
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curate import stageplan
from curate.config import build_config
from curate.envcheck import check_workdir
from curate.errors import ConfigError, CurateError
from curate.executor import Executor, ExecutorOptions, StageResult
from curate.run_guard import confirm_done, guard
from curate.stage import Stage
from curate.stages import STAGES, stage_class
from curate.storage import WORKDIR_FILE, atomic_write_text
from curate.taskprogress import ProgressCallback

logger = logging.getLogger(__name__)

DEFAULT_SHARDS = 8


@dataclass
class StageSpec:
    """One declared stage: its registry key, settings and the stage it reads."""

    key: str
    settings: dict[str, Any] = field(default_factory=dict)
    input_stage: str | None = None


@dataclass
class PipelineSpec:
    """An ordered list of stages plus the shard count."""

    stages: list[StageSpec]
    shards: int | None = None


def build_stage(spec: StageSpec) -> Stage:
    """Instantiate a stage from its spec, validating its settings into the stage's Config."""
    cls = stage_class(spec.key)
    config = build_config(cls.Config, spec.settings, where=f"{spec.key}.")
    stage = cls(config)
    stage.given_settings = frozenset(spec.settings)
    return stage


def _resolve_paths(settings: dict[str, Any], base: Path, cls: type[Stage]) -> dict[str, Any]:
    """Make relative path settings relative to the pipeline file's folder."""
    import dataclasses
    import typing

    hints = typing.get_type_hints(cls.Config)
    resolved = dict(settings)
    for f in dataclasses.fields(cls.Config):
        value = resolved.get(f.name)
        if isinstance(value, str) and "Path" in str(hints[f.name]) and not Path(value).is_absolute():
            resolved[f.name] = str((base / value).resolve())
    return resolved


def _stage_table(data: Mapping[str, Any], key: str) -> dict[str, Any]:
    """A stage's settings table (empty when the file has none); anything else is one line."""
    table = data.get(key, {})
    if not isinstance(table, dict):
        raise ConfigError(key, table, f"give a table of settings: [{key}] followed by key = value lines")
    return dict(table)


def parse_pipeline(data: Mapping[str, Any], base: Path = Path(".")) -> PipelineSpec:
    """Validate a pipeline mapping (already parsed TOML) into a PipelineSpec."""
    allowed = {"stages", "shards", "name", "description"} | set(STAGES)
    for key in data:
        if key not in allowed:
            raise ConfigError(
                key,
                data[key],
                f"unknown pipeline key; use 'stages', 'shards' or a stage table ({', '.join(STAGES)})",
            )
    order = data.get("stages")
    if not isinstance(order, list) or not order or not all(isinstance(s, str) for s in order):
        raise ConfigError("stages", order, 'list the stages to run, e.g. stages = ["collect", "faces"]')
    specs: list[StageSpec] = []
    previous: str | None = None
    for position, key in enumerate(order):
        cls = stage_class(key)
        if key in order[:position]:
            raise ConfigError("stages", order, f"stage '{key}' is listed twice; list each stage once")
        table = _stage_table(data, key)
        input_stage = table.pop("input", None)
        if cls.default_input is None and (input_stage is not None or previous is not None):
            raise ConfigError(
                "stages", order, f"'{key}' reads its source, not a stage: list it first, with no 'input'"
            )
        if input_stage is None and previous is not None:
            input_stage = previous
        specs.append(StageSpec(key, _resolve_paths(table, base, cls), input_stage))
        build_stage(specs[-1])  # validate every stage before anything runs
        previous = cls.name
    for key in data:
        if key in STAGES and key not in order:
            raise ConfigError(
                key,
                "(table)",
                f"stage '{key}' has settings but is not in 'stages'; add it or remove the table",
            )
    shards = data.get("shards")
    if shards is not None and (not isinstance(shards, int) or shards < 1):
        raise ConfigError("shards", shards, "give a whole number of shards, 1 or more")
    return PipelineSpec(specs, shards)


def load_pipeline(path: Path) -> PipelineSpec:
    """Read and validate a pipeline TOML file."""
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise CurateError(
            f"pipeline file {path} not found; give the path of a .toml file (see pipelines/)"
        ) from None
    except tomllib.TOMLDecodeError as error:
        raise CurateError(f"pipeline file {path} is not valid TOML ({error}); fix the syntax") from None
    return parse_pipeline(data, base=Path(path).resolve().parent)


def resolve_shards(workdir: Path, requested: int | None) -> int:
    """The shard count of a workdir: fixed by its first run, so later stages line up with earlier ones."""
    path = Path(workdir) / WORKDIR_FILE
    if path.exists():
        stored = int(json.loads(path.read_text())["n_shards"])
        if requested is not None and requested != stored:
            raise ConfigError(
                "shards",
                requested,
                f"{workdir} was started with {stored} shards; use {stored} or a new --workdir",
            )
        return stored
    shards = requested or DEFAULT_SHARDS
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps({"n_shards": shards}))
    return shards


def select_range(spec: PipelineSpec, start: str | None, stop: str | None) -> list[StageSpec]:
    """The stages from ``start`` to ``stop`` inclusive (by registry key or output name)."""
    names = [s.key for s in spec.stages]

    def index(name: str, option: str) -> int:
        for i, s in enumerate(spec.stages):
            if name in (s.key, stage_class(s.key).name):
                return i
        raise ConfigError(option, name, f"not a stage of this pipeline; choose one of: {', '.join(names)}")

    first = index(start, "--from") if start else 0
    last = index(stop, "--to") if stop else len(names) - 1
    if first > last:
        raise ConfigError("--from", start, f"comes after --to {stop}; swap them")
    return spec.stages[first : last + 1]


def run_specs(
    specs: list[StageSpec],
    workdir: Path,
    options: ExecutorOptions,
    shards: int | None = None,
    overwrite: bool = False,
    progress_factory: Callable[[str], ProgressCallback] | None = None,
) -> list[StageResult]:
    """Run stages in order on one executor; each resumes from its markers unless ``overwrite``.

    The workdir is checked before anything starts and locked for the run (:mod:`curate.run_guard`).
    """
    stages = [(spec, build_stage(spec)) for spec in specs]
    earlier: dict[str, Stage] = {}
    for _, stage in stages:  # what a stage reads from one listed before it, checked before anything runs
        stage.check_plan(earlier)
        earlier[stage.name] = stage
    access = check_workdir(workdir)
    if not access.writable:  # a finished pipeline can still be confirmed from a read-only place
        stored = resolve_shards(workdir, shards) if (Path(workdir) / WORKDIR_FILE).exists() else None
        return confirm_done(access, Path(workdir), stored, overwrite, [stage for _, stage in stages])
    results = []
    with guard(workdir) as state, Executor(options) as executor:
        n_shards = state.n_shards = resolve_shards(workdir, shards)
        for spec, stage in stages:
            state.stage = stage.name
            input_stage = spec.input_stage
            if input_stage is None:
                input_stage = stageplan.default_input(Path(workdir), stage)
            progress = progress_factory(stage.name) if progress_factory else None
            result = executor.run_stage(stage, workdir, n_shards, input_stage, overwrite, progress, spec.key)
            logger.info("stage %s: %s", stage.name, result.status_counts)
            results.append(result)
    return results
