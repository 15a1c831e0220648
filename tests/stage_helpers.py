"""Seal a stage whose shards a test wrote or edited by hand, as a finished run of curate would leave it.

Markers (row count, checksums) and ``_SUCCESS`` are written through :mod:`curate.lineage`, so readers and
``curate status`` treat the stage as done; tests use it to stand in for an upstream re-run.
"""

from __future__ import annotations

from pathlib import Path

from curate import lineage, manifest, stageplan, storage


def seal_stage(workdir: Path, stage: str, n_shards: int, config: str | None = None) -> None:
    """Write a verified marker for every shard of ``stage`` and its ``_SUCCESS`` file.

    The markers record ``config``, by default the fingerprint of the stage's saved run as this curate
    computes it (a stage sealed under another one reads as made by another release).
    """
    config = config or stageplan.expected_config(workdir, stage) or "test-fixture"
    rows = 0
    for shard in range(n_shards):
        path = manifest.shard_path(workdir, stage, shard)
        count = manifest.read_shard(path).num_rows
        rows += count
        facts = lineage.output_facts(workdir, stage, shard, path, count)
        lineage.write_marker(workdir, stage, shard, facts, config=config, inputs={})
    digests = [lineage.check_shard(workdir, stage, s).marker["digest"] for s in range(n_shards)]
    storage.atomic_write_json(
        lineage.success_path(workdir, stage),
        {"stage": stage, "shards": n_shards, "rows": rows, "digest": lineage.digest_of(digests)},
    )
