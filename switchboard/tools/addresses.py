"""Which addresses a webhook tool may reach, and pinning the one that was checked.

A customer's webhook URL is untrusted input that our server will fetch, so a
URL that leads to our own network (loopback, private ranges, the cloud metadata
endpoint) is refused. The host is resolved once and the request then goes to
that exact address: a second lookup could answer differently (DNS rebinding).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass

import httpx

from switchboard.errors import InvalidInput

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]
"""``(host, port) -> addresses``; injectable so tests never touch real DNS."""

_V4_BLOCKED: tuple[tuple[ipaddress.IPv4Network, str], ...] = tuple(
    (ipaddress.IPv4Network(net), why)
    for net, why in (
        ("0.0.0.0/8", "an unspecified address"),
        ("10.0.0.0/8", "a private address"),
        ("100.64.0.0/10", "a CGNAT address"),
        ("127.0.0.0/8", "a loopback address"),
        ("169.254.0.0/16", "a link-local address"),
        ("172.16.0.0/12", "a private address"),
        ("192.0.0.0/24", "a reserved address"),
        ("192.88.99.0/24", "a 6to4 relay address"),
        ("192.168.0.0/16", "a private address"),
        ("198.18.0.0/15", "a reserved address"),
        ("224.0.0.0/4", "a multicast address"),
        ("240.0.0.0/4", "a reserved address"),
    )
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")
_UNIQUE_LOCAL = ipaddress.IPv6Network("fc00::/7")


def blocked_reason(address: IPAddress) -> str | None:
    """Why ``address`` must not be reached, or None when it is public."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = embedded_ipv4(address)
        if embedded is not None:
            return blocked_reason(embedded)
        if address.is_unspecified:
            return "an unspecified address"
        if address.is_loopback:
            return "a loopback address"
        if address.is_link_local:
            return "a link-local address"
        if address in _UNIQUE_LOCAL:
            return "a unique-local address"
        if address.is_multicast:
            return "a multicast address"
        if address in _NAT64_LOCAL or address.is_site_local or address.is_reserved:
            return "a reserved address"
    else:
        for network, why in _V4_BLOCKED:
            if address in network:
                return why
    # Anything else the standard library does not call global (documentation
    # ranges, Teredo, benchmarking) is not a customer's webhook either.
    if address.is_private or not address.is_global:
        return "a non-public address"
    return None


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries traffic to (mapped, NAT64, 6to4)."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.sixtofour


async def system_resolver(host: str, port: int) -> list[str]:
    """Resolve with the event loop's getaddrinfo, keeping the order it returns."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class AddressPolicy:
    """Hosts a workspace admin allowed even though they resolve privately."""

    hostnames: frozenset[str]
    addresses: frozenset[IPAddress]

    @classmethod
    def from_allowed(cls, allowed_private_hosts: Collection[str]) -> AddressPolicy:
        """Split the admin's list into names and IP literals (``[::1]`` accepted)."""
        names: set[str] = set()
        addresses: set[IPAddress] = set()
        for entry in allowed_private_hosts:
            value = _normalise_host(entry)
            try:
                addresses.add(ipaddress.ip_address(value))
            except ValueError:
                names.add(value)
        return cls(frozenset(names), frozenset(addresses))

    def check(self, host: str, address: IPAddress) -> None:
        """Raise InvalidInput unless ``address`` is public or explicitly allowed."""
        why = blocked_reason(address)
        if why is None or host in self.hostnames or address in self.addresses:
            return
        embedded = embedded_ipv4(address) if isinstance(address, ipaddress.IPv6Address) else None
        shown = f"{embedded} (inside {address})" if embedded is not None else str(address)
        raise InvalidInput(f"{host} resolves to {why} {shown}", field="url")


@dataclass(frozen=True)
class PinnedTarget:
    """A checked URL and the one address the request will be sent to."""

    url: httpx.URL
    """The logical URL, against which redirects are resolved."""
    connect_url: httpx.URL
    """The same URL with the host replaced by the checked address."""
    host_header: str
    sni_hostname: str | None
    address: IPAddress


def parse_url(raw: str | httpx.URL) -> httpx.URL:
    """Parse and refuse anything but plain http(s) URLs without credentials."""
    try:
        url = httpx.URL(raw)
    except (httpx.InvalidURL, TypeError) as exc:
        raise InvalidInput(f"invalid URL: {exc}", field="url") from exc
    if url.scheme not in ("http", "https"):
        raise InvalidInput(f"URL scheme must be http or https, not {url.scheme!r}", field="url")
    if url.userinfo:
        raise InvalidInput("URL must not contain a user name or password", field="url")
    if not url.raw_host:
        raise InvalidInput("URL has no host", field="url")
    return url


async def pin_target(url: httpx.URL, policy: AddressPolicy, resolver: Resolver) -> PinnedTarget:
    """Resolve ``url``'s host once, check every address, and pin the first."""
    url = parse_url(url)
    host = _normalise_host(url.raw_host.decode("ascii"))
    port = url.port or (443 if url.scheme == "https" else 80)
    literal = _as_ip(host)
    if literal is not None:
        addresses: list[IPAddress] = [literal]
    else:
        try:
            resolved = await resolver(host, port)
        except OSError as exc:
            raise InvalidInput(f"{host} does not resolve: {exc}", field="url") from exc
        addresses = [ipaddress.ip_address(a.split("%", 1)[0]) for a in resolved]
        if not addresses:
            raise InvalidInput(f"{host} does not resolve", field="url")
    for address in addresses:
        policy.check(host, address)
    chosen = addresses[0]
    return PinnedTarget(
        url=url,
        connect_url=url.copy_with(host=str(chosen)),
        host_header=url.netloc.decode("ascii"),
        sni_hostname=host if literal is None and url.scheme == "https" else None,
        address=chosen,
    )


def _normalise_host(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


def _as_ip(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None
