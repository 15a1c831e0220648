"""Before and after a stage runs: which input it reads, which shards to (re)do, and the markers it leaves.

:func:`default_input` chains stages the same way by hand as in a pipeline: a stage reads the last stage of
:data:`~curate.lineage.CANONICAL_ORDER` before it that was run in the workdir. :func:`plan_stage` saves the
config, refuses inputs that are unfinished, damaged or stale or that lack what the stage needs (its
:meth:`~curate.stage.Stage.check_input` preflight), and picks the shards to run: those without a
verified marker, and those made from inputs that changed since (make-like). :class:`StagePlan` then writes
each shard's marker as its task reports back, moves a global stage's shards into place only once all are
written, and writes ``_SUCCESS`` when every shard is verified and fresh.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from curate import __version__, lineage, manifest, storage
from curate.config import config_to_dict
from curate.errors import ConfigError, CurateError
from curate.lineage import DONE, Checks
from curate.settings import decisive_settings
from curate.stage import GlobalStage, Stage
from curate.stages import STAGES

if TYPE_CHECKING:
    import pyarrow as pa

logger = logging.getLogger(__name__)

CONFIG_FILE = storage.CONFIG_FILE


def _recorded_input(workdir: Path, stage: str) -> str | None:
    path = manifest.stage_dir(workdir, stage) / CONFIG_FILE
    try:
        return json.loads(path.read_text()).get("input_stage")
    except (OSError, ValueError, AttributeError):
        return None


def default_input(workdir: Path, stage: Stage) -> str | None:
    """The stage ``stage`` reads when none is named: the last canonical stage before it run in ``workdir``."""
    order = lineage.CANONICAL_ORDER
    if stage.name not in order:
        return stage.default_input
    for earlier in reversed(order[: order.index(stage.name)]):
        if (manifest.stage_dir(workdir, earlier) / CONFIG_FILE).exists():
            seen: set[str] = set()
            chain: str | None = earlier
            while chain is not None and chain not in seen:
                if chain == stage.name:
                    raise CurateError(
                        f"'{earlier}' in {workdir} was made from '{stage.name}' (an older stage order); "
                        f"run '{earlier}' again first, or name the input with --input"
                    )
                seen.add(chain)
                chain = _recorded_input(workdir, chain)
            return earlier
    return stage.default_input


def save_config(workdir: Path, stage: Stage, input_stage: str | None, n_shards: int, key: str | None) -> str:
    """Save the resolved config (refusing to mix shards of another config); return its fingerprint.

    A setting the user named (``stage.given_settings``, now or in the saved run) that changed is refused
    until ``--overwrite``, as is another shard count. A setting left at its default both times whose
    default moved with a new curate release is not refused: like a code ``version`` bump, it changes the
    fingerprint, so every finished shard is redone with the new default.
    """
    resolved = {"stage": key or stage.name, "n_shards": n_shards, "config": config_to_dict(stage.config)}
    path = manifest.stage_dir(workdir, stage.name) / CONFIG_FILE
    previous = json.loads(path.read_text()) if path.exists() else {}
    decisive = {**resolved, "config": decisive_settings(resolved["config"], type(stage.config))}
    given = sorted(stage.given_settings) if stage.given_settings is not None else None
    before = _decisive(previous, type(stage.config)) if previous else decisive
    changed = _changed_keys(before, decisive)
    if changed:
        # a run saved before curate recorded "given" is taken to have named what this run names
        named = _named(given, decisive) | _named(previous.get("given", []), before) | {"stage", "shards"}
        chosen = [key for key in changed if key in named]
        finished = any(lineage.check_shard(workdir, stage.name, s).state == DONE for s in range(n_shards))
        if chosen and finished:
            raise CurateError(
                f"stage '{stage.name}' in {workdir} was run with another config "
                f"({_shown(before, decisive, chosen)}); re-run with --overwrite to redo it with the new one"
            )
        if finished:
            logger.warning(
                "stage %s: defaults changed since it ran (%s); its shards are redone",
                stage.name,
                _shown(before, decisive, changed),
            )
        # the input rows of a source stage were planned from the old config: plan them again
        shutil.rmtree(storage.input_path(workdir, stage.name, 0).parent, ignore_errors=True)
    saved = {**resolved, "given": given, "input_stage": input_stage, "curate_version": __version__}
    if previous != saved:  # a finished run writes nothing
        storage.atomic_write_json(path, saved)
    return config_digest(decisive["stage"], decisive["config"], stage.code_version(stage.config))


def config_digest(key: str, decisive_config: dict[str, Any], version: int) -> str:
    """The fingerprint a stage's markers record: its key, output-deciding settings and code version."""
    return lineage.digest_of([key, decisive_config, version])


def expected_config(workdir: Path, stage: str) -> str | None:
    """The fingerprint this curate would record for ``stage``'s saved run, with the same settings named.

    Built from ``_config.json``: the settings the run named (all of them when that is not recorded), this
    release's defaults for the rest, and the stage's code version for them (``code_version``). Shards whose
    markers record another fingerprint were made by another release (or defaults):
    :func:`curate.lineage.stage_state` calls them stale. None when the saved run cannot be rebuilt (no file,
    an unknown stage or setting).
    """
    from curate.config import build_config
    from curate.stages import stage_class

    try:
        saved = json.loads((manifest.stage_dir(workdir, stage) / CONFIG_FILE).read_text())
        key, values = saved.get("stage") or stage, saved["config"]
        named = values if saved.get("given") is None else saved["given"]
        cls = stage_class(key)
        config = build_config(cls.Config, {name: values[name] for name in named if name in values})
    except (OSError, ValueError, KeyError, TypeError, ConfigError):  # ValueError covers bad JSON
        return None
    return config_digest(key, decisive_settings(config_to_dict(config), cls.Config), cls.code_version(config))


def _named(given: list[str] | None, decisive: dict[str, Any]) -> set[str]:
    """The settings a run named; every setting when it was built in code (``given`` unknown)."""
    return set(decisive.get("config") or {}) if given is None else set(given)


def _flat(config: dict[str, Any]) -> dict[str, Any]:
    """A decisive config's settings with its stage key and shard count, in one mapping."""
    return {**(config.get("config") or {}), "stage": config["stage"], "shards": config["n_shards"]}


def _changed_keys(before: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """The keys (settings, ``stage``, ``shards``) whose values differ between two decisive configs."""
    old, new = _flat(before), _flat(now)
    return [key for key in new if old.get(key) != new[key]] + [key for key in old if key not in new]


def _shown(before: dict[str, Any], now: dict[str, Any], keys: list[str], most: int = 3) -> str:
    """``key: old -> new`` for the first ``most`` of ``keys``."""
    old, new = _flat(before), _flat(now)
    shown = [f"{key}: {old.get(key, 'unset')} -> {new.get(key, 'unset')}" for key in keys[:most]]
    return "; ".join(shown) + (f"; {len(keys) - most} more" if len(keys) > most else "")


def _decisive(saved: dict[str, Any], cls: type) -> dict[str, Any]:
    """The stage key, shard count and output-deciding settings of a saved ``_config.json``."""
    config = saved.get("config")
    config = decisive_settings(config, cls) if isinstance(config, dict) else config
    return {"stage": saved.get("stage"), "n_shards": saved.get("n_shards"), "config": config}


def _sources(workdir: Path, stage: Stage, input_stage: str | None) -> list[str]:
    """Everything a stage reads: its input, stages it reads vectors from, other files (``file:`` keys)."""
    names = [input_stage] if input_stage else []
    names += [s for s in stage.reads() if s not in names]
    return names + [lineage.file_key(workdir, p) for p in stage.read_files(workdir)]


def _require_ready(checks: Checks, stage: str, source: str) -> None:
    """Refuse to read a source stage that is unfinished, damaged or stale (one line, naming the fix)."""
    state = lineage.stage_state(checks, source)
    where = checks.workdir
    if state.corrupt:
        first = min(state.corrupt)
        raise CurateError(
            f"stage '{stage}' reads '{source}', whose shard {manifest.shard_name(first)} is damaged "
            f"({state.corrupt[first]}); run '{source}' again to redo it"
        )
    if state.absent:
        raise CurateError(
            f"stage '{stage}' reads '{source}', which has {len(state.absent)} unfinished shard(s) "
            f"in {where}; run '{source}' first"
        )
    if state.label == "stale":
        raise CurateError(
            f"stage '{stage}' reads '{source}', which is stale in {where} ({state.why()}); "
            f"run '{source}' again first"
        )


@dataclass
class StagePlan:
    """The shards one stage run must do, and the lineage its markers record."""

    workdir: Path
    stage: str
    n_shards: int
    config: str
    scope: str  # "shard": each shard reads the same shard of its inputs; "all": every shard
    inputs: dict[int, dict[str, str]]
    pending: list[int]

    def record(self, stats: dict[str, Any]) -> None:
        """Write the marker of a shard whose task returned ``stats`` (with its ``output`` facts)."""
        shard = int(stats["shard"])
        facts = stats["output"]
        lineage.write_marker(
            self.workdir, self.stage, shard, facts, self.config, self.inputs[shard], self.scope
        )

    def record_all(self, results: list[dict[str, Any]]) -> None:
        """A global stage's shards, written aside, move into place; then their markers."""
        for stats in results:
            shard = int(stats["shard"])
            storage.atomic_move(
                lineage.staged_path(self.workdir, self.stage, shard),
                manifest.shard_path(self.workdir, self.stage, shard),
            )
        for stats in results:
            self.record(stats)
        staged = lineage.staged_path(self.workdir, self.stage, 0).parent
        if staged.is_dir() and not any(staged.iterdir()):
            staged.rmdir()

    def finish(self) -> bool:
        """Write ``_SUCCESS`` when every shard is verified and made from the current inputs."""
        checks = [lineage.check_shard(self.workdir, self.stage, s) for s in range(self.n_shards)]
        fresh = all(
            c.state == DONE
            and c.marker is not None
            and c.marker["config"] == self.config
            and c.marker["inputs"] == self.inputs[c.shard]
            for c in checks
        )
        if not fresh:
            return False
        markers = [c.marker for c in checks if c.marker is not None]
        digest = lineage.digest_of([m["digest"] for m in markers])
        path = lineage.success_path(self.workdir, self.stage)
        if path.exists() and json.loads(path.read_text()).get("digest") == digest:
            return True  # already written for exactly these shards
        storage.atomic_write_json(
            path,
            {
                "stage": self.stage,
                "shards": self.n_shards,
                "rows": sum(m["rows"] for m in markers),
                "files": [f"{manifest.shard_name(s)}.parquet" for s in range(self.n_shards)],
                "digest": digest,
                "finished": time.time(),
            },
        )
        return True


def _changed(marker: dict[str, Any], config: str, inputs: dict[str, str]) -> str:
    """Why a verified shard must be redone for this run ('' when it need not)."""
    if marker["config"] != config:
        return "made with another config or version of the stage's code"
    recorded = marker["inputs"]
    if set(recorded) != set(inputs):
        return f"made from {sorted(recorded) or 'no input'}, now reads {sorted(inputs)}"
    changed = [key for key in sorted(inputs) if recorded[key] != inputs[key]]
    return f"input {changed[0]} changed after it ran" if changed else ""


def plan_stage(
    stage: Stage, workdir: Path, n_shards: int, input_stage: str | None, overwrite: bool, key: str | None
) -> StagePlan:
    """Save the config, check the inputs, and choose the shards to run (missing, damaged or stale)."""
    if input_stage == stage.name:
        raise CurateError(f"stage '{stage.name}' cannot read its own output; name an earlier stage as input")
    if input_stage is not None and input_stage not in STAGES:
        raise ConfigError("input", input_stage, f"not a stage; choose one of: {', '.join(STAGES)}")
    checks = Checks(workdir, n_shards)
    sources = _sources(workdir, stage, input_stage)
    for source in sources:  # before anything is written: a refused run leaves the workdir as it was
        if not source.startswith(lineage.FILE_PREFIX):
            _require_ready(checks, stage.name, source)
    stage.check_input(workdir, input_stage)  # the preflight: vectors, columns, files the stage needs
    out_dir = manifest.stage_dir(workdir, stage.name)
    if overwrite and out_dir.exists():
        for sub in ("_done", "_input"):
            shutil.rmtree(out_dir / sub, ignore_errors=True)
    config = save_config(workdir, stage, input_stage, n_shards, key)
    if input_stage is None:
        _require_same_source(workdir, stage, n_shards)
    scope = "all" if isinstance(stage, GlobalStage) else "shard"
    inputs = {
        s: {src: checks.digest(src, None if scope == "all" else s) or "" for src in sources}
        for s in range(n_shards)
    }
    pending, redo = [], []
    for shard in range(n_shards):
        check = lineage.check_shard(workdir, stage.name, shard)
        if check.state != DONE:
            pending.append(shard)
            if check.state != lineage.ABSENT:
                redo.append(f"shard {manifest.shard_name(shard)}: {check.reason}")
            continue
        assert check.marker is not None
        why = _changed(check.marker, config, inputs[shard])
        if why:
            pending.append(shard)
            redo.append(f"shard {manifest.shard_name(shard)}: {why}")
    if redo:
        logger.warning("stage %s: redoing %d shard(s); %s", stage.name, len(redo), redo[0])
    if pending:
        if scope == "all":
            pending = list(range(n_shards))
        lineage.success_path(workdir, stage.name).unlink(missing_ok=True)
        for shard in pending:
            lineage.marker_path(workdir, stage.name, shard).unlink(missing_ok=True)
    return StagePlan(workdir, stage.name, n_shards, config, scope, inputs, pending)


def _require_same_source(workdir: Path, stage: Stage, n_shards: int) -> None:
    """Refuse to go on from rows planned from a source (collect's folder, a URL list) that has changed
    since: a re-run would skip the files added and keep the ones gone, or keep the identity names, ranks
    and repeated lines the rows had when planned, and say it is done."""
    planned_paths = [storage.input_path(workdir, stage.name, s) for s in range(n_shards)]
    if not all(path.exists() for path in planned_paths):
        return  # nothing planned yet (or --overwrite): the run plans from the source as it is now
    tables = stage.plan(workdir, n_shards)
    if tables is None:
        return
    planned_rows = _row_counts(manifest.read_shard(path) for path in planned_paths)
    now_rows = _row_counts(tables.values())
    if planned_rows == now_rows:
        return
    planned = {dict(row)["source"] for row in planned_rows}
    now = {dict(row)["source"] for row in now_rows}
    fix = (
        f"re-run '{stage.name}' with --overwrite to take it as it is now (the later stages then redo "
        "their work)"
    )
    if planned != now:
        added, gone = sorted(now - planned), sorted(planned - now)
        example = (added or gone)[0]
        raise CurateError(
            f"the source of '{stage.name}' changed since it was planned ({len(added)} files added, "
            f"{len(gone)} gone, e.g. {example}); {fix}"
        )
    changed = [dict(row) for row in (now_rows - planned_rows) + (planned_rows - now_rows)]
    example = min(changed, key=lambda row: (not row["source"], str(row["source"])))
    raise CurateError(
        f"the source of '{stage.name}' changed since it was planned: the same files, but their rows "
        f"differ (identity name, rank or repeated lines), e.g. {example['source']!r} under "
        f"{example['identity_name']!r}; {fix}"
    )


def _row_counts(tables: Iterable[pa.Table]) -> Counter[tuple[tuple[str, Any], ...]]:
    """The planned rows of ``tables``, each as its sorted (column, value) pairs, with how often it occurs."""
    return Counter(tuple(sorted(row.items())) for table in tables for row in table.to_pylist())


def require_current(workdir: Path, stage: str) -> None:
    """Raise one line when ``stage`` is stale or damaged now, though its ``_SUCCESS`` may still be there.

    For curate's own readers of a finished manifest (train, export, evaluate, report): an input re-run
    since the stage ran leaves its rows describing data the workdir no longer holds.
    """
    meta = Path(workdir) / storage.WORKDIR_FILE
    if not meta.is_file():
        return
    n_shards = int(json.loads(meta.read_text())["n_shards"])
    state = lineage.stage_state(Checks(Path(workdir), n_shards), stage)
    if state.label in ("stale", "corrupt"):
        raise CurateError(
            f"stage '{stage}' in {workdir} is {state.label} ({state.why()}); "
            "re-run the stages 'curate status' marks, in order (or 'curate run'), then read it"
        )
    if stage == "review":
        from curate.review.source import unapplied_decisions  # the decision log: review's own input

        if why := unapplied_decisions(Path(workdir)):
            raise CurateError(f"stage 'review' in {workdir} is stale: {why}")
