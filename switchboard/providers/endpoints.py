"""Where an agent's providers connect: each ``base_url`` checked against the workspace's policy.

Whoever edits an agent chooses its ``base_url``s, and the server connects to
them, stored provider key in hand. So they obey the private-address policy of
webhook tools (:mod:`switchboard.tools.addresses`): when the agent is saved,
hosts that need no lookup (IP literals, ``localhost``, cloud metadata names)
are checked; right before a call, every host is resolved and checked.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection, Iterator, Sequence

import httpx

from switchboard.agents.schema import AgentConfig, LLMSettings, STTSettings, TTSSettings
from switchboard.errors import InvalidInput
from switchboard.tools.addresses import (
    METADATA_HOSTNAMES,
    AddressPolicy,
    IPAddress,
    Resolver,
    checked_addresses,
    url_host,
)

ProviderSettings = STTSettings | LLMSettings | TTSSettings

_LOOPBACK: tuple[IPAddress, ...] = (
    ipaddress.IPv4Address("127.0.0.1"),
    ipaddress.IPv6Address("::1"),
)
_METADATA: tuple[IPAddress, ...] = (ipaddress.IPv4Address("169.254.169.254"),)


def provider_settings(config: AgentConfig) -> Iterator[tuple[str, ProviderSettings]]:
    """Every provider choice with its field path: the primaries, then each fallback in order."""
    yield "stt", config.stt
    yield "llm", config.llm
    yield "tts", config.tts
    fallbacks = config.fallbacks
    groups: tuple[tuple[str, Sequence[ProviderSettings]], ...] = (
        ("stt", fallbacks.stt),
        ("llm", fallbacks.llm),
        ("tts", fallbacks.tts),
    )
    for kind, group in groups:
        for index, settings in enumerate(group):
            yield f"fallbacks.{kind}.{index}", settings


def provider_endpoints(config: AgentConfig) -> Iterator[tuple[str, str, httpx.URL]]:
    """``(field, provider id, URL)`` for each ``base_url`` set; the rest use the provider's own."""
    for path, settings in provider_settings(config):
        if not settings.base_url:
            continue
        field = f"{path}.base_url"
        try:
            url = httpx.URL(settings.base_url)
        except httpx.InvalidURL as exc:
            raise InvalidInput(f"invalid URL: {exc}", field=field) from exc
        if not url.raw_host:
            raise InvalidInput("URL has no host", field=field)
        yield field, settings.provider, url


def check_endpoint_literals(config: AgentConfig, allowed_private_hosts: Collection[str]) -> None:
    """At save time, without DNS: refuse a host whose address is known and that the policy refuses.

    IP literals stand for themselves, ``localhost`` for loopback and the cloud
    metadata names for the metadata address; other names are checked at call time.
    """
    policy = AddressPolicy.from_allowed(allowed_private_hosts)
    for field, _, url in provider_endpoints(config):
        host = url_host(url)
        for address in _known_addresses(host):
            policy.check(host, address, field=field)


async def check_provider_endpoints(
    config: AgentConfig, allowed_private_hosts: Collection[str], resolver: Resolver
) -> None:
    """Before a call: resolve every ``base_url`` host (primaries and fallbacks) and check it.

    Raises:
        InvalidInput: naming the field (``llm.base_url``, ``fallbacks.tts.1.base_url``)
            whose host does not resolve or resolves to an address the policy refuses.
    """
    policy = AddressPolicy.from_allowed(allowed_private_hosts)
    for field, _, url in provider_endpoints(config):
        await checked_addresses(url, policy, resolver, field=field)


def _known_addresses(host: str) -> tuple[IPAddress, ...]:
    try:
        return (ipaddress.ip_address(host),)
    except ValueError:
        pass
    if host == "localhost" or host.endswith(".localhost"):  # RFC 6761: always loopback
        return _LOOPBACK
    if host in METADATA_HOSTNAMES:
        return _METADATA
    return ()
