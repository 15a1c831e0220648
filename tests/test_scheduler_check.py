"""--scheduler pointing at something that is not a dask scheduler fails fast, in one line (issue 9 item 7)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from dask_processes import start_scheduler, stop

from curate.errors import CurateError
from curate.scheduler_check import check_scheduler


def _curate_with_scheduler(address: str, workdir: Path, source: Path, timeout: str = "10") -> tuple:
    """Run ``curate collect`` against ``address``; return (exit code, stderr lines, seconds)."""
    env = {**os.environ, "CURATE_SCHEDULER": address, "CURATE_SCHEDULER_TIMEOUT": timeout}
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "curate", "-w", str(workdir), "collect", str(source)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.returncode, done.stderr.strip().splitlines(), time.monotonic() - started


@pytest.fixture
def http_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), SimpleHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"tcp://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def silent_socket() -> Iterator[str]:
    """A listening socket nobody ever accepts from or answers: connect succeeds, then silence."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    yield f"tcp://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()


@pytest.fixture
def garbage_server() -> Iterator[str]:
    """A service that greets every connection with 8 bytes dask would read as a 3 EiB message length."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)

    def serve() -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            with conn:
                conn.sendall(b"SSH-2.0-\r\n")
                time.sleep(0.2)

    threading.Thread(target=serve, daemon=True).start()
    yield f"tcp://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()


@pytest.fixture(scope="module")
def dask_scheduler(tmp_path_factory) -> Iterator[str]:
    process, address = start_scheduler(tmp_path_factory.mktemp("sched") / "scheduler.json")
    yield address
    stop(process)


def test_a_real_dask_scheduler_passes_the_handshake(dask_scheduler):
    started = time.monotonic()
    check_scheduler(dask_scheduler)
    assert time.monotonic() - started < 5


def test_http_server_is_refused_in_one_line(http_server, tmp_path, data_dir):
    code, lines, seconds = _curate_with_scheduler(http_server, tmp_path / "w", data_dir / "orl_faces", "2")
    assert code == 1 and len(lines) == 1, lines
    assert lines[0].startswith("error: no dask scheduler at " + http_server)
    assert "HTTP server" in lines[0] and "dask scheduler" in lines[0]
    assert seconds < 30
    assert not (tmp_path / "w" / "collect").exists(), "nothing ran before the scheduler was checked"


def test_closed_port_is_refused_in_one_line(tmp_path, data_dir):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    address = f"tcp://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()  # nothing listens there now
    code, lines, seconds = _curate_with_scheduler(address, tmp_path / "w", data_dir / "orl_faces")
    assert code == 1 and len(lines) == 1, lines
    assert "refused" in lines[0] and address in lines[0]
    assert seconds < 30


def test_silent_socket_times_out_in_one_line(silent_socket, tmp_path, data_dir):
    code, lines, seconds = _curate_with_scheduler(silent_socket, tmp_path / "w", data_dir / "orl_faces", "2")
    assert code == 1 and len(lines) == 1, lines
    assert "sent no handshake within 2 s" in lines[0]
    assert seconds < 30


def test_silent_socket_with_the_default_deadline_fails_within_30_seconds(silent_socket):
    started = time.monotonic()
    with pytest.raises(CurateError, match="sent no handshake"):
        check_scheduler(silent_socket)
    assert time.monotonic() - started < 30


def test_a_service_that_is_not_dask_never_reaches_dask(garbage_server):
    with pytest.raises(CurateError, match="not a dask handshake"):
        check_scheduler(garbage_server, timeout=5)
