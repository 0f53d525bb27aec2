"""Every API route, walked with every role and with another workspace's keys.

The route table below is the specification of who may do what; a test
fails if a route is added without an entry here.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from switchboard.auth.roles import role_at_least
from switchboard.calls.service import create_call
from switchboard.db.models import CallDirection, Role
from switchboard.dialer.batches import BatchOptions, create_batch
from switchboard.services import Services
from tests.conftest import Tenant

V, D, A = Role.VIEWER, Role.DEVELOPER, Role.ADMIN
SID = "AC" + "a" * 32
MARKER = "Private agent of acme"

# The smallest valid flow: one node that hangs up.
FLOW: dict[str, Any] = {
    "nodes": [
        {
            "key": "start",
            "is_initial": True,
            "is_terminal": True,
            "post_actions": [{"type": "end_call"}],
        }
    ]
}

# (method, path) -> lowest role allowed, body to send
ROUTES: dict[tuple[str, str], tuple[Role, dict[str, Any] | None]] = {
    ("POST", "/api/v1/agents"): (D, {"name": "New", "system_prompt": "p"}),
    ("GET", "/api/v1/agents"): (V, None),
    ("GET", "/api/v1/agents/{agent_id}"): (V, None),
    ("PATCH", "/api/v1/agents/{agent_id}"): (D, {"greeting": "changed"}),
    ("DELETE", "/api/v1/agents/{agent_id}"): (D, None),
    ("GET", "/api/v1/agents/{agent_id}/versions"): (V, None),
    ("POST", "/api/v1/agents/{agent_id}/versions/{version}/restore"): (D, None),
    ("GET", "/api/v1/agents/{agent_id}/runtime-config"): (V, None),
    ("GET", "/api/v1/agents/{agent_id}/flow"): (V, None),
    ("PUT", "/api/v1/agents/{agent_id}/flow"): (D, FLOW),
    ("DELETE", "/api/v1/agents/{agent_id}/flow"): (D, None),
    ("GET", "/api/v1/agents/{agent_id}/flow/export"): (V, None),
    ("POST", "/api/v1/agents/{agent_id}/flow/validate"): (D, FLOW),
    ("POST", "/api/v1/numbers"): (A, {"number": "+15550199", "carrier": "simulator"}),
    ("GET", "/api/v1/numbers"): (V, None),
    ("GET", "/api/v1/numbers/{number_id}"): (V, None),
    ("PATCH", "/api/v1/numbers/{number_id}"): (A, {"label": "changed"}),
    ("DELETE", "/api/v1/numbers/{number_id}"): (A, None),
    ("GET", "/api/v1/carriers"): (V, None),
    ("GET", "/api/v1/carriers/{carrier}"): (V, None),
    ("PUT", "/api/v1/carriers/{carrier}"): (A, {"account_sid": SID, "auth_token": "x" * 20}),
    ("DELETE", "/api/v1/carriers/{carrier}"): (A, None),
    ("GET", "/api/v1/providers"): (V, None),
    ("PUT", "/api/v1/providers/{provider}/credentials"): (A, {"api_key": "k-123"}),
    ("DELETE", "/api/v1/providers/{provider}/credentials"): (A, None),
    ("GET", "/api/v1/calls"): (V, None),
    ("POST", "/api/v1/calls"): (D, {"agent_id": "{agent_id}", "to": "+15550143"}),
    ("POST", "/api/v1/calls/{call_id}/hangup"): (D, None),
    ("POST", "/api/v1/calls/browser"): (D, {"agent_id": "{agent_id}"}),
    ("GET", "/api/v1/calls/{call_id}"): (V, None),
    ("GET", "/api/v1/calls/{call_id}/transcript"): (V, None),
    ("GET", "/api/v1/calls/{call_id}/events"): (V, None),
    ("GET", "/api/v1/calls/{call_id}/recording"): (V, None),
    ("POST", "/api/v1/batches"): (D, None),  # multipart: a JSON body is refused (422)
    ("GET", "/api/v1/batches"): (V, None),
    ("GET", "/api/v1/batches/{batch_id}"): (V, None),
    ("POST", "/api/v1/batches/{batch_id}/pause"): (D, None),
    ("POST", "/api/v1/batches/{batch_id}/resume"): (D, None),
    ("POST", "/api/v1/batches/{batch_id}/cancel"): (D, None),
    ("POST", "/api/v1/campaigns"): (D, {"agent_id": "{agent_id}", "name": "Renewals"}),
    ("GET", "/api/v1/campaigns"): (V, None),
    ("GET", "/api/v1/campaigns/{campaign_id}"): (V, None),
    ("PATCH", "/api/v1/campaigns/{campaign_id}"): (D, {"max_attempts": 2}),
    ("GET", "/api/v1/campaigns/{campaign_id}/stats"): (V, None),
    ("POST", "/api/v1/campaigns/{campaign_id}/prospects"): (D, None),  # multipart: UPLOADS
    ("GET", "/api/v1/campaigns/{campaign_id}/prospects"): (V, None),
    ("POST", "/api/v1/campaigns/{campaign_id}/pause"): (D, None),
    ("POST", "/api/v1/campaigns/{campaign_id}/resume"): (D, None),
    ("POST", "/api/v1/campaigns/{campaign_id}/stop"): (D, None),
    ("GET", "/api/v1/dnc"): (V, None),
    ("POST", "/api/v1/dnc"): (D, {"number": "+15550146", "reason": "asked"}),
    ("POST", "/api/v1/dnc/import"): (D, None),  # multipart: a JSON body is refused (422)
    ("DELETE", "/api/v1/dnc/{dnc_id}"): (A, None),
    ("GET", "/api/v1/workspace"): (V, None),
    ("GET", "/api/v1/keys"): (A, None),
    ("POST", "/api/v1/keys"): (A, {"role": "viewer"}),
    ("DELETE", "/api/v1/keys/{key_id}"): (A, None),
    ("PATCH", "/api/v1/workspace"): (A, {"allowed_private_hosts": ["tools.internal"]}),
    ("POST", "/api/v1/workspace/signing-secret"): (A, None),
    ("POST", "/api/v1/tools"): (
        D,
        {"name": "check_slot", "description": "d", "url": "https://example.com/hook"},
    ),
    ("GET", "/api/v1/tools"): (V, None),
    ("GET", "/api/v1/tools/{tool_id}"): (V, None),
    ("PATCH", "/api/v1/tools/{tool_id}"): (D, {"description": "changed"}),
    ("DELETE", "/api/v1/tools/{tool_id}"): (D, None),
}
# Routes that take a file (multipart) that names an id: they get one, so the id is judged.
UPLOADS = {("POST", "/api/v1/campaigns/{campaign_id}/prospects"): b"phone\n+15550147\n"}
# Routes that name a resource by id: a foreign id must look absent. (``{carrier}`` names a
# carrier, and always means the caller's own account for it.)
ID_ROUTES = {route for route in ROUTES if "_id}" in route[1]}


def api_routes(app: FastAPI) -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        if path.startswith("/api/")
        for method in operations
    }


async def build_resources(
    client: httpx.AsyncClient, tenant: Tenant, services: Services
) -> dict[str, str]:
    """One of everything in ``tenant``'s workspace; returns the path parameters naming them."""
    auth = tenant.auth()
    agent = (
        await client.post(
            "/api/v1/agents", json={"name": MARKER, "system_prompt": "p"}, headers=auth
        )
    ).json()
    number = (
        await client.post(
            "/api/v1/numbers",
            headers=auth,
            json={"number": "+15550142", "carrier": "simulator", "agent_id": agent["id"]},
        )
    ).json()
    await client.put(
        "/api/v1/carriers/twilio", json={"account_sid": SID, "auth_token": "t" * 20}, headers=auth
    )
    spare = (
        await client.post("/api/v1/keys", json={"role": "viewer", "name": "spare"}, headers=auth)
    ).json()
    await client.put(
        "/api/v1/providers/deepgram/credentials", json={"api_key": "dg-acme"}, headers=auth
    )
    tool = (
        await client.post(
            "/api/v1/tools",
            headers=auth,
            json={
                "name": "lookup_order",
                "description": MARKER,
                "url": "https://example.com/orders",
                "secret_headers": {"Authorization": "Bearer acme-tool-secret"},
            },
        )
    ).json()
    listed = (
        await client.post(
            "/api/v1/dnc", json={"number": "+15550142", "reason": MARKER}, headers=auth
        )
    ).json()
    campaign = (
        await client.post(
            "/api/v1/campaigns", json={"agent_id": agent["id"], "name": MARKER}, headers=auth
        )
    ).json()
    async with services.sessions() as session:
        batch = await create_batch(
            session,
            tenant.workspace_id,
            BatchOptions(agent_id=agent["id"], name=MARKER),
            b"phone\n+15550144\n",
            simulator_enabled=True,
        )
        call = await create_call(
            session,
            workspace_id=tenant.workspace_id,
            agent_id=agent["id"],
            agent_version=1,
            direction=CallDirection.INBOUND,
            carrier="simulator",
            from_number="+15550142",
            to_number="+15550100",
        )
    return {
        "call_id": call.id,
        "agent_id": agent["id"],
        "number_id": number["id"],
        "carrier": "twilio",
        "key_id": spare["id"],
        "version": "1",
        "provider": "deepgram",
        "tool_id": tool["id"],
        "batch_id": batch.id,
        "dnc_id": listed["id"],
        "campaign_id": campaign["id"],
    }


async def call(
    client: httpx.AsyncClient, route: tuple[str, str], params: dict[str, str], key: str
) -> httpx.Response:
    method, path = route
    body = ROUTES[route][1]
    if body is not None:  # bodies may name the tenant's resources: {"agent_id": "{agent_id}"}
        body = {k: v.format(**params) if isinstance(v, str) else v for k, v in body.items()}
    upload = UPLOADS.get(route)
    return await client.request(
        method,
        path.format(**params),
        json=body,
        files=None if upload is None else {"file": ("rows.csv", upload, "text/csv")},
        headers={"Authorization": f"Bearer {key}"},
    )


def test_every_api_route_has_an_access_rule(app: FastAPI) -> None:
    assert api_routes(app) == set(ROUTES)


@pytest.mark.parametrize("role", list(Role))
async def test_each_role_gets_exactly_its_permissions(
    client: httpx.AsyncClient, tenant: Tenant, services: Services, role: Role
) -> None:
    params = await build_resources(client, tenant, services)
    # Reads and non-destructive writes first, deletes last, so every route finds its target.
    ordered = sorted(ROUTES, key=lambda r: r[0] == "DELETE")
    for route in ordered:
        response = await call(client, route, params, tenant.keys[role])
        required = ROUTES[route][0]
        if role_at_least(role, required):
            assert response.status_code not in (401, 403), (route, response.text)
            assert response.status_code < 500, (route, response.text)
        else:
            assert response.status_code == 403, (route, response.status_code)
            assert response.json()["title"] == "Forbidden"


@pytest.mark.parametrize("role", list(Role))
async def test_another_workspace_sees_and_changes_nothing(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant, services: Services, role: Role
) -> None:
    params = await build_resources(client, tenant, services)
    before = {
        path: (await client.get(path.format(**params), headers=tenant.auth())).json()
        for path in (
            "/api/v1/agents/{agent_id}",
            "/api/v1/numbers/{number_id}",
            "/api/v1/carriers/{carrier}",
            "/api/v1/keys",
            "/api/v1/providers",
            "/api/v1/tools/{tool_id}",
            "/api/v1/workspace",
            "/api/v1/dnc",
            "/api/v1/campaigns/{campaign_id}",
        )
    }
    for route in sorted(ROUTES, key=lambda r: r[0] == "DELETE"):
        response = await call(client, route, params, other_tenant.keys[role])
        allowed = role_at_least(role, ROUTES[route][0])
        if not allowed:
            assert response.status_code == 403, route
        elif route in ID_ROUTES:
            assert response.status_code == 404, (route, response.text)
        # A 404 may repeat the id the caller sent; nothing else of the workspace may show.
        assert MARKER not in response.text, route
        assert "+15550142" not in response.text, route
        if response.is_success:
            for ident in (
                params["agent_id"],
                params["number_id"],
                params["key_id"],
                params["call_id"],
                params["tool_id"],
                params["batch_id"],
                params["dnc_id"],
                params["campaign_id"],
            ):
                assert ident not in response.text, route
    after = {
        path: (await client.get(path.format(**params), headers=tenant.auth())).json()
        for path in before
    }
    assert after == before


async def test_missing_malformed_and_revoked_keys_are_401(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    for headers in (
        {},
        {"Authorization": "Bearer nonsense"},
        {"Authorization": "Basic abc"},
        {"Authorization": f"Bearer {tenant.keys[Role.OWNER]}x"},
    ):
        response = await client.get("/api/v1/agents", headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["www-authenticate"] == "Bearer"
    created = (
        await client.post("/api/v1/keys", json={"role": "developer"}, headers=tenant.auth())
    ).json()
    fresh = {"Authorization": f"Bearer {created['key']}"}
    assert (await client.get("/api/v1/agents", headers=fresh)).status_code == 200
    await client.delete(f"/api/v1/keys/{created['id']}", headers=tenant.auth())
    revoked = await client.get("/api/v1/agents", headers=fresh)
    assert revoked.status_code == 401
    assert revoked.json()["detail"] == "API key revoked"


async def test_keys_are_shown_once_and_roles_cannot_escalate(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    created = await client.post(
        "/api/v1/keys", json={"role": "developer", "name": "ci"}, headers=tenant.auth()
    )
    assert created.status_code == 201
    plaintext = created.json()["key"]
    assert plaintext.startswith(created.json()["prefix"] + "_")
    listing = await client.get("/api/v1/keys", headers=tenant.auth())
    assert plaintext not in listing.text
    admin = tenant.auth(Role.ADMIN)
    owner_key = await client.post("/api/v1/keys", json={"role": "owner"}, headers=admin)
    assert owner_key.status_code == 403
    assert owner_key.json()["field"] == "role"
    owners = [k for k in listing.json() if k["role"] == "owner"]
    revoke = await client.delete(f"/api/v1/keys/{owners[0]['id']}", headers=admin)
    assert revoke.status_code == 403


async def test_workspace_endpoint_names_the_caller(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    me = (await client.get("/api/v1/workspace", headers=tenant.auth(Role.VIEWER))).json()
    assert me["id"] == tenant.workspace_id
    assert me["name"] == "acme"
    assert me["role"] == "viewer"
