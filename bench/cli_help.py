"""How long ``curate --help`` (and a command's ``--help``) takes, beside ``python -c "import typer"``.

Every command runs once per round in a fresh interpreter, rounds interleaved so that all of them share the
machine's load; the minimum (the cost without interference) and the median wall time are printed, with
the ratio of the minimum to the typer import's (the floor: any Typer CLI pays it). ``--old PATH`` also
times the ``curate`` of another checkout (e.g. the main branch before issue 13) the same way.

    python bench/cli_help.py [--runs 15] [--old /work/main]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
COMMANDS = (["--help"], ["train", "--help"], ["faces", "--help"])


def once(args: list[str], pythonpath: Path) -> float:
    """Wall seconds of one ``python ARGS`` in a fresh interpreter, run from ``pythonpath`` (``-m`` puts
    the current folder first on the path)."""
    env = {**os.environ, "PYTHONPATH": str(pythonpath)}
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], env=env, cwd=pythonpath, stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def main() -> None:
    """Print one line per command: minimum and median seconds, and the ratio to the typer import."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--old", type=Path, help="another checkout to time the same way")
    options = parser.parse_args()
    jobs: dict[str, tuple[list[str], Path]] = {'python -c "import typer"': (["-c", "import typer"], HERE)}
    roots = [("this checkout", HERE)] + ([(f"--old {options.old}", options.old)] if options.old else [])
    for label, root in roots:
        for command in COMMANDS:
            jobs[f"curate {' '.join(command)} ({label})"] = (["-m", "curate", *command], root)
    times: dict[str, list[float]] = {name: [] for name in jobs}
    for _ in range(options.runs):
        for name, (args, root) in jobs.items():
            times[name].append(once(args, root))
    floor = min(times['python -c "import typer"'])
    print(f"{'command':48} {'min s':>7} {'median s':>9} {'min / typer':>12}")
    for name, seconds in times.items():
        low = min(seconds)
        print(f"{name:48} {low:7.3f} {statistics.median(seconds):9.3f} {low / floor:11.1f}x")


if __name__ == "__main__":
    main()
