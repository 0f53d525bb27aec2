"""The workspace's own policy through the API: partial updates, who may set what, the audit line.

The call limit is the owner's, the private hosts an admin's, and no one can
open link-local or cloud-metadata addresses to webhook tools.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest

from switchboard.db.models import Role
from tests.conftest import Tenant

URL = "/api/v1/workspace"


async def patch(
    client: httpx.AsyncClient, tenant: Tenant, body: dict[str, Any], role: Role = Role.OWNER
) -> httpx.Response:
    return await client.patch(URL, json=body, headers=tenant.auth(role))


async def test_a_patch_changes_only_the_fields_sent(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    before = (await client.get(URL, headers=tenant.auth(Role.VIEWER))).json()
    assert before["max_concurrent_calls"] == 10
    hosts = await patch(client, tenant, {"allowed_private_hosts": ["tools.internal"]}, Role.ADMIN)
    assert hosts.status_code == 200, hosts.text
    assert hosts.json()["max_concurrent_calls"] == 10
    limit = await patch(client, tenant, {"max_concurrent_calls": 25})
    assert limit.status_code == 200, limit.text
    assert limit.json()["max_concurrent_calls"] == 25
    assert limit.json()["allowed_private_hosts"] == ["tools.internal"]
    nothing = await patch(client, tenant, {}, Role.ADMIN)
    assert nothing.status_code == 200
    after = (await client.get(URL, headers=tenant.auth(Role.VIEWER))).json()
    assert after == {
        **before,
        "allowed_private_hosts": ["tools.internal"],
        "max_concurrent_calls": 25,
    }


async def test_only_an_owner_sets_the_call_limit(client: httpx.AsyncClient, tenant: Tenant) -> None:
    body = {"max_concurrent_calls": 50, "allowed_private_hosts": ["tools.internal"]}
    refused = await patch(client, tenant, body, Role.ADMIN)
    assert refused.status_code == 403, refused.text
    assert refused.json()["field"] == "max_concurrent_calls"
    unchanged = (await client.get(URL, headers=tenant.auth())).json()
    assert (unchanged["max_concurrent_calls"], unchanged["allowed_private_hosts"]) == (10, [])
    assert (await patch(client, tenant, body, Role.DEVELOPER)).status_code == 403
    assert (await patch(client, tenant, body)).json()["max_concurrent_calls"] == 50


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"max_concurrent_calls": 0}, "max_concurrent_calls"),
        ({"max_concurrent_calls": -3}, "max_concurrent_calls"),
        ({"max_concurrent_calls": 1_000_001}, "max_concurrent_calls"),
        ({"max_concurrent_calls": 2.5}, "max_concurrent_calls"),
        ({"max_concurrent_calls": "ten"}, "max_concurrent_calls"),
        ({"max_concurrent_calls": None}, "max_concurrent_calls"),
        ({"allowed_private_hosts": None}, "allowed_private_hosts"),
        ({"retention_days": 3}, "retention_days"),
    ],
)
async def test_bad_values_are_refused_and_change_nothing(
    client: httpx.AsyncClient, tenant: Tenant, body: dict[str, Any], field: str
) -> None:
    before = (await client.get(URL, headers=tenant.auth())).json()
    refused = await patch(client, tenant, body)
    assert refused.status_code == 422, refused.text
    assert refused.json()["field"] == field
    assert (await client.get(URL, headers=tenant.auth())).json() == before


@pytest.mark.parametrize(
    "entry",
    [
        "169.254.169.254",
        "169.254.10.10",
        "fe80::1",
        "[fd00:ec2::254]",
        "100.100.100.200",
        "::ffff:169.254.169.254",
        "metadata.google.internal",
        "Metadata.Google.Internal.",
        "instance-data.ec2.internal",
    ],
)
async def test_link_local_and_metadata_hosts_cannot_be_allowed(
    client: httpx.AsyncClient, tenant: Tenant, entry: str
) -> None:
    refused = await patch(
        client, tenant, {"allowed_private_hosts": ["tools.internal", entry]}, Role.OWNER
    )
    assert refused.status_code == 422, refused.text
    assert refused.json()["field"] == "allowed_private_hosts.1"
    assert (await client.get(URL, headers=tenant.auth())).json()["allowed_private_hosts"] == []


async def test_every_change_of_the_private_hosts_is_logged(
    client: httpx.AsyncClient, tenant: Tenant, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    me = (await client.get(URL, headers=tenant.auth(Role.ADMIN))).json()
    await patch(client, tenant, {"allowed_private_hosts": ["tools.internal"]}, Role.ADMIN)
    await patch(client, tenant, {"allowed_private_hosts": ["tools.internal", "10.0.0.5"]})
    lines = [r.getMessage() for r in caplog.records if "allowed_private_hosts" in r.getMessage()]
    assert len(lines) == 2, lines
    assert tenant.workspace_id in lines[0]
    assert me["key_id"] in lines[0]
    assert "admin" in lines[0]
    assert "[] -> ['tools.internal']" in lines[0]
    assert "owner" in lines[1]
    assert "['tools.internal'] -> ['tools.internal', '10.0.0.5']" in lines[1]
    caplog.clear()
    await patch(client, tenant, {"max_concurrent_calls": 12})
    assert not [r for r in caplog.records if "allowed_private_hosts" in r.getMessage()]
