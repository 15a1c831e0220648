"""Progress (issues 11, 13): stages report within a shard, in-process, on a LocalCluster and on a real
scheduler; the client's bars get those reports; progress never changes a manifest; one bars helper."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
from dask_processes import start_dask, start_scheduler, stop
from rich.console import Console

from curate import manifest
from curate.executor import ExecutorOptions, stats_path
from curate.pipeline import StageSpec, run_specs
from curate.progress import Bars
from curate.stage import INTERVAL_ENV, local_context
from curate.taskprogress import GLOBAL_TASK, StageProgress, StageTracker
from curate.train.config import TrainConfig

IDENTITIES = 12  # ORL subjects, 10 images each: one shard of 120 images


@pytest.fixture(scope="module")
def orl(data_dir: Path, tmp_path_factory) -> Path:
    source = tmp_path_factory.mktemp("orl")
    for i in range(1, IDENTITIES + 1):
        shutil.copytree(data_dir / "orl_faces" / f"s{i}", source / f"s{i}")
    return source


def _collect(source: Path, workdir: Path, options: ExecutorOptions, record: bool) -> list[StageProgress]:
    """Run the real collect stage as one shard; returns every report the client callback got."""
    seen: list[StageProgress] = []
    factory = (lambda stage: seen.append) if record else None
    run_specs([StageSpec("collect", {"source": source})], workdir, options, 1, progress_factory=factory)
    return seen


def _frame(workdir: Path) -> pd.DataFrame:
    return manifest.read_stage(workdir, "collect").to_pandas().sort_values("source").reset_index(drop=True)


def _check_reports(seen: list[StageProgress]) -> None:
    """The client heard of items done inside the shard, not only the start and the end."""
    assert seen[0].done == 0 and seen[0].shards_total == 1
    assert seen[-1].done == 1 and seen[-1].shards_done == 1
    inside = [p for p in seen if 0 < p.done < 1]
    assert len(inside) >= 3, [p.done for p in seen]
    assert [p.done for p in inside] == sorted(p.done for p in inside)  # one task: never back
    assert inside[-1].items > inside[0].items > 0
    assert seen[-1].items == IDENTITIES * 10


def test_within_shard_progress_in_process_and_on_a_local_cluster(orl, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(INTERVAL_ENV, "0")  # every item reported (workers inherit the environment)
    quiet = _collect(orl, tmp_path / "quiet", ExecutorOptions(workers=0), record=False)
    assert quiet == []
    reference = _frame(tmp_path / "quiet")
    for name, options in {
        "inprocess": ExecutorOptions(workers=0),
        "cluster": ExecutorOptions(workers=2, inprocess=False),
    }.items():
        seen = _collect(orl, tmp_path / name, options, record=True)
        _check_reports(seen)
        pd.testing.assert_frame_equal(_frame(tmp_path / name), reference)  # progress changes no manifest
    stats = [json.loads(stats_path(tmp_path / n, "collect", 0).read_text()) for n in ("quiet", "cluster")]
    assert stats[0].keys() == stats[1].keys()  # no progress figures in the stats
    assert stats[0]["output"]["parquet"]["sha256"] == stats[1]["output"]["parquet"]["sha256"]
    assert stats[1]["pid"] != os.getpid()  # the cluster run's shard ran in a worker process


def test_within_shard_progress_from_a_real_scheduler(orl, tmp_path, monkeypatch) -> None:
    """A ``dask scheduler`` and a ``dask worker`` process: reports travel as dask events to the client."""
    monkeypatch.setenv(INTERVAL_ENV, "0")
    scheduler, address = start_scheduler(tmp_path / "scheduler.json")
    processes = [scheduler]
    try:
        processes.append(start_dask("worker", address, "--nthreads", "1", "--no-dashboard"))
        seen = _collect(orl, tmp_path / "remote", ExecutorOptions(scheduler=address), record=True)
    finally:
        for process in reversed(processes):
            stop(process)
    _check_reports(seen)


def test_context_reports_are_throttled_and_the_last_always_goes(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(INTERVAL_ENV, "3600")
    ctx = local_context(tmp_path, "faces")
    sent: list[tuple[int, int]] = []
    ctx.reporter = lambda done, total: sent.append((done, total))
    for i in range(1, 1001):
        ctx.progress(i, 1000)
    assert sent == [(1, 1000), (1000, 1000)]
    local_context(tmp_path, "faces").progress(3, 4)  # no reporter (a stage called directly): no error
    monkeypatch.setenv(INTERVAL_ENV, "0")
    ctx = local_context(tmp_path, "faces")
    ctx.reporter = lambda done, total: sent.append((done, total))
    ctx.progress(10, 20)
    ctx.advance(5)  # on from the last report, of its total
    ctx.advance(1, total=40)
    assert sent[-3:] == [(10, 20), (15, 20), (16, 40)]


def test_tracker_counts_shards_and_the_share_of_running_tasks() -> None:
    seen: list[StageProgress] = []
    with StageTracker("faces", 4, 1, seen.append) as tracker:
        tracker.task_progress("1", 50, 100)
        tracker.task_progress("2", 25, 100)
        assert seen[-1].done == pytest.approx(1.75) and seen[-1].items == 75
        tracker.task_finished("1")
        tracker.task_progress("1", 60, 100)  # a late report of a finished task is dropped
        assert seen[-1].done == pytest.approx(2.25) and seen[-1].shards_done == 2
    with StageTracker("dedup", 4, 0, seen.append) as tracker:
        tracker.task_progress(GLOBAL_TASK, 1, 4)  # a whole-data-set step stands for every shard
        assert seen[-1].done == pytest.approx(1.0)
        tracker.task_finished(GLOBAL_TASK, 4)
        assert seen[-1].done == 4 and seen[-1].shards_done == 4


def test_bars_print_one_plain_line_per_bar_when_not_a_terminal() -> None:
    buffer = io.StringIO()
    out = Console(file=buffer, width=200)
    with Bars("shards", status=True, out=out) as bars:
        for done in (0.0, 0.5, 1.5, 2.0):
            bars.update("faces", done, 2, status=f"{int(done * 10)} items")
        bars.update("rank", 0, 1)
    with Bars(status=True, out=out) as bars:
        for step in range(3):
            bars.advance("epoch 1/1", 1, total=3, status=f"loss {step}.000 acc 0.500")
        bars.close("epoch 1/1")
    with Bars(transient=True, out=out) as bars:
        bars.advance("drawing", 3, total=3)
    lines = buffer.getvalue().splitlines()
    assert [line.rsplit(" ", 2)[0] for line in lines] == [
        "faces: 2/2 shards 20 items",
        "rank: 0/1 shards",
        "epoch 1/1: 3/3 loss 2.000 acc 0.500",
    ]


def test_training_shows_loss_and_accuracy(tmp_path, data_dir, capsys) -> None:
    from curate.config import build_config
    from curate.train.loop import train

    tree = tmp_path / "orl"
    tree.mkdir()
    for i in range(1, 5):
        (tree / f"s{i}").symlink_to(data_dir / "orl_faces" / f"s{i}", target_is_directory=True)
    values = {"images": tree, "out": tmp_path / "out", "input_size": 32, "embedding_dim": 32}
    train(build_config(TrainConfig, {**values, "batch_size": 16, "epochs": 2, "threads": 1}))
    lines = [line for line in capsys.readouterr().err.splitlines() if re.match(r"epoch \d+/\d+:", line)]
    assert [line.split(":")[0] for line in lines] == ["epoch 1/2", "epoch 2/2"], lines
    assert all(" loss " in line and " acc " in line for line in lines)
