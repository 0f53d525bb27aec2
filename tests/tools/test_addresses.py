"""The floor under a workspace's allowed private hosts: link-local and metadata stay shut.

Whatever a workspace has stored, the check at connect time refuses these
addresses, by literal or through a name that resolves to them.
"""

from __future__ import annotations

import ipaddress

import httpx
import pytest

from switchboard.errors import InvalidInput
from switchboard.tools.addresses import AddressPolicy, pin_target
from tests.tools.test_safe_http import answering

FLOOR = [
    "169.254.169.254",  # AWS, GCP, Azure, Oracle metadata
    "169.254.0.1",
    "fe80::1",
    "fd00:ec2::254",  # AWS IPv6 metadata
    "100.100.100.200",  # Alibaba metadata
    "::ffff:169.254.169.254",  # the same, IPv4-mapped
    "64:ff9b::a9fe:a9fe",  # the same, through NAT64
]


@pytest.mark.parametrize("address", FLOOR)
def test_an_allow_list_cannot_unlock_link_local_or_metadata_addresses(address: str) -> None:
    policy = AddressPolicy.from_allowed([address, "metadata.google.internal"])
    with pytest.raises(InvalidInput, match="no workspace may allow") as caught:
        policy.check(address, ipaddress.ip_address(address))
    assert caught.value.field == "url"
    with pytest.raises(InvalidInput):
        policy.check("metadata.google.internal", ipaddress.ip_address(address))


@pytest.mark.parametrize("url", ["http://metadata.google.internal/", "http://tools.internal/"])
async def test_an_allowed_name_resolving_to_metadata_is_refused(url: str) -> None:
    policy = AddressPolicy.from_allowed(["tools.internal", "metadata.google.internal"])
    resolver = answering(
        metadata__google__internal="169.254.169.254", tools__internal="169.254.169.254"
    )
    with pytest.raises(InvalidInput, match=r"169\.254\.169\.254"):
        await pin_target(httpx.URL(url), policy, resolver)


async def test_allowed_private_hosts_still_open_ordinary_private_addresses() -> None:
    policy = AddressPolicy.from_allowed(["tools.internal", "10.0.0.5"])
    target = await pin_target(
        httpx.URL("http://tools.internal/hook"), policy, answering(tools__internal="10.0.0.9")
    )
    assert str(target.address) == "10.0.0.9"
    policy.check("10.0.0.5", ipaddress.ip_address("10.0.0.5"))
