"""URL and address checks made before every connection (first request and each redirect hop).

A URL list comes from outside, so a download must not become a way to reach this machine or its network:
only ``http``/``https`` are fetched, and when a connection is opened the host name is resolved here and
every address it resolves to is checked before any socket connects. The fetcher's connection backend
then connects to one of the checked addresses (never resolving again), so a DNS answer that changes
between the check and the connection cannot slip a private address through.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import httpcore
import httpx

logger = logging.getLogger(__name__)

ALLOWED_SCHEMES = ("http", "https")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
SocketOption = tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]


class UnsafeURL(Exception):
    """A URL refused before connecting; the message is the row's ``reason``."""


class ResolveError(Exception):
    """The host name could not be resolved; ``temporary`` says whether a retry may help."""

    def __init__(self, message: str, temporary: bool) -> None:
        super().__init__(message)
        self.temporary = temporary


NEVER_ALLOWED: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(text)
    for text in (
        "169.254.0.0/16",  # IPv4 link-local, where cloud metadata services answer (169.254.169.254)
        "fe80::/10",  # IPv6 link-local
        "fd00:ec2::254/128",  # the AWS metadata service over IPv6
        "100.100.100.200/32",  # the Alibaba Cloud metadata service
    )
)
PRIVATE_NETWORKS: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(text) for text in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (IPv4-mapped, 6to4, NAT64 ``64:ff9b::/96``), else None.

    Such an address reaches the IPv4 host inside it, so it is judged by that host.
    """
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def never_allowed(address: IPAddress) -> bool:
    """True for link-local and cloud-metadata addresses, which no option opens."""
    inner = embedded_ipv4(address)
    return any(
        candidate in network for network in NEVER_ALLOWED for candidate in (address, inner) if candidate
    )


def address_kind(address: IPAddress) -> str | None:
    """Why an address is not public (``"loopback"``, ``"private"``...), or None for a public address.

    IPv6 addresses that carry an IPv4 address (``::ffff:127.0.0.1``) are judged by the address inside.
    """
    address = embedded_ipv4(address) or address
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if never_allowed(address):
        return "cloud-metadata"
    if address.is_unspecified:
        return "unspecified"
    if address.is_multicast:
        return "multicast"
    if any(address in network for network in PRIVATE_NETWORKS):
        return "private"
    if address.is_private or not address.is_global:
        return "non-public"
    return None


@dataclass(frozen=True)
class AddressPolicy:
    """Which addresses may be contacted.

    By default only public addresses. Link-local and cloud-metadata addresses (:data:`NEVER_ALLOWED`)
    stay refused whatever the settings. ``allow_private`` opens the private ranges only (10/8,
    172.16/12, 192.168/16, fc00::/7), not loopback; ``allowed_networks`` opens listed networks (e.g.
    ``127.0.0.0/8`` for a local mirror, or an internal ``10.1.2.0/24``) while every other non-public
    address stays refused.
    """

    allow_private: bool = False
    allowed_networks: tuple[IPNetwork, ...] = field(default_factory=tuple)

    @classmethod
    def from_strings(cls, allow_private: bool, networks: Sequence[str]) -> AddressPolicy:
        """Build a policy from CIDR strings.

        Raises ``ValueError`` on a malformed network or one that lies wholly inside the never-allowed
        ranges (a wider one, such as ``0.0.0.0/0``, is accepted but still leaves them closed).
        """
        parsed = tuple(ipaddress.ip_network(text.strip(), strict=False) for text in networks)
        for network in parsed:
            for forbidden in NEVER_ALLOWED:
                if network.version == forbidden.version and network.subnet_of(forbidden):  # type: ignore[arg-type]
                    raise ValueError(
                        f"{network} is link-local/cloud-metadata space ({forbidden}), which is never allowed"
                    )
        return cls(allow_private, parsed)

    def problem(self, address: IPAddress) -> str | None:
        """The refusal reason for ``address`` (``"blocked private address 10.0.0.1"``), or None if allowed."""
        inner = embedded_ipv4(address)
        shown = f"{inner} (as {address})" if inner is not None else str(address)
        kind = address_kind(address)
        if never_allowed(address):
            return f"blocked {kind} address {shown} (never allowed)"
        candidates = [address] if inner is None else [address, inner]
        if any(candidate in network for network in self.allowed_networks for candidate in candidates):
            return None
        if kind is None or (kind == "private" and self.allow_private):
            return None
        return f"blocked {kind} address {shown}"


def check_scheme(url: httpx.URL) -> None:
    """Refuse anything but http/https and URLs without a host."""
    if url.scheme not in ALLOWED_SCHEMES:
        raise UnsafeURL(f"unsupported scheme {url.scheme or '(none)'}")
    if not url.host:
        raise UnsafeURL("URL has no host")


def resolve(host: str, port: int) -> list[IPAddress]:
    """All addresses ``host`` resolves to for a TCP connection, in resolver order, without repeats.

    An IP literal is returned as is, without a DNS query.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        temporary = exc.errno == socket.EAI_AGAIN
        raise ResolveError(f"cannot resolve host {host}: {exc.strerror}", temporary) from exc
    except UnicodeError as exc:
        raise ResolveError(f"cannot resolve host {host}: {exc}", False) from exc
    addresses: list[IPAddress] = []
    for info in infos:
        # an IPv6 sockaddr may carry a zone ("fe80::1%eth0"); the zone is not part of the address
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


def checked_addresses(host: str, port: int, policy: AddressPolicy) -> list[IPAddress]:
    """Resolve ``host`` (ASCII/IDNA form) and check every address; all must pass.

    Raises :class:`UnsafeURL` (refused) or :class:`ResolveError`; returns the addresses to connect to.
    """
    addresses = resolve(host, port)
    if not addresses:
        raise ResolveError(f"cannot resolve host {host}: no addresses", False)
    for address in addresses:
        problem = policy.problem(address)
        if problem is not None:
            logger.debug("refusing %s:%d: %s", host, port, problem)
            raise UnsafeURL(problem)
    return addresses


class CheckedBackend(httpcore.NetworkBackend):
    """An httpcore network backend that checks addresses when it opens a connection.

    ``connect_tcp`` resolves the host, refuses it if any address breaks ``policy`` (raising
    :class:`UnsafeURL` before any socket connects) and connects to the checked addresses, up to
    ``max_addresses`` of them in resolver order, never resolving the name again.
    """

    def __init__(self, policy: AddressPolicy, max_addresses: int = 3) -> None:
        self.policy = policy
        self.max_addresses = max_addresses
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.NetworkStream:
        """Open a TCP connection to a checked address of ``host``."""
        *others, last = checked_addresses(host, port, self.policy)[: self.max_addresses]
        for address in others:
            try:
                return self._inner.connect_tcp(str(address), port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                logger.debug("cannot connect to %s for %s (%s); trying its next address", address, host, exc)
        return self._inner.connect_tcp(str(last), port, timeout, local_address, socket_options)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[SocketOption] | None = None
    ) -> httpcore.NetworkStream:
        """Unix sockets are never used for downloads."""
        raise UnsafeURL("unix sockets are not allowed")

    def sleep(self, seconds: float) -> None:
        """Pause (httpcore's own retries are off, but the interface asks for it)."""
        time.sleep(seconds)
