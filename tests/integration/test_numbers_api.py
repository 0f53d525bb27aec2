"""Phone numbers: E.164, one agent per number, unique across every workspace."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import Tenant
from tests.integration.test_agents_api import create as create_agent


async def post_number(client: httpx.AsyncClient, tenant: Tenant, **body: Any) -> httpx.Response:
    return await client.post("/api/v1/numbers", json=body, headers=tenant.auth())


async def test_number_is_normalised_and_bound_to_an_agent(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    agent = await create_agent(client, tenant)
    response = await post_number(
        client, tenant, number="+1 (415) 867-5309", carrier="twilio", agent_id=agent["id"]
    )
    assert response.status_code == 201, response.text
    number = response.json()
    assert number["number"] == "+14158675309"
    assert number["agent_id"] == agent["id"]
    listed = (await client.get("/api/v1/numbers", headers=tenant.auth())).json()["data"]
    assert [n["id"] for n in listed] == [number["id"]]


async def test_simulator_numbers_only_need_the_e164_shape(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    ok = await post_number(client, tenant, number="+15550100", carrier="simulator")
    assert ok.status_code == 201
    refused = await post_number(client, tenant, number="+15550101", carrier="twilio")
    assert refused.status_code == 422
    assert refused.json()["field"] == "number"


async def test_invalid_number_names_the_field(client: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await post_number(client, tenant, number="867-5309", carrier="twilio")
    assert response.status_code == 422
    assert response.json()["field"] == "number"
    unknown = await post_number(client, tenant, number="+14158675309", carrier="pigeon")
    assert unknown.json()["field"] == "carrier"


async def test_a_number_belongs_to_one_workspace_only(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    first = await post_number(client, tenant, number="+14158675309", carrier="twilio")
    assert first.status_code == 201
    again = await post_number(client, tenant, number="+1 415 867 5309", carrier="twilio")
    assert again.status_code == 409
    assert again.json()["field"] == "number"
    elsewhere = await post_number(client, other_tenant, number="+14158675309", carrier="vobiz")
    assert elsewhere.status_code == 409


async def test_another_workspaces_agent_cannot_be_bound(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    foreign = await create_agent(client, other_tenant)
    response = await post_number(
        client, tenant, number="+14158675309", carrier="twilio", agent_id=foreign["id"]
    )
    assert response.status_code == 422
    assert response.json()["field"] == "agent_id"
    assert (await client.get("/api/v1/numbers", headers=tenant.auth())).json()["data"] == []


async def test_rebind_unbind_and_delete(client: httpx.AsyncClient, tenant: Tenant) -> None:
    first = await create_agent(client, tenant, name="First")
    second = await create_agent(client, tenant, name="Second")
    created = await post_number(
        client, tenant, number="+14158675309", carrier="twilio", agent_id=first["id"]
    )
    url = f"/api/v1/numbers/{created.json()['id']}"
    moved = await client.patch(
        url, json={"agent_id": second["id"], "label": "main line"}, headers=tenant.auth()
    )
    assert moved.json()["agent_id"] == second["id"]
    assert moved.json()["label"] == "main line"
    unbound = await client.patch(url, json={"agent_id": None}, headers=tenant.auth())
    assert unbound.json()["agent_id"] is None
    assert unbound.json()["label"] == "main line"
    assert (await client.delete(url, headers=tenant.auth())).status_code == 204
    assert (await client.get(url, headers=tenant.auth())).status_code == 404


async def test_deleting_the_agent_unbinds_its_number(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    agent = await create_agent(client, tenant)
    created = await post_number(
        client, tenant, number="+14158675309", carrier="twilio", agent_id=agent["id"]
    )
    await client.delete(f"/api/v1/agents/{agent['id']}", headers=tenant.auth())
    number = await client.get(f"/api/v1/numbers/{created.json()['id']}", headers=tenant.auth())
    assert number.json()["agent_id"] is None
