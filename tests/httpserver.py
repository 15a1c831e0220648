"""A real HTTP server on 127.0.0.1 for download tests and the collect benchmark.

It serves good images and every way a server can misbehave. Routes (query strings are ignored for
routing, so ``/img/3.jpg?n=17`` is a distinct URL for the same image):

=========================  =====================================================================
``/img/<i>.jpg``           image ``i`` (modulo the number of images)
``/status/<code>``         that HTTP status with a short body
``/flaky/<i>.jpg``         500 on the first request for the exact path, then image ``i``
``/hang/<i>.jpg``          the first request waits ``hang_seconds`` before answering, later ones don't
``/loop/a``, ``/loop/b``   redirect to each other forever
``/chain/<k>/<i>.jpg``     ``k`` redirects, then image ``i``
``/redirect?to=<url>``     one redirect to any URL (e.g. a private address or ftp://)
``/trickle.jpg``           announces 100,000 bytes, then sends one byte every ``trickle_interval``
``/endless.jpg``           a JPEG start followed by zeros, no length, never ends
``/lie-small/<i>.jpg``     claims 1,000 bytes, sends all of image ``i``
``/lie-big/<i>.jpg``       claims twice image ``i``'s size, sends half of it and closes
``/claims-huge.jpg``       claims 10^12 bytes
``/page.jpg``              an HTML page served as ``image/jpeg``
``/bomb/<w>x<h>.png``      a tiny PNG whose header declares w x h pixels
``/truncated/<i>.jpg``     the first 60% of image ``i``
=========================  =====================================================================
"""

from __future__ import annotations

import struct
import threading
import time
import zlib
from collections import Counter
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

HTML = b"<!DOCTYPE html><html><head><title>Not found</title></head><body>No image here</body></html>"


def small_cfp_jpegs(data_dir: Path, count: int, max_bytes: int = 20_000) -> list[bytes]:
    """The bytes of the first ``count`` CFP frontal JPEGs (sorted paths) no larger than ``max_bytes``."""
    chosen: list[bytes] = []
    for path in sorted((Path(data_dir) / "cfp" / "Data" / "Images").glob("*/frontal/*.jpg")):
        if path.stat().st_size <= max_bytes:
            chosen.append(path.read_bytes())
            if len(chosen) == count:
                return chosen
    raise RuntimeError(f"only {len(chosen)} CFP JPEGs of at most {max_bytes} bytes under {data_dir}")


def bomb_png(width: int, height: int) -> bytes:
    """A valid-looking ~100-byte PNG declaring ``width`` x ``height`` RGB pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00" * 256)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # the default backlog of 5 drops connections when many arrive at once


class CaseServer:
    """A ThreadingHTTPServer on a free port of 127.0.0.1, run in a daemon thread.

    ``hits`` counts requests per path (query included); ``max_in_flight`` is the most requests handled
    at once. Use as a context manager.
    """

    def __init__(
        self,
        images: Sequence[bytes],
        latency_seconds: float = 0.0,
        hang_seconds: float = 3.0,
        trickle_interval: float = 0.05,
    ) -> None:
        self.images = list(images)
        self.latency_seconds = latency_seconds
        self.hang_seconds = hang_seconds
        self.trickle_interval = trickle_interval
        self.hits: Counter[str] = Counter()
        self.max_in_flight = 0
        self._in_flight = 0
        self._lock = threading.Lock()
        self._httpd = _Server(("127.0.0.1", 0), _handler_for(self))
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.05,), name="case-server", daemon=True
        )

    @property
    def port(self) -> int:
        """The port the server listens on."""
        return self._httpd.server_address[1]

    def url(self, path: str) -> str:
        """The full URL of ``path`` on this server."""
        return f"http://127.0.0.1:{self.port}{path}"

    def hit_count(self, prefix: str = "/") -> int:
        """Requests so far whose path starts with ``prefix``."""
        with self._lock:
            return sum(count for path, count in self.hits.items() if path.startswith(prefix))

    def __enter__(self) -> CaseServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def enter(self, path: str) -> int:
        """Record a request; returns how many times ``path`` was requested (this one included)."""
        with self._lock:
            self.hits[path] += 1
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
            return self.hits[path]

    def leave(self) -> None:
        """Record the end of a request."""
        with self._lock:
            self._in_flight -= 1


def _handler_for(server: CaseServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = 30
        disable_nagle_algorithm = True  # headers and body go out as separate writes: no delayed-ACK stall

        def log_message(self, format: str, *args: object) -> None:
            """Keep test output quiet."""

        def do_GET(self) -> None:
            seen = server.enter(self.path)
            try:
                if server.latency_seconds:
                    time.sleep(server.latency_seconds)
                self._route(urlsplit(self.path), seen)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client gave up (deadline, size limit): expected
            finally:
                server.leave()

        def _route(self, url, seen: int) -> None:
            parts = url.path.strip("/").split("/")
            name = parts[-1]
            index = int(name.split(".")[0]) if name.split(".")[0].isdigit() else 0
            image = server.images[index % len(server.images)]
            kind = parts[0]
            if kind in ("img", "hang") or (kind == "flaky" and seen > 1) or parts[:2] == ["chain", "0"]:
                if kind == "hang" and seen == 1:
                    time.sleep(server.hang_seconds)
                self._send(200, image)
            elif kind == "flaky" or kind == "status":
                code = int(parts[1]) if kind == "status" else 500
                self._send(code, f"status {code}".encode(), "text/plain")
            elif kind == "loop":
                self._redirect("/loop/b" if name == "a" else "/loop/a")
            elif kind == "chain":
                self._redirect(f"/chain/{int(parts[1]) - 1}/{name}")
            elif kind == "redirect":
                self._redirect(parse_qs(url.query)["to"][0])
            elif kind == "trickle.jpg":
                self._stream(100_000, (b"\xff" for _ in range(100_000)), server.trickle_interval)
            elif kind == "endless.jpg":
                self._stream(None, (b"\xff\xd8\xff" + b"\x00" * 65533 for _ in range(20_000)), 0.0)
            elif kind == "lie-small":
                self._stream(1_000, iter([image]), 0.0)
            elif kind == "lie-big":
                self._stream(2 * len(image), iter([image[: len(image) // 2]]), 0.0)
            elif kind == "claims-huge.jpg":
                self._stream(10**12, iter([image]), 0.0)
            elif kind == "page.jpg":
                self._send(200, HTML)
            elif kind == "bomb":
                width, height = (int(v) for v in name.removesuffix(".png").split("x"))
                self._send(200, bomb_png(width, height), "image/png")
            elif kind == "truncated":
                self._send(200, image[: len(image) * 6 // 10])
            else:
                self._send(404, b"no such route", "text/plain")

        def _send(self, code: int, body: bytes, content_type: str = "image/jpeg") -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _redirect(self, location: str) -> None:
            self.send_response(302)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _stream(self, declared: int | None, chunks, interval: float) -> None:
            """Send ``chunks`` whatever ``declared`` says, then close the connection."""
            self.close_connection = True
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Connection", "close")
            if declared is not None:
                self.send_header("Content-Length", str(declared))
            self.end_headers()
            for chunk in chunks:
                self.wfile.write(chunk)
                self.wfile.flush()
                if interval:
                    time.sleep(interval)

    return Handler
