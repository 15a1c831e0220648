"""A source stage killed after planning its input rows, re-run with another config, plans again.

The planned rows (``<stage>/_input``) were reused whenever they all existed, so a collect killed before
its first shard finished and re-run on another folder recorded the new folder in ``_config.json`` and
wrote the old folder's images, reported done.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from typer.testing import CliRunner

from curate import manifest, storage
from curate.cli import app


def _kill_after_planning(workdir: Path, source: Path) -> bool:
    """Run collect in a child and SIGKILL it once its input is planned; True when no shard had finished."""
    args = ["-w", str(workdir), "--workers", "0", "--shards", "1", "collect", str(source)]
    run = subprocess.Popen([sys.executable, "-m", "curate", *args], start_new_session=True)
    planned = storage.input_path(workdir, "collect", 0)
    deadline = time.monotonic() + 120
    while not planned.exists() and time.monotonic() < deadline and run.poll() is None:
        time.sleep(0.005)
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()
    return planned.exists() and not manifest.done_dir(workdir, "collect").joinpath("00000").exists()


def test_a_killed_collect_rerun_on_another_folder_collects_that_folder(tmp_path, data_dir):
    first, second = tmp_path / "first", tmp_path / "second"
    images = data_dir / "cfp" / "Data" / "Images"
    for folder in sorted(images.iterdir())[:40]:  # enough work that the kill lands inside the shard
        shutil.copytree(folder, first / folder.name)
    shutil.copytree(data_dir / "orl_faces" / "s1", second / "s1")
    workdir = tmp_path / "w"
    for _ in range(5):  # the kill must land between planning and the first marker
        shutil.rmtree(workdir, ignore_errors=True)
        if _kill_after_planning(workdir, first):
            break
    else:
        raise AssertionError("the kill never landed between planning and the first finished shard")
    args = ["-w", str(workdir), "--workers", "0", "collect", str(second)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    sources = manifest.read_stage(workdir, "collect").column("source").to_pylist()
    assert len(sources) == 10 and all(s.startswith(str(second)) for s in sources)
