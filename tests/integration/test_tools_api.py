"""Webhook tools and the workspace tool policy through the API.

Secrets are write-only, every bad field is named in the problem body, a tool
in use cannot be deleted, and the signing secret is shown only when rotated.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from switchboard.db.models import FlowNode, Role, Tool, Workspace
from switchboard.services import Services
from switchboard.tools.loading import load_tool_policy, signing_secret
from tests.conftest import Tenant
from tests.integration.test_agents_api import create as create_agent

SECRET = "secret-value-8c1f"
TOOL = {
    "name": "check_availability",
    "description": "Find free appointment slots on a day.",
    "url": "https://api.example.com/availability",
    "parameters": {
        "type": "object",
        "properties": {"day": {"type": "string", "format": "date"}},
        "required": ["day"],
    },
}


async def post_tool(
    client: httpx.AsyncClient, tenant: Tenant, role: Role = Role.DEVELOPER, **fields: Any
) -> httpx.Response:
    return await client.post("/api/v1/tools", json={**TOOL, **fields}, headers=tenant.auth(role))


async def create_tool(client: httpx.AsyncClient, tenant: Tenant, **fields: Any) -> dict[str, Any]:
    response = await post_tool(client, tenant, **fields)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_create_get_list_patch_delete(client: httpx.AsyncClient, tenant: Tenant) -> None:
    tool = await create_tool(client, tenant, headers={"X-Api-Version": "2"})
    assert tool["id"].startswith("tool_")
    assert tool["parameters"] == TOOL["parameters"]
    assert tool["headers"] == {"X-Api-Version": "2"}
    assert tool["secret_header_names"] == []
    assert (tool["method"], tool["timeout_seconds"], tool["retries"]) == ("POST", 5.0, 0)
    assert tool["agent_ids"] is None
    assert tool["wait_message"] == "One moment while I check that."
    url = f"/api/v1/tools/{tool['id']}"
    viewer = tenant.auth(Role.VIEWER)
    assert (await client.get(url, headers=viewer)).json() == tool
    listed = (await client.get("/api/v1/tools", headers=viewer)).json()
    assert listed == {"data": [tool], "next_after": None}

    patched = await client.patch(
        url,
        json={"method": "get", "timeout_seconds": 12.5, "wait_message": ""},
        headers=tenant.auth(),
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["method"] == "GET"
    assert patched.json()["timeout_seconds"] == 12.5
    assert patched.json()["wait_message"] == ""
    assert patched.json()["description"] == TOOL["description"]
    assert patched.json()["headers"] == {"X-Api-Version": "2"}

    assert (await client.delete(url, headers=tenant.auth(Role.DEVELOPER))).status_code == 204
    gone = await client.get(url, headers=tenant.auth())
    assert gone.status_code == 404
    assert gone.headers["content-type"] == "application/problem+json"


async def test_empty_parameters_default_to_an_object_schema(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    body = {k: v for k, v in TOOL.items() if k != "parameters"}
    created = await client.post("/api/v1/tools", json=body, headers=tenant.auth())
    assert created.json()["parameters"] == {"type": "object", "properties": {}}
    bare = await create_tool(client, tenant, name="bare", parameters={"type": "object"})
    assert bare["parameters"] == {"type": "object", "properties": {}}


async def test_list_is_paginated(client: httpx.AsyncClient, tenant: Tenant) -> None:
    ids = [(await create_tool(client, tenant, name=f"tool_{i}"))["id"] for i in range(3)]
    first = (await client.get("/api/v1/tools?limit=2", headers=tenant.auth())).json()
    assert [t["id"] for t in first["data"]] == ids[:2]
    assert first["next_after"] == ids[1]
    rest = await client.get(f"/api/v1/tools?limit=2&after={ids[1]}", headers=tenant.auth())
    assert [t["id"] for t in rest.json()["data"]] == ids[2:]
    assert rest.json()["next_after"] is None


async def test_secret_headers_are_write_only_and_encrypted(
    client: httpx.AsyncClient, tenant: Tenant, services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    created = await post_tool(
        client, tenant, secret_headers={"Authorization": f"Bearer {SECRET}", "X-Key": SECRET}
    )
    assert created.status_code == 201, created.text
    assert SECRET not in created.text
    assert created.json()["secret_header_names"] == ["Authorization", "X-Key"]
    url = f"/api/v1/tools/{created.json()['id']}"
    for response in (
        await client.get(url, headers=tenant.auth()),
        await client.get("/api/v1/tools", headers=tenant.auth()),
        await client.patch(url, json={"description": "Changed."}, headers=tenant.auth()),
    ):
        assert response.status_code == 200, response.text
        assert SECRET not in response.text
    async with services.sessions() as session:
        row = await session.scalar(select(Tool).where(Tool.id == created.json()["id"]))
        assert row is not None and row.secret_headers is not None
        assert SECRET.encode() not in row.secret_headers
        # A PATCH that leaves secret_headers out keeps them.
        assert services.box.open(row.secret_headers)["X-Key"] == SECRET

    replaced = await client.patch(
        url, json={"secret_headers": {"X-Other": "o"}}, headers=tenant.auth()
    )
    assert replaced.json()["secret_header_names"] == ["X-Other"]
    cleared = await client.patch(url, json={"secret_headers": {}}, headers=tenant.auth())
    assert cleared.json()["secret_header_names"] == []
    assert SECRET not in caplog.text


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"parameters": {"type": "nonsense"}}, "parameters"),
        ({"parameters": {"type": "string"}}, "parameters"),
        ({"parameters": ["day"]}, "parameters"),
        ({"name": "book slot"}, "name"),
        ({"name": "1abc"}, "name"),
        ({"name": "end_call"}, "name"),
        ({"name": "transfer_call"}, "name"),
        ({"description": ""}, "description"),
        ({"method": "TRACE"}, "method"),
        ({"url": "ftp://x"}, "url"),
        ({"url": "https://user:pw@api.example.com/"}, "url"),
        ({"url": "https://api.example.com/" + "a" * 2048}, "url"),
        ({"headers": {"X-Note": "a\r\nInjected: yes"}}, "headers"),
        ({"headers": {"Bad Name": "x"}}, "headers"),
        ({"headers": {"Host": "internal"}}, "headers"),
        ({"headers": {"X-Switchboard-Signature": "forged"}}, "headers"),
        ({"secret_headers": {"Content-Length": "1"}}, "secret_headers"),
        ({"secret_headers": {"X-Key": "a\nb"}}, "secret_headers"),
        ({"headers": {"X-Key": "a"}, "secret_headers": {"x-key": "b"}}, "secret_headers"),
        ({"agent_ids": ["agt_unknown"]}, "agent_ids"),
        ({"timeout_seconds": 0}, "timeout_seconds"),
        ({"timeout_seconds": 31}, "timeout_seconds"),
        ({"retries": 4}, "retries"),
        ({"wait_message": "x" * 301}, "wait_message"),
        ({"unknown": 1}, "unknown"),
    ],
)
async def test_bad_input_names_the_field(
    client: httpx.AsyncClient, tenant: Tenant, fields: dict[str, Any], field: str
) -> None:
    response = await post_tool(client, tenant, **fields)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["field"] == field
    assert (await client.get("/api/v1/tools", headers=tenant.auth())).json()["data"] == []


async def test_a_patch_is_checked_as_a_whole_and_changes_nothing_when_refused(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    tool = await create_tool(client, tenant, secret_headers={"Authorization": "Bearer t"})
    url = f"/api/v1/tools/{tool['id']}"
    for body, field in (
        ({"method": "TRACE"}, "method"),
        ({"parameters": {"type": "nonsense"}}, "parameters"),
        ({"headers": {"authorization": "plain"}}, "secret_headers"),
        ({"description": None}, "description"),
        ({"agent_ids": ["agt_unknown"]}, "agent_ids"),
    ):
        response = await client.patch(url, json=body, headers=tenant.auth())
        assert response.status_code == 422, response.text
        assert response.json()["field"] == field
    assert (await client.get(url, headers=tenant.auth())).json() == tool


async def test_agent_ids_must_be_agents_of_the_workspace(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    own = await create_agent(client, tenant)
    foreign = await create_agent(client, other_tenant)
    refused = await post_tool(client, tenant, agent_ids=[own["id"], foreign["id"]])
    assert refused.status_code == 422
    assert refused.json()["field"] == "agent_ids"
    assert foreign["id"] in refused.json()["detail"]
    tool = await create_tool(client, tenant, agent_ids=[own["id"], own["id"]])
    assert tool["agent_ids"] == [own["id"]]
    opened = await client.patch(
        f"/api/v1/tools/{tool['id']}", json={"agent_ids": None}, headers=tenant.auth()
    )
    assert opened.json()["agent_ids"] is None


async def test_names_are_unique_per_workspace(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    await create_tool(client, tenant)
    again = await post_tool(client, tenant, url="https://other.example.com/")
    assert again.status_code == 409
    assert again.json()["field"] == "name"
    assert (await post_tool(client, other_tenant)).status_code == 201
    second = await create_tool(client, tenant, name="book_slot")
    renamed = await client.patch(
        f"/api/v1/tools/{second['id']}", json={"name": TOOL["name"]}, headers=tenant.auth()
    )
    assert renamed.status_code == 409
    assert renamed.json()["field"] == "name"


async def test_a_tool_in_use_cannot_be_deleted(
    client: httpx.AsyncClient, tenant: Tenant, services: Services
) -> None:
    tool = await create_tool(client, tenant)
    url = f"/api/v1/tools/{tool['id']}"
    agent = await create_agent(client, tenant, name="Front desk", pre_call_tool_ids=[tool["id"]])
    refused = await client.delete(url, headers=tenant.auth())
    assert refused.status_code == 409
    assert "agent 'Front desk' (pre_call_tool_ids)" in refused.json()["detail"]

    await client.patch(
        f"/api/v1/agents/{agent['id']}",
        json={"pre_call_tool_ids": [], "tool_ids": [tool["id"]]},
        headers=tenant.auth(),
    )
    async with services.sessions() as session:
        node = FlowNode(
            agent_id=agent["id"], key="booking", tools=[{"tool_id": tool["id"], "then": None}]
        )
        session.add(node)
        await session.commit()
    refused = await client.delete(url, headers=tenant.auth())
    assert refused.status_code == 409
    assert "agent 'Front desk' (tool_ids)" in refused.json()["detail"]
    assert "flow node 'booking' of agent 'Front desk'" in refused.json()["detail"]

    await client.patch(
        f"/api/v1/agents/{agent['id']}", json={"tool_ids": []}, headers=tenant.auth()
    )
    async with services.sessions() as session:
        await session.delete(await session.get(FlowNode, node.id))
        await session.commit()
    assert (await client.delete(url, headers=tenant.auth())).status_code == 204


async def test_a_changed_tool_reaches_the_cached_runtime_config(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    tool = await create_tool(client, tenant)
    agent = await create_agent(client, tenant, tool_ids=[tool["id"]])
    url = f"/api/v1/agents/{agent['id']}/runtime-config"
    await client.get(url, headers=tenant.auth())
    assert (await client.get(url, headers=tenant.auth())).headers["x-config-source"] == "cache"
    await client.patch(
        f"/api/v1/tools/{tool['id']}", json={"description": "Newer."}, headers=tenant.auth()
    )
    fresh = await client.get(url, headers=tenant.auth())
    assert fresh.headers["x-config-source"] == "database"
    assert fresh.json()["tools"][0]["description"] == "Newer."


async def test_roles_and_workspaces(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    denied = await post_tool(client, tenant, role=Role.VIEWER)
    assert denied.status_code == 403
    tool = await create_tool(client, tenant)
    url = f"/api/v1/tools/{tool['id']}"
    assert (await client.patch(url, json={}, headers=tenant.auth(Role.VIEWER))).status_code == 403
    assert (await client.delete(url, headers=tenant.auth(Role.VIEWER))).status_code == 403
    foreign = other_tenant.auth()
    assert (await client.get(url, headers=foreign)).status_code == 404
    assert (await client.patch(url, json={"description": "x"}, headers=foreign)).status_code == 404
    assert (await client.delete(url, headers=foreign)).status_code == 404
    assert (await client.get("/api/v1/tools", headers=foreign)).json()["data"] == []
    assert (await client.get(url, headers=tenant.auth())).json() == tool


async def test_admins_set_the_private_hosts_tools_may_reach(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    assert (await client.get("/api/v1/workspace", headers=tenant.auth())).json()[
        "allowed_private_hosts"
    ] == []
    hosts = ["Tools.Internal.", "[::1]", "10.0.0.5", "tools.internal", "db_host"]
    admin = tenant.auth(Role.ADMIN)
    updated = await client.patch(
        "/api/v1/workspace", json={"allowed_private_hosts": hosts}, headers=admin
    )
    assert updated.status_code == 200, updated.text
    expected = ["tools.internal", "::1", "10.0.0.5", "db_host"]
    assert updated.json()["allowed_private_hosts"] == expected
    assert updated.json()["role"] == "admin"
    me = (await client.get("/api/v1/workspace", headers=tenant.auth(Role.VIEWER))).json()
    assert me["allowed_private_hosts"] == expected

    developer = tenant.auth(Role.DEVELOPER)
    body: dict[str, list[str]] = {"allowed_private_hosts": []}
    assert (
        await client.patch("/api/v1/workspace", json=body, headers=developer)
    ).status_code == 403
    for bad, field in (
        (["ok.internal", "bad host!"], "allowed_private_hosts.1"),
        (["-dash.internal"], "allowed_private_hosts.0"),
        (["10.0.0"], "allowed_private_hosts.0"),
        ([f"h{i}.internal" for i in range(51)], "allowed_private_hosts"),
    ):
        refused = await client.patch(
            "/api/v1/workspace", json={"allowed_private_hosts": bad}, headers=admin
        )
        assert refused.status_code == 422, refused.text
        assert refused.json()["field"] == field
    named = await client.patch(
        "/api/v1/workspace", json={"allowed_private_hosts": ["bad host!"]}, headers=admin
    )
    assert "'bad host!'" in named.json()["detail"]


async def test_signing_secret_is_shown_only_when_rotated(
    client: httpx.AsyncClient, tenant: Tenant, services: Services
) -> None:
    url = "/api/v1/workspace/signing-secret"
    assert (await client.post(url, headers=tenant.auth(Role.DEVELOPER))).status_code == 403
    first = await client.post(url, headers=tenant.auth(Role.ADMIN))
    assert first.status_code == 200, first.text
    assert first.json()["header"] == "X-Switchboard-Signature"
    assert first.json()["signing_secret"].startswith("whsec_")
    second = (await client.post(url, headers=tenant.auth(Role.ADMIN))).json()["signing_secret"]
    assert second != first.json()["signing_secret"]
    workspace = await client.get("/api/v1/workspace", headers=tenant.auth())
    assert first.json()["signing_secret"] not in workspace.text
    assert second not in workspace.text
    async with services.sessions() as session:
        policy = await load_tool_policy(session, services.box, tenant.workspace_id)
    assert policy.signing_secret == second


async def test_calls_starting_together_create_one_signing_secret(
    tenant: Tenant, services: Services
) -> None:
    """Two sessions both see no secret yet; the first write wins and both sign with it."""
    async with services.sessions() as one, services.sessions() as two:
        first = await one.get(Workspace, tenant.workspace_id)
        second = await two.get(Workspace, tenant.workspace_id)
        assert first is not None and second is not None
        assert first.tool_signing_secret is None and second.tool_signing_secret is None
        secrets = [
            await signing_secret(one, services.box, first),
            await signing_secret(two, services.box, second),
        ]
    assert secrets[0] == secrets[1]
    async with services.sessions() as session:
        policy = await load_tool_policy(session, services.box, tenant.workspace_id)
    assert policy.signing_secret == secrets[0]


# --- stored secret headers stay with the host they were given for -----------------------


async def test_moving_a_tool_with_secret_headers_to_another_host_is_an_admin_action(
    client: httpx.AsyncClient, tenant: Tenant, services: Services
) -> None:
    tool = await create_tool(client, tenant, secret_headers={"Authorization": f"Bearer {SECRET}"})
    url = f"/api/v1/tools/{tool['id']}"
    developer = tenant.auth(Role.DEVELOPER)
    moved = await client.patch(url, json={"url": "https://evil.example/hook"}, headers=developer)
    assert moved.status_code == 403, moved.text
    assert moved.json()["field"] == "url"
    assert (await client.get(url, headers=developer)).json() == tool

    same_host = await client.patch(
        url, json={"url": "https://API.example.com/v2/availability"}, headers=developer
    )
    assert same_host.status_code == 200, same_host.text
    with_new_secrets = await client.patch(
        url,
        json={"url": "https://other.example/hook", "secret_headers": {"X-Key": "new"}},
        headers=developer,
    )
    assert with_new_secrets.status_code == 200, with_new_secrets.text
    admin = await client.patch(
        url, json={"url": "https://third.example/hook"}, headers=tenant.auth(Role.ADMIN)
    )
    assert admin.status_code == 200, admin.text
    async with services.sessions() as session:
        row = await session.scalar(select(Tool).where(Tool.id == tool["id"]))
        assert row is not None
        assert services.box.open(row.secret_headers) == {"X-Key": "new"}


async def test_a_tool_without_secret_headers_may_move_anywhere(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    tool = await create_tool(client, tenant, headers={"X-Api-Version": "2"})
    moved = await client.patch(
        f"/api/v1/tools/{tool['id']}",
        json={"url": "https://elsewhere.example/hook"},
        headers=tenant.auth(Role.DEVELOPER),
    )
    assert moved.status_code == 200, moved.text


@pytest.mark.parametrize(
    ("schema", "reason"),
    [
        ({"day": {"$ref": "https://schemas.example/day.json"}}, "properties.day.$ref"),
        ({"day": {"$ref": "day.json#/$defs/day"}}, "properties.day.$ref"),
        ({"day": {"$dynamicRef": "http://169.254.169.254/latest"}}, "properties.day.$dynamicRef"),
        ({"day": {"$recursiveRef": "urn:example:day"}}, "properties.day.$recursiveRef"),
        ({"day": {"type": "string", "pattern": "^(?=mon)\\w+$"}}, "properties.day.pattern"),
        ({"day": {"type": "object", "patternProperties": {"(a)\\1": {}}}}, "patternProperties"),
        (
            {"day": {"patternProperties": {"^x": {}}, "unevaluatedProperties": False}},
            "unevaluatedProperties cannot be used with patternProperties",
        ),
    ],
)
async def test_a_parameter_schema_that_could_fetch_or_backtrack_is_refused(
    client: httpx.AsyncClient, tenant: Tenant, schema: dict[str, Any], reason: str
) -> None:
    parameters = {"type": "object", "properties": schema}
    response = await post_tool(client, tenant, parameters=parameters)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "parameters"
    assert reason in response.json()["detail"]
    tool = await create_tool(client, tenant)
    patched = await client.patch(
        f"/api/v1/tools/{tool['id']}", json={"parameters": parameters}, headers=tenant.auth()
    )
    assert patched.status_code == 422, patched.text
    assert patched.json()["field"] == "parameters"


async def test_local_references_and_linear_patterns_are_accepted(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    parameters = {
        "type": "object",
        "$defs": {"day": {"type": "string", "pattern": "^(mon|tue)\\w*$"}},
        "properties": {"day": {"$ref": "#/$defs/day"}},
        "patternProperties": {"^x-[a-z]+$": {"type": "string"}},
    }
    tool = await create_tool(client, tenant, parameters=parameters)
    assert tool["parameters"] == parameters
