"""A careful HTTP fetcher for URLs taken from search-engine results.

One :class:`Fetcher` is shared by the worker threads of a shard task (``fetch`` is thread-safe). Per URL it:

- checks the scheme of each hop, and whenever a connection is opened (to the first host or to a redirect
  target) resolves the host and checks every address before connecting to one of them, never resolving
  the name again (:mod:`curate.download.safety`);
- follows redirects itself, at most ``max_redirects`` of them, so each hop is checked;
- holds one of the host's ``per_host_concurrency`` slots while talking to it;
- caps the connect and read timeouts by the time left of a total ``deadline_seconds`` for the URL (all
  hops, attempts and back-off included) and checks the deadline after every chunk, so a server that
  trickles bytes loses its slot at most one read timeout after the deadline;
- refuses a declared ``Content-Length`` above ``max_bytes`` and cuts the stream off once more than
  ``max_bytes`` arrived (a lying or absent length cannot make it read more);
- retries 5xx, 429, timeouts and connection errors up to ``max_retries`` times with exponential back-off,
  never a 4xx, a refused address or an oversized body.

It never raises for a bad URL or a bad server: the outcome is a :class:`FetchResult` with a reason.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpcore
import httpx

from curate.download.safety import AddressPolicy, CheckedBackend, ResolveError, UnsafeURL, check_scheme

logger = logging.getLogger(__name__)

REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
STOPPED = "stopped: the run was interrupted"  # a fetch cut short by Fetcher.stop: no outcome of the URL's
_TIMEOUT_KINDS = {
    httpcore.ConnectTimeout: "connect",
    httpcore.ReadTimeout: "read",
    httpcore.WriteTimeout: "write",
    httpcore.PoolTimeout: "pool",
}


@dataclass(frozen=True)
class FetchSettings:
    """Limits of one fetch. Seconds and bytes are in the names; every limit is a hard bound."""

    connect_timeout_seconds: float = 5.0
    read_timeout_seconds: float = 10.0
    deadline_seconds: float = 60.0
    max_retries: int = 2
    backoff_seconds: float = 0.5
    max_redirects: int = 5
    max_bytes: int = 20_000_000
    per_host_concurrency: int = 4
    user_agent: str = "curate/0.1 (face data set research)"
    policy: AddressPolicy = field(default_factory=AddressPolicy)


@dataclass(frozen=True)
class FetchResult:
    """What one URL gave: its bytes, or why there are none."""

    url: str
    data: bytes | None  # the body, or None when the download failed
    reason: str  # "" when ``data`` is set, else "HTTP 404", "timeout after 5s (read)", ...
    http_status: int | None  # the last HTTP status received, if any
    seconds: float  # time spent on this URL (waiting for a host slot excluded)
    attempts: int


class _Failure(Exception):
    """One attempt failed; ``retryable`` says whether another attempt may succeed."""

    def __init__(self, reason: str, retryable: bool, http_status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.http_status = http_status


class _Clock:
    """The deadline of one URL; time spent queueing for a host slot moves it back."""

    def __init__(self, seconds: float) -> None:
        self.start = time.monotonic()
        self.deadline = self.start + seconds
        self.waited = 0.0

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def add_wait(self, seconds: float) -> None:
        self.waited += seconds
        self.deadline += seconds

    def elapsed(self) -> float:
        return time.monotonic() - self.start - self.waited


class Fetcher:
    """Thread-safe fetcher; use as a context manager so its connections are closed."""

    def __init__(self, settings: FetchSettings, max_connections: int = 16) -> None:
        self.settings = settings
        # httpcore, the connection layer under httpx, used directly for its pluggable network backend
        # (the address check at connect time). Pooled per host name, so TLS is verified per host name.
        # No cookies, no environment proxies, no automatic redirects, no retries of its own.
        self._pool = httpcore.ConnectionPool(
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            retries=0,
            network_backend=CheckedBackend(settings.policy),
        )
        self._slots: dict[str, threading.BoundedSemaphore] = {}
        self._slots_lock = threading.Lock()
        self._stopping = threading.Event()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close pooled connections."""
        self._pool.close()

    def stop(self) -> None:
        """The run is stopping: fetches under way give up at their next step (a chunk read, a retry, a
        redirect) and return :data:`STOPPED` as their reason, which is no outcome of the URL's own."""
        self._stopping.set()

    def fetch(self, url: str) -> FetchResult:
        """Download ``url`` within the settings' limits; never raises for a bad URL or server."""
        settings = self.settings
        clock = _Clock(settings.deadline_seconds)
        attempt = 0
        while True:
            if self._stopping.is_set():
                return FetchResult(url, None, STOPPED, None, clock.elapsed(), attempt)
            try:
                data, status = self._attempt(url, clock)
                return FetchResult(url, data, "", status, clock.elapsed(), attempt + 1)
            except _Failure as failure:
                pause = settings.backoff_seconds * 2**attempt * random.uniform(0.5, 1.0)
                if not failure.retryable or attempt >= settings.max_retries or pause >= clock.left():
                    logger.debug("%s failed after %d attempt(s): %s", url, attempt + 1, failure.reason)
                    return FetchResult(
                        url, None, failure.reason, failure.http_status, clock.elapsed(), attempt + 1
                    )
                logger.debug("%s: %s; retrying in %.2fs", url, failure.reason, pause)
                self._stopping.wait(pause)
                attempt += 1

    @contextmanager
    def _host_slot(self, host: str, clock: _Clock) -> Iterator[None]:
        with self._slots_lock:
            slot = self._slots.get(host)
            if slot is None:
                slot = self._slots[host] = threading.BoundedSemaphore(self.settings.per_host_concurrency)
        started = time.monotonic()
        with slot:
            clock.add_wait(time.monotonic() - started)
            yield

    def _attempt(self, url: str, clock: _Clock) -> tuple[bytes, int]:
        """One try: follow up to ``max_redirects`` hops; return (body, status) or raise ``_Failure``."""
        try:
            current = httpx.URL(url)
        except httpx.InvalidURL as exc:
            raise _Failure(f"invalid URL: {exc}", retryable=False) from exc
        last_status: int | None = None
        for _hop in range(self.settings.max_redirects + 1):
            if self._stopping.is_set():
                raise _Failure(STOPPED, retryable=False, http_status=last_status)
            try:
                check_scheme(current)
            except UnsafeURL as exc:
                raise _Failure(str(exc), retryable=False, http_status=last_status) from exc
            with self._host_slot(current.host, clock):
                status, body, location = self._request(current, clock)
            last_status = status
            if body is not None:
                return body, status
            try:
                current = current.join(location)
            except httpx.InvalidURL as exc:
                raise _Failure(f"invalid redirect location {location!r}", False, status) from exc
        raise _Failure(
            f"too many redirects (limit {self.settings.max_redirects})",
            retryable=False,
            http_status=last_status,
        )

    def _request(self, url: httpx.URL, clock: _Clock) -> tuple[int, bytes | None, str]:
        """One GET: (status, body, "") or (status, None, redirect location)."""
        settings = self.settings
        left = clock.left()
        if left <= 0:
            raise self._deadline_failure()
        limits = {"connect": settings.connect_timeout_seconds, "read": settings.read_timeout_seconds}
        limits |= {"write": settings.read_timeout_seconds, "pool": math.inf}
        timeouts = {kind: min(limit, left) for kind, limit in limits.items()}
        target = httpcore.URL(scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path)
        headers = [
            (b"Host", url.netloc),
            (b"User-Agent", settings.user_agent.encode()),
            (b"Accept", b"image/*,*/*;q=0.5"),
            (b"Accept-Encoding", b"identity"),
        ]
        try:
            with self._pool.stream(
                "GET", target, headers=headers, extensions={"timeout": timeouts}
            ) as response:
                return self._read_response(response, clock)
        except UnsafeURL as exc:
            raise _Failure(str(exc), retryable=False) from exc
        except ResolveError as exc:
            raise _Failure(str(exc), retryable=exc.temporary) from exc
        except httpcore.TimeoutException as exc:
            kind = _TIMEOUT_KINDS.get(type(exc), "network")
            if clock.left() <= 0 or timeouts.get(kind, left) < limits.get(kind, math.inf):
                raise self._deadline_failure() from exc  # the cap was the deadline, not the timeout
            raise _Failure(f"timeout after {limits[kind]:g}s ({kind})", retryable=True) from exc
        except (httpcore.NetworkError, httpcore.ProtocolError) as exc:
            raise _Failure(f"connection error ({type(exc).__name__}): {exc}", retryable=True) from exc

    def _read_response(self, response: httpcore.Response, clock: _Clock) -> tuple[int, bytes | None, str]:
        status = response.status
        headers = {name.lower(): value for name, value in response.headers}
        if status in REDIRECT_CODES and b"location" in headers:
            return status, None, headers[b"location"].decode("latin-1")
        if not 200 <= status < 300:
            raise _Failure(f"HTTP {status}", retryable=status >= 500 or status == 429, http_status=status)
        limit = self.settings.max_bytes
        too_large = _Failure(f"response larger than {limit} bytes", retryable=False, http_status=status)
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            raise too_large
        body = bytearray()
        for chunk in response.iter_stream():
            body += chunk
            if len(body) > limit:
                raise too_large
            if clock.left() <= 0:
                raise self._deadline_failure(status)
            if self._stopping.is_set():
                raise _Failure(STOPPED, retryable=False, http_status=status)
        return status, bytes(body), ""

    def _deadline_failure(self, status: int | None = None) -> _Failure:
        return _Failure(
            f"timeout after {self.settings.deadline_seconds:g}s (total deadline)",
            retryable=False,
            http_status=status,
        )
