"""Environment errors are one line naming the path and the fix (issue 9 item 6).

Real conditions only: a 2 MiB tmpfs that fills up, the same tmpfs remounted read-only, a folder this
process may not write (root drops its override capabilities with ``setpriv``), a file size limit
(``RLIMIT_FSIZE``, the second way to make writes fail), a workdir that is a file, a missing workdir.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

ORL_ROWS = 401  # 400 images and the README beside the folders


def _curate(*args: str, prefix: tuple[str, ...] = (), **kwargs) -> tuple[int, str]:
    done = subprocess.run(
        [*prefix, sys.executable, "-m", "curate", *args],
        capture_output=True,
        text=True,
        timeout=300,
        **kwargs,
    )
    return done.returncode, done.stdout + done.stderr


def _error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("error:")]


def _pipeline(tmp_path: Path, data_dir: Path, faces: bool = False) -> Path:
    path = tmp_path / "p.toml"
    text = f'shards = 4\nstages = ["collect"]\n[collect]\nsource = "{data_dir / "orl_faces"}"\n'
    if faces:  # ORL images are face crops: keep each whole, so every row writes a crop
        text = text.replace('"collect"]', '"collect", "faces"]') + "[faces]\nkeep_whole_if_no_face = true\n"
    path.write_text(text)
    return path


def _mount_tmpfs(where: Path, size: str) -> None:
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(
            f"cannot mount a tmpfs here ({done.stderr.decode().strip()}); needs root in a mount namespace"
        )


@pytest.fixture
def small_disk(tmp_path) -> Iterator[Path]:
    """A real 2 MiB file system."""
    where = tmp_path / "disk"
    _mount_tmpfs(where, "2m")
    yield where
    subprocess.run(["umount", "-l", str(where)], check=False)


def _no_dac_override() -> tuple[str, ...]:
    """A command prefix under which file permissions apply (root otherwise ignores them)."""
    if os.geteuid() != 0:
        return ()
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: permissions cannot be made to apply")
    return (setpriv, "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search")


def test_workdir_that_is_a_file_is_one_line(tmp_path, data_dir):
    workdir = tmp_path / "file"
    workdir.write_text("not a folder")
    code, output = _curate("-w", str(workdir), "collect", str(data_dir / "orl_faces"))
    assert (
        code == 1
        and output.strip()
        == f"error: workdir {workdir} is a file, not a folder; give a folder with --workdir"
    )


def test_status_of_a_missing_workdir_fails(tmp_path):
    code, output = _curate("-w", str(tmp_path / "nope"), "status")
    assert code == 1 and output.strip().count("\n") == 0
    assert "does not exist" in output and str(tmp_path / "nope") in output


def test_disk_full_mid_run_is_one_line_and_leaves_no_temp_files(small_disk, tmp_path, data_dir):
    workdir = small_disk / "w"
    code, output = _curate("-w", str(workdir), "run", str(_pipeline(tmp_path, data_dir, faces=True)))
    assert code == 1, output
    lines = _error_lines(output)
    assert len(lines) == 1, output
    assert "no space left on the device writing " + str(workdir) in lines[0]
    assert "free some space or use another --workdir, then run the same command to resume" in lines[0]
    assert "Traceback" not in output and "Logging error" not in output
    assert len(output.splitlines()) < 20, output  # progress bars and the line, not hundreds of lines
    assert not list(workdir.rglob("*.tmp*")), "half-written files are removed"
    assert len(pd.read_parquet(workdir / "collect")) == ORL_ROWS, "what finished before stays readable"


def test_nearly_full_disk_is_refused_before_work_starts(small_disk, data_dir):
    (small_disk / "filler").write_bytes(b"\0" * (2 * 2**20 - 64 * 1024))
    code, output = _curate("-w", str(small_disk / "w"), "collect", str(data_dir / "orl_faces"))
    assert code == 1 and len(output.strip().splitlines()) == 1, output
    assert f"no space left for workdir {small_disk / 'w'}" in output
    assert not (small_disk / "w" / "collect").exists()


def test_file_size_limit_takes_the_same_path(tmp_path, data_dir):
    """RLIMIT_FSIZE makes writes fail with EFBIG (Python ignores SIGXFSZ): one line, temp files removed."""
    workdir = tmp_path / "w"

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))

    code, output = _curate(
        "-w", str(workdir), "--workers", "0", "collect", str(data_dir / "orl_faces"), preexec_fn=limit
    )
    lines = _error_lines(output)
    assert code == 1 and len(lines) == 1, output
    assert "file too large (file size limit) writing " + str(workdir) in lines[0] and "ulimit -f" in lines[0]
    assert not list(workdir.rglob("*.tmp*"))


def test_read_only_workdir_confirms_a_finished_pipeline(small_disk, tmp_path, data_dir):
    workdir = small_disk / "w"
    pipeline = _pipeline(tmp_path, data_dir)
    code, output = _curate("-w", str(workdir), "run", str(pipeline))
    assert code == 0, output
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    code, output = _curate("-w", str(workdir), "run", str(pipeline))
    assert code == 0 and "error" not in output, output  # done, and said so, from a read-only place
    code, output = _curate("-w", str(workdir), "status")
    assert code == 0 and "4/4" in output
    assert len(pd.read_parquet(workdir / "collect")) == ORL_ROWS
    code, output = _curate("-w", str(workdir), "faces", "--keep-whole-if-no-face")
    assert code == 1 and output.strip().count("\n") == 0, output
    assert f"stage 'faces' is partial (4 shard(s) not run), but workdir {workdir} is not writable" in output
    assert "read-only file system" in output


def test_workdir_without_write_permission(tmp_path, data_dir):
    workdir = tmp_path / "w"
    pipeline = _pipeline(tmp_path, data_dir)
    assert _curate("-w", str(workdir), "run", str(pipeline))[0] == 0
    workdir.chmod(0o555)
    try:
        prefix = _no_dac_override()
        code, output = _curate("-w", str(workdir), "run", str(pipeline), prefix=prefix)
        assert code == 0, output
        code, output = _curate("-w", str(workdir), "run", str(pipeline), "--overwrite", prefix=prefix)
        assert code == 1 and output.strip().count("\n") == 0, output
        assert f"workdir {workdir} is not writable (no permission)" in output
        code, output = _curate(
            "-w", str(workdir / "sub"), "collect", str(data_dir / "orl_faces"), prefix=prefix
        )
        assert code == 1 and output.strip() == (
            f"error: cannot create workdir {workdir / 'sub'}: no permission; "
            "fix the folder's permissions (chown/chmod) or use another --workdir"
        )
    finally:
        workdir.chmod(0o755)
