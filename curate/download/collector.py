"""One shard's downloads: consult the journal, fetch the rest with a thread pool, decode, store, journal.

Threads rather than asyncio: besides the transfer, everything done per URL blocks (DNS resolution for the
address check, sha256, Pillow decoding, writing the store and the journal), and a worker thread runs all
of it in order without hopping between an event loop and an executor. Pillow, hashlib and socket I/O
release the interpreter lock, so the threads overlap. A few dozen downloads in flight per shard is where
returns flatten (see ``bench/collect.py``), and the executor runs many shards at once on top of that.

Journal entries carry a fingerprint of the settings that decide an outcome (limits, address rules,
``max_pixels``). An entry made under the same settings is reused as is. One made under other settings
is reused only for its bytes: a stored image is decoded again from the store (no network), anything else
is fetched again, so e.g. allowing private addresses or raising ``max_bytes`` takes effect on a re-run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx

from curate.decode import decode_bytes, sniff_format
from curate.download.fetch import STOPPED, Fetcher, FetchResult, FetchSettings
from curate.download.store import EXTENSIONS, ContentStore, Journal, Outcome
from curate.record import Status

logger = logging.getLogger(__name__)


@dataclass
class CollectReport:
    """Outcome per URL plus what it took."""

    outcomes: dict[str, Outcome]
    fetched: int = 0  # URLs downloaded in this run
    restored: int = 0  # stored images decoded again because the settings changed
    reused: int = 0  # journal entries taken as they were
    fetched_bytes: int = 0
    seconds: float = 0.0


class Collector:
    """Downloads URLs into a :class:`ContentStore`, journalling each outcome as soon as it is known."""

    def __init__(
        self,
        settings: FetchSettings,
        store: ContentStore,
        journal_path: Path,
        *,
        concurrency: int,
        max_pixels: int,
        retry_failed_downloads: bool = False,
    ) -> None:
        self.settings = settings
        self.store = store
        self.journal_path = Path(journal_path)
        self.concurrency = concurrency
        self.max_pixels = max_pixels
        self.retry_failed_downloads = retry_failed_downloads
        # per_host_concurrency changes speed, never an outcome
        decisive = repr((dataclasses.replace(settings, per_host_concurrency=1), max_pixels))
        self.fingerprint = hashlib.sha1(decisive.encode()).hexdigest()[:16]

    def collect(self, urls: list[str], progress: Callable[[int, int], None] | None = None) -> CollectReport:
        """The outcome of every URL in ``urls`` (distinct), from the journal where it can be trusted.

        ``progress`` is called with (URLs with an outcome, URLs) as downloads finish.
        """
        started = time.monotonic()
        with Journal(self.journal_path) as journal:
            known = journal.load()
            report = CollectReport(outcomes={})
            jobs: list[tuple[str, Outcome | None]] = []
            for url in urls:
                previous = known.get(url)
                if previous is not None and self._reusable(previous):
                    report.outcomes[url] = previous
                    report.reused += 1
                else:
                    jobs.append((url, previous if self._restorable(previous) else None))
            if jobs:
                self._fetch(jobs, journal, report, progress, len(urls))
        report.seconds = time.monotonic() - started
        return report

    def _fetch(
        self,
        jobs: list[tuple[str, Outcome | None]],
        journal: Journal,
        report: CollectReport,
        progress: Callable[[int, int], None] | None,
        total: int,
    ) -> None:
        """Run ``jobs`` on a thread pool, hosts interleaved, adding each outcome to ``report`` as it is known.

        Leaving the loop by an exception (Ctrl-C) closes map's iterator, which cancels the queued downloads,
        and stops the fetcher: those under way give up at their next read and get no journal line.
        """
        workers = min(self.concurrency, len(jobs))
        order = {url: i for i, url in enumerate(interleave_by_host([url for url, _ in jobs]))}
        jobs = sorted(jobs, key=lambda job: order[job[0]])
        with (
            Fetcher(self.settings, max_connections=workers) as fetcher,
            ThreadPoolExecutor(workers, thread_name_prefix="download") as pool,
        ):
            try:
                for outcome, fetched in pool.map(lambda job: self._run(job, fetcher, journal), jobs):
                    report.outcomes[outcome.url] = outcome
                    report.fetched += fetched
                    report.restored += not fetched
                    report.fetched_bytes += (outcome.file_bytes or 0) if fetched else 0
                    if progress is not None:
                        progress(len(report.outcomes), total)
            except BaseException:
                fetcher.stop()
                raise

    def _reusable(self, outcome: Outcome) -> bool:
        """May this journal entry stand in for fetching again?"""
        if outcome.settings != self.fingerprint:
            return False
        if outcome.status == Status.OK.value:
            return self._restorable(outcome)
        return not (self.retry_failed_downloads and outcome.status == Status.FAILED_DOWNLOAD.value)

    def _restorable(self, outcome: Outcome | None) -> bool:
        """Are this entry's bytes in the store, so they can be decoded again without fetching?"""
        return (
            outcome is not None and outcome.stored and self.store.has(outcome.sha256 or "", outcome.extension)
        )

    def _run(
        self, job: tuple[str, Outcome | None], fetcher: Fetcher, journal: Journal
    ) -> tuple[Outcome, bool]:
        url, previous = job
        if previous is None:
            result = fetcher.fetch(url)
            if result.reason == STOPPED:  # no outcome of the URL's own: nothing to journal
                return self.outcome(result), True
        else:
            data = self.store.path_for(previous.sha256 or "", previous.extension).read_bytes()
            result = FetchResult(url, data, "", previous.http_status, previous.fetch_seconds or 0.0, 0)
        outcome = self.outcome(result)
        journal.append(outcome)
        return outcome, previous is None

    def outcome(self, result: FetchResult) -> Outcome:
        """Decode fetched bytes and store them if they are an image."""
        common = {
            "http_status": result.http_status,
            "fetch_seconds": result.seconds,
            "settings": self.fingerprint,
        }
        if result.data is None:
            return Outcome(result.url, Status.FAILED_DOWNLOAD.value, result.reason, **common)
        data = result.data
        sha = hashlib.sha256(data).hexdigest()
        decoded = decode_bytes(data, max_pixels=self.max_pixels)
        extension = ""
        if decoded.ok:
            extension = EXTENSIONS.get(sniff_format(data) or "", "")
            self.store.put(data, extension, key=sha)
        return Outcome(
            result.url,
            decoded.status.value,
            decoded.reason,
            sha,
            extension,
            file_bytes=len(data),
            width=decoded.width,
            height=decoded.height,
            format=decoded.format,
            mode=decoded.mode,
            n_frames=decoded.n_frames,
            **common,
        )


def interleave_by_host(urls: list[str]) -> list[str]:
    """``urls`` reordered round-robin over their hosts.

    Workers then spread over hosts instead of all queueing for one host's slots while others sit idle.
    """
    by_host: dict[str, list[str]] = {}
    for url in urls:
        try:
            host = httpx.URL(url).host
        except httpx.InvalidURL:
            host = ""
        by_host.setdefault(host, []).append(url)
    rounds = itertools.zip_longest(*by_host.values())
    return [url for group in rounds for url in group if url is not None]
