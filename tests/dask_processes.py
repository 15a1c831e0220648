"""Real ``dask scheduler`` and ``dask worker`` processes on 127.0.0.1, for tests about distribution."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def start_dask(*args: str) -> subprocess.Popen:
    """Start ``dask ARGS...`` (the venv's CLI) in its own process group, output discarded."""
    dask = Path(sys.executable).with_name("dask")
    return subprocess.Popen(
        [str(dask), *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )


def start_scheduler(scheduler_file: Path) -> tuple[subprocess.Popen, str]:
    """A scheduler on a free loopback port; returns the process and its ``tcp://`` address."""
    process = start_dask(
        "scheduler",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--no-dashboard",
        "--scheduler-file",
        str(scheduler_file),
    )
    deadline = time.monotonic() + 60
    while not scheduler_file.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    return process, json.loads(scheduler_file.read_text())["address"]


def stop(process: subprocess.Popen | None) -> None:
    """SIGTERM the process group of ``process`` and wait for it."""
    if process is not None:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
