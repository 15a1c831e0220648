"""Settings of the ``download`` stage (:mod:`curate.stages.download`); light to import."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from curate.constants import DEFAULT_MAX_PIXELS
from curate.errors import ConfigError
from curate.settings import setting


@dataclass
class DownloadConfig:
    """Settings of the URL-list collector; seconds and bytes are in the names."""

    source: Path = setting(help="the .csv or .jsonl URL list", argument=True)
    concurrency: int = setting(16, help="downloads in flight per shard task", min=1, speed_only=True)
    per_host_concurrency: int = setting(
        4, help="of those, at most this many to one host", min=1, speed_only=True
    )
    connect_timeout_seconds: float = setting(5.0, help="connection timeout", unit="seconds", min=0.001)
    read_timeout_seconds: float = setting(10.0, help="read timeout", unit="seconds", min=0.001)
    deadline_seconds: float = setting(
        60.0, help="the most one URL may take: redirects, retries, back-off", unit="seconds", min=0.001
    )
    max_retries: int = setting(2, help="extra attempts after a 5xx, 429, timeout or connection error", min=0)
    backoff_seconds: float = setting(
        0.5, help="first pause between attempts; doubles each time", unit="seconds", min=0.0
    )
    max_redirects: int = setting(5, help="redirects followed per URL", min=0)
    max_bytes: int = setting(20_000_000, help="longer responses are cut off", unit="bytes", min=1)
    max_pixels: int = setting(
        DEFAULT_MAX_PIXELS,
        help="larger images are unsafe_input (decompression-bomb guard)",
        unit="pixels",
        min=1,
    )
    allow_private_addresses: bool = setting(
        False, help="open 10/8, 172.16/12, 192.168/16, fc00::/7 (not loopback)"
    )
    allowed_networks: list[str] = setting(
        [], help="CIDR networks opened although not public, e.g. 127.0.0.0/8"
    )
    retry_failed_downloads: bool = setting(
        False, help="fetch again URLs the journal records as failed_download"
    )
    case_sensitive_names: bool = setting(
        False, help="keep names differing only in case apart (docs/collect.md)"
    )
    user_agent: str = setting("curate/0.1 (face data set research)", help="the User-Agent header sent")

    def validate(self) -> None:
        """Check the source file and the address rules (ranges are checked from the metadata)."""
        if Path(self.source).suffix.lower() not in (".csv", ".jsonl", ".ndjson"):
            raise ConfigError("source", str(self.source), "give a .csv or .jsonl URL list")
        if not Path(self.source).is_file():
            raise ConfigError("source", str(self.source), "no such file; give a .csv or .jsonl URL list")
        self.address_policy()

    def address_policy(self) -> Any:
        """The address rules these settings describe (a :class:`curate.download.safety.AddressPolicy`)."""
        from curate.download.safety import AddressPolicy

        try:
            return AddressPolicy.from_strings(self.allow_private_addresses, self.allowed_networks)
        except ValueError as exc:
            raise ConfigError(
                "allowed_networks", self.allowed_networks, f"give CIDR networks ({exc})"
            ) from None

    def fetch_settings(self) -> Any:
        """The fetcher's limits (a :class:`curate.download.fetch.FetchSettings`)."""
        from curate.download.fetch import FetchSettings

        return FetchSettings(
            connect_timeout_seconds=self.connect_timeout_seconds,
            read_timeout_seconds=self.read_timeout_seconds,
            deadline_seconds=self.deadline_seconds,
            max_retries=self.max_retries,
            backoff_seconds=self.backoff_seconds,
            max_redirects=self.max_redirects,
            max_bytes=self.max_bytes,
            per_host_concurrency=self.per_host_concurrency,
            user_agent=self.user_agent,
            policy=self.address_policy(),
        )
