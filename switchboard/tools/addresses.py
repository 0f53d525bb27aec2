"""Which addresses a webhook tool or a provider endpoint may reach, and pinning the one checked.

A customer's URL is untrusted input that our server will fetch, so a URL that
leads to our own network (loopback, private ranges, the cloud metadata
endpoint) is refused. A workspace admin may open named private hosts, but never
link-local or cloud-metadata addresses: those hand out the server's own
credentials. The host is resolved once and the request then goes to that exact
address: a second lookup could answer differently (DNS rebinding).
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
# No allow-list opens these: link-local (where every cloud serves instance metadata) and the
# metadata addresses outside it.
_NEVER_ALLOWED: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = (
    ipaddress.IPv4Network("169.254.0.0/16"),
    ipaddress.IPv4Network("100.100.100.200/32"),  # Alibaba Cloud metadata
    ipaddress.IPv6Network("fe80::/10"),
    ipaddress.IPv6Network("fd00:ec2::254/128"),  # AWS metadata over IPv6
)
METADATA_HOSTNAMES = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
    }
)
"""Names that lead to a cloud's instance metadata service; no allow-list accepts them."""
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


def never_allowed(address: IPAddress) -> bool:
    """Whether ``address`` is link-local or a cloud metadata address, however it is written."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = embedded_ipv4(address)
        if embedded is not None:
            return never_allowed(embedded)
    return any(address in network for network in _NEVER_ALLOWED)


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

    def check(self, host: str, address: IPAddress, *, field: str = "url") -> None:
        """Raise InvalidInput naming ``field`` unless ``address`` is public or allowed.

        Link-local and metadata addresses are refused whatever the workspace stored.
        """
        why = blocked_reason(address)
        if why is None:
            return
        floor = never_allowed(address)
        if not floor and (host in self.hostnames or address in self.addresses):
            return
        embedded = embedded_ipv4(address) if isinstance(address, ipaddress.IPv6Address) else None
        shown = f"{embedded} (inside {address})" if embedded is not None else str(address)
        rule = (
            ", which no workspace may allow"
            if floor
            else "; a workspace admin may add the host to allowed_private_hosts"
        )
        raise InvalidInput(f"{host} resolves to {why} {shown}{rule}", field=field)


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


def url_host(url: httpx.URL) -> str:
    """The host as the policy compares it: lowercased, no brackets, no trailing dot."""
    return _normalise_host(url.raw_host.decode("ascii"))


def url_port(url: httpx.URL) -> int:
    """The port a connection goes to: the URL's own, else its scheme's default."""
    return url.port or (443 if url.scheme in ("https", "wss") else 80)


async def checked_addresses(
    url: httpx.URL, policy: AddressPolicy, resolver: Resolver, *, field: str = "url"
) -> list[IPAddress]:
    """Resolve ``url``'s host once (an IP literal is its own answer) and check every address."""
    host = url_host(url)
    literal = _as_ip(host)
    if literal is not None:
        addresses: list[IPAddress] = [literal]
    else:
        try:
            resolved = await resolver(host, url_port(url))
        except OSError as exc:
            raise InvalidInput(f"{host} does not resolve: {exc}", field=field) from exc
        addresses = [ipaddress.ip_address(a.split("%", 1)[0]) for a in resolved]
        if not addresses:
            raise InvalidInput(f"{host} does not resolve", field=field)
    for address in addresses:
        policy.check(host, address, field=field)
    return addresses


async def pin_target(url: httpx.URL, policy: AddressPolicy, resolver: Resolver) -> PinnedTarget:
    """Resolve ``url``'s host once, check every address, and pin the first."""
    url = parse_url(url)
    host = url_host(url)
    chosen = (await checked_addresses(url, policy, resolver))[0]
    literal = _as_ip(host)
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
