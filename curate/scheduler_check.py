"""Check that a ``--scheduler`` address is a dask scheduler before handing it to dask.

dask's client trusts the first 8 bytes a peer sends as a message length: pointed at an HTTP server it
waits forever for a reply to a request it never sent, and pointed at another service it may try to
allocate exabytes. This module does the start of dask's TCP handshake itself, with deadlines: connect,
send the client's handshake (the same frames dask sends), then read the peer's. A dask scheduler answers
at once with a small msgpack mapping naming its Python and pickle protocol; anything else is refused in
one line. Only ``tcp://`` (or bare ``host:port``) addresses are probed; other schemes go straight to dask.
"""

from __future__ import annotations

import logging
import os
import socket
import struct
import sys
import time

from curate.errors import CurateError

logger = logging.getLogger(__name__)

TIMEOUT_ENV = "CURATE_SCHEDULER_TIMEOUT"
DEFAULT_TIMEOUT = 10.0  # seconds for each of connect and answer; the whole check stays under 30 s
MAX_HANDSHAKE_BYTES = 64 * 1024  # a dask handshake is ~60 bytes; anything huge is another protocol
FIX = "start one with 'dask scheduler' and give the address it prints, or drop --scheduler/CURATE_SCHEDULER"


def parse_tcp_address(address: str) -> tuple[str, int] | None:
    """``(host, port)`` of a ``tcp://host:port`` or ``host:port`` address; None for other schemes."""
    scheme, sep, rest = address.partition("://")
    if not sep:
        scheme, rest = "tcp", address
    if scheme != "tcp":
        return None
    host, colon, port = rest.rstrip("/").rpartition(":")
    if not colon or not port.isdigit():
        raise CurateError(f"--scheduler {address!r}: give tcp://HOST:PORT, e.g. tcp://127.0.0.1:8786")
    return host.strip("[]"), int(port)


def _client_handshake() -> bytes:
    """The handshake frames dask's TCP comm sends first: total length, frame count, lengths, msgpack."""
    import msgpack  # a dask dependency; small

    info = {"compression": None, "python": tuple(sys.version_info[:3]), "pickle-protocol": 5}
    frame = msgpack.packb(info, use_bin_type=True)
    body = struct.pack("<Q", 1) + struct.pack("<Q", len(frame)) + frame
    return struct.pack("<Q", len(body)) + body


def _recv_exactly(sock: socket.socket, n: int, deadline: float) -> bytes:
    data = b""
    while len(data) < n:
        sock.settimeout(max(deadline - time.monotonic(), 0.001))
        chunk = sock.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


def _describe(first: bytes) -> str:
    if first.startswith(b"HTTP/"):
        return "an HTTP server answered"
    return f"it answered {first[:16]!r}, not a dask handshake"


def _what_listens(sock: socket.socket) -> str:
    """After silence: end a line as an HTTP client would; an HTTP server then answers (diagnosis only)."""
    try:
        sock.sendall(b"\r\n\r\n")
        answer = _recv_exactly(sock, 5, time.monotonic() + 1.0)
    except OSError:
        return ""
    return " (an HTTP server listens there)" if answer.startswith((b"HTTP/", b"<")) else ""


def _check_answer(address: str, sock: socket.socket, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    try:
        first = _recv_exactly(sock, 8, deadline)
        if not first:
            raise CurateError(f"no dask scheduler at {address}: it closed the connection at once; {FIX}")
        (length,) = struct.unpack("<Q", first.ljust(8, b"\0"))
        if len(first) < 8 or not 16 <= length <= MAX_HANDSHAKE_BYTES:
            raise CurateError(f"no dask scheduler at {address}: {_describe(first)}; {FIX}")
        body = _recv_exactly(sock, length, deadline)
    except TimeoutError:
        raise CurateError(
            f"no dask scheduler at {address}: it accepted the connection but sent no handshake within "
            f"{timeout:g} s{_what_listens(sock)}; {FIX}"
        ) from None
    except OSError as error:
        raise CurateError(f"no dask scheduler at {address}: {error.strerror or error}; {FIX}") from None
    if b"pickle-protocol" not in body:
        raise CurateError(f"no dask scheduler at {address}: {_describe(first + body)}; {FIX}")


def check_scheduler(address: str, timeout: float | None = None) -> None:
    """Raise a one-line :class:`CurateError` unless a dask scheduler answers the handshake at ``address``."""
    target = parse_tcp_address(address)
    if target is None:
        return
    timeout = timeout if timeout is not None else float(os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT))
    try:
        sock = socket.create_connection(target, timeout=timeout)
    except TimeoutError:
        raise CurateError(
            f"no dask scheduler at {address}: no answer to connect within {timeout:g} s; {FIX}"
        ) from None
    except OSError as error:
        reason = error.strerror or str(error)
        raise CurateError(f"no dask scheduler at {address}: {reason.lower()}; {FIX}") from None
    with sock:
        try:
            sock.sendall(_client_handshake())
        except OSError as error:
            raise CurateError(f"no dask scheduler at {address}: {error.strerror or error}; {FIX}") from None
        _check_answer(address, sock, timeout)
    logger.info("dask scheduler at %s answered the handshake", address)
