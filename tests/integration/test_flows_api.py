"""The flows API: save, read, export and import an agent's flow; every rule a save must pass."""

from __future__ import annotations

import copy
import logging
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from switchboard.db.models import FlowNode, Role, Tool
from switchboard.flows.schema import FlowDocument
from switchboard.services import Services
from tests.conftest import Tenant
from tests.integration.test_agents_api import create as create_agent

DESK = [{"name": "front_desk", "number": "+14158675309"}]

FLOW: dict[str, Any] = {
    "format": "switchboard.flow/v1",
    "nodes": [
        {
            "key": "greet",
            "is_initial": True,
            "role_messages": [{"content": "You are the front desk of Bright Smiles Dental."}],
            "task_messages": [{"content": "Ask whether the caller wants to book a cleaning."}],
            "transitions": [
                {"name": "book", "description": "The caller wants an appointment", "to": "book"},
                {"name": "ask_person", "description": "The caller wants a person", "to": "handoff"},
            ],
            "position": {"x": 0, "y": 0},
        },
        {
            "key": "book",
            "task_messages": [{"role": "system", "content": "Find a time that suits them."}],
            "transitions": [{"name": "booked", "description": "A time is agreed", "to": "goodbye"}],
            "respond_immediately": False,
            "position": {"x": 240, "y": 0},
        },
        {
            "key": "goodbye",
            "is_terminal": True,
            "pre_actions": [{"type": "say", "text": "See you then. Goodbye!"}],
            "post_actions": [{"type": "end_call"}],
            "position": {"x": 480, "y": 0},
        },
        {
            "key": "handoff",
            "is_terminal": True,
            "pre_actions": [{"type": "transfer", "department": "front_desk"}],
            "position": {"x": 240, "y": 160},
        },
    ],
}


def flow_url(agent: dict[str, Any], suffix: str = "") -> str:
    return f"/api/v1/agents/{agent['id']}/flow{suffix}"


def without_storage_fields(flow: dict[str, Any]) -> dict[str, Any]:
    return {
        **flow,
        "nodes": [
            {k: v for k, v in node.items() if k not in ("id", "updated_at")}
            for node in flow["nodes"]
        ],
    }


def with_tool(flow: dict[str, Any], name: str) -> dict[str, Any]:
    """``flow`` whose booking node offers the webhook tool ``name``, leading to goodbye."""
    changed = copy.deepcopy(flow)
    changed["nodes"][1]["tools"] = [{"name": name, "then": "goodbye"}]
    return changed


async def add_tool(
    services: Services, tenant: Tenant, name: str, agent_ids: list[str] | None = None
) -> str:
    """A webhook tool row, written directly: the flows API only reads tools."""
    async with services.sessions() as session:
        tool = Tool(
            workspace_id=tenant.workspace_id,
            name=name,
            url="https://tools.example.com/slots",
            agent_ids=agent_ids,
        )
        session.add(tool)
        await session.commit()
        return tool.id


async def put_flow(
    client: httpx.AsyncClient, tenant: Tenant, agent: dict[str, Any], flow: dict[str, Any]
) -> dict[str, Any]:
    response = await client.put(flow_url(agent), json=flow, headers=tenant.auth())
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_saved_flow_reads_back_exports_and_imports_into_another_agent(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    agent = await create_agent(client, tenant, transfer_destinations=DESK)
    saved = await put_flow(client, tenant, agent, FLOW)
    assert [node["key"] for node in saved["nodes"]] == ["greet", "book", "goodbye", "handoff"]
    assert all(node["id"].startswith("node_") and node["updated_at"] for node in saved["nodes"])
    assert (await client.get(flow_url(agent), headers=tenant.auth())).json() == saved

    exported = await client.get(flow_url(agent, "/export"), headers=tenant.auth())
    assert exported.status_code == 200
    assert exported.headers["content-disposition"] == 'attachment; filename="front-desk.flow.json"'
    document = exported.json()
    # Defaults spelled out (message roles, positions), nothing of storage.
    assert document == FlowDocument.model_validate(FLOW).model_dump(mode="json")
    assert document == without_storage_fields(saved)

    second = await create_agent(client, tenant, name="Night desk", transfer_destinations=DESK)
    imported = await put_flow(client, tenant, second, document)
    assert {n["id"] for n in imported["nodes"]}.isdisjoint({n["id"] for n in saved["nodes"]})
    again = await client.get(flow_url(second, "/export"), headers=tenant.auth())
    assert again.json() == document


async def test_nodes_come_back_initial_first_then_in_document_order(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    agent = await create_agent(client, tenant, transfer_destinations=DESK)
    nodes = FLOW["nodes"]
    shuffled = {**FLOW, "nodes": [nodes[3], nodes[1], nodes[0], nodes[2]]}
    saved = await put_flow(client, tenant, agent, shuffled)
    assert [node["key"] for node in saved["nodes"]] == ["greet", "handoff", "book", "goodbye"]


async def test_put_replaces_the_whole_flow(
    client: httpx.AsyncClient, tenant: Tenant, services: Services
) -> None:
    agent = await create_agent(client, tenant, transfer_destinations=DESK)
    await put_flow(client, tenant, agent, FLOW)
    smaller = {
        "nodes": [
            {
                "key": "only",
                "is_initial": True,
                "is_terminal": True,
                "pre_actions": [{"type": "say", "text": "We are closed."}, {"type": "end_call"}],
            }
        ]
    }
    saved = await put_flow(client, tenant, agent, smaller)
    assert [node["key"] for node in saved["nodes"]] == ["only"]
    async with services.sessions() as session:
        keys = list(
            await session.scalars(select(FlowNode.key).where(FlowNode.agent_id == agent["id"]))
        )
    assert keys == ["only"]


def _broken(change: Any) -> dict[str, Any]:
    flow = copy.deepcopy(FLOW)
    change(flow["nodes"])
    return flow


INVALID = [
    pytest.param(
        _broken(lambda n: n[1].update(is_initial=True)),
        "nodes",
        "a flow needs exactly one initial node; found 2",
        id="two-initial-nodes",
    ),
    pytest.param(
        _broken(lambda n: n[0].update(is_initial=False)),
        "nodes",
        "a flow needs exactly one initial node; found 0",
        id="no-initial-node",
    ),
    pytest.param(
        _broken(lambda n: n[1]["transitions"][0].update(to="payment")),
        "nodes.1.transitions.0.to",
        "node 'book' leads to 'payment', which is not a node of this flow",
        id="missing-target",
    ),
    pytest.param(
        _broken(lambda n: n[0]["transitions"].pop()),
        "nodes.3",
        "nodes ['handoff'] cannot be reached from the initial node 'greet'",
        id="unreachable-node",
    ),
    pytest.param(
        _broken(lambda n: n[2].update(post_actions=[])),
        "nodes.2.is_terminal",
        "node 'goodbye' is terminal, so it must end the call",
        id="terminal-that-does-not-end",
    ),
    pytest.param(
        _broken(lambda n: n[1].update(transitions=[])),
        "nodes.1.transitions",
        "node 'book' is a dead end",
        id="dead-end",
    ),
    pytest.param(
        _broken(lambda n: n[3].update(key="goodbye")),
        "nodes.3.key",
        "node keys must be unique; 'goodbye' is used more than once",
        id="duplicate-key",
    ),
    pytest.param(
        _broken(lambda n: n[0]["transitions"][0].update(name="end_call")),
        "nodes.0.transitions.0.name",
        "'end_call' is a built-in function",
        id="built-in-function-name",
    ),
    pytest.param(
        _broken(lambda n: n[2]["post_actions"].append({"type": "hang_up"})),
        "nodes.2.post_actions.1",
        "does not match any of the expected tags",
        id="unknown-action",
    ),
    pytest.param(
        with_tool(FLOW, "check_slots"),
        "nodes.1.tools.0.name",
        "tool 'check_slots' is not a webhook tool of this workspace that this agent may use",
        id="unknown-tool",
    ),
    pytest.param(
        _broken(lambda n: n[3]["pre_actions"][0].update(department="billing")),
        "nodes.3.pre_actions.0.department",
        "transfer department 'billing' is not among the agent's transfer_destinations",
        id="unknown-department",
    ),
]


@pytest.mark.parametrize(("flow", "field", "reason"), INVALID)
@pytest.mark.parametrize("suffix", ["", "/validate"])
async def test_invalid_flow_is_a_problem_naming_field_and_reason_and_saves_nothing(
    client: httpx.AsyncClient,
    tenant: Tenant,
    flow: dict[str, Any],
    field: str,
    reason: str,
    suffix: str,
) -> None:
    agent = await create_agent(client, tenant, transfer_destinations=DESK)
    before = await put_flow(client, tenant, agent, FLOW)
    method = "PUT" if suffix == "" else "POST"
    response = await client.request(
        method, flow_url(agent, suffix), json=flow, headers=tenant.auth()
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["field"] == field
    assert reason in problem["detail"]
    assert "Value error" not in problem["detail"]
    assert (await client.get(flow_url(agent), headers=tenant.auth())).json() == before


async def test_validate_is_a_dry_run(client: httpx.AsyncClient, tenant: Tenant) -> None:
    agent = await create_agent(client, tenant, transfer_destinations=DESK)
    checked = await client.post(flow_url(agent, "/validate"), json=FLOW, headers=tenant.auth())
    assert checked.status_code == 200, checked.text
    assert checked.json() == {"valid": True}
    missing = await client.get(flow_url(agent), headers=tenant.auth())
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"


async def test_delete_returns_the_agent_to_its_plain_prompt(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    agent = await create_agent(client, tenant, transfer_destinations=DESK)
    await put_flow(client, tenant, agent, FLOW)
    deleted = await client.delete(flow_url(agent), headers=tenant.auth())
    assert deleted.status_code == 204
    for suffix in ("", "/export"):
        assert (await client.get(flow_url(agent, suffix), headers=tenant.auth())).status_code == 404
    again = await client.delete(flow_url(agent), headers=tenant.auth())
    assert again.status_code == 404
    assert (await client.get(f"/api/v1/agents/{agent['id']}", headers=tenant.auth())).is_success


async def test_runtime_config_carries_the_flow_from_put_until_delete(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    agent = await create_agent(client, tenant, transfer_destinations=DESK)
    runtime_url = f"/api/v1/agents/{agent['id']}/runtime-config"
    plain = await client.get(runtime_url, headers=tenant.auth())
    assert plain.json()["flow"] is None
    assert (await client.get(runtime_url, headers=tenant.auth())).headers[
        "x-config-source"
    ] == "cache"

    await put_flow(client, tenant, agent, FLOW)
    with_flow = await client.get(runtime_url, headers=tenant.auth())
    assert with_flow.headers["x-config-source"] == "database"
    assert with_flow.json()["flow"] == FlowDocument.model_validate(FLOW).model_dump(mode="json")

    await client.delete(flow_url(agent), headers=tenant.auth())
    after = await client.get(runtime_url, headers=tenant.auth())
    assert after.headers["x-config-source"] == "database"
    assert after.json()["flow"] is None


async def test_node_tools_are_stored_by_id_and_exported_by_name(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant, services: Services
) -> None:
    agent = await create_agent(client, tenant, transfer_destinations=DESK)
    tool_id = await add_tool(services, tenant, "check_slots")
    flow = with_tool(FLOW, "check_slots")
    saved = await put_flow(client, tenant, agent, flow)
    assert saved["nodes"][1]["tools"] == [{"name": "check_slots", "then": "goodbye"}]
    async with services.sessions() as session:
        stored = await session.scalar(
            select(FlowNode.tools).where(FlowNode.agent_id == agent["id"], FlowNode.key == "book")
        )
    assert stored == [{"tool_id": tool_id, "then": "goodbye"}]
    exported = (await client.get(flow_url(agent, "/export"), headers=tenant.auth())).json()
    assert exported["nodes"][1]["tools"] == [{"name": "check_slots", "then": "goodbye"}]
    assert tool_id not in str(exported)

    # Another workspace with a tool of the same name imports it onto its own tool.
    theirs = await create_agent(client, other_tenant, transfer_destinations=DESK)
    their_tool_id = await add_tool(services, other_tenant, "check_slots")
    await put_flow(client, other_tenant, theirs, exported)
    async with services.sessions() as session:
        stored = await session.scalar(
            select(FlowNode.tools).where(FlowNode.agent_id == theirs["id"], FlowNode.key == "book")
        )
    assert stored == [{"tool_id": their_tool_id, "then": "goodbye"}]


async def test_a_tool_restricted_to_other_agents_is_refused(
    client: httpx.AsyncClient, tenant: Tenant, services: Services
) -> None:
    agent = await create_agent(client, tenant, transfer_destinations=DESK)
    other = await create_agent(client, tenant, name="Billing", transfer_destinations=DESK)
    await add_tool(services, tenant, "check_slots", agent_ids=[other["id"]])
    flow = with_tool(FLOW, "check_slots")
    refused = await client.put(flow_url(agent), json=flow, headers=tenant.auth())
    assert refused.status_code == 422
    assert refused.json()["field"] == "nodes.1.tools.0.name"
    assert "'check_slots' is not a webhook tool" in refused.json()["detail"]
    await put_flow(client, tenant, other, flow)


async def test_a_tool_deleted_behind_the_flow_is_left_out_with_a_warning(
    client: httpx.AsyncClient,
    tenant: Tenant,
    services: Services,
    caplog: pytest.LogCaptureFixture,
) -> None:
    agent = await create_agent(client, tenant, transfer_destinations=DESK)
    tool_id = await add_tool(services, tenant, "check_slots")
    await put_flow(client, tenant, agent, with_tool(FLOW, "check_slots"))
    async with services.sessions() as session:
        await session.delete(await session.get_one(Tool, tool_id))
        await session.commit()
    with caplog.at_level(logging.WARNING, logger="switchboard.flows.service"):
        flow = (await client.get(flow_url(agent), headers=tenant.auth())).json()
    assert flow["nodes"][1]["tools"] == []
    assert tool_id in caplog.text


async def test_viewer_reads_but_cannot_change_a_flow(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    agent = await create_agent(client, tenant, transfer_destinations=DESK)
    saved = await put_flow(client, tenant, agent, FLOW)
    viewer = tenant.auth(Role.VIEWER)
    assert (await client.get(flow_url(agent), headers=viewer)).json() == saved
    assert (await client.get(flow_url(agent, "/export"), headers=viewer)).status_code == 200
    for method, suffix in (("PUT", ""), ("POST", "/validate"), ("DELETE", "")):
        body = FLOW if method != "DELETE" else None
        response = await client.request(method, flow_url(agent, suffix), json=body, headers=viewer)
        assert response.status_code == 403, (method, suffix)
    assert (await client.get(flow_url(agent), headers=viewer)).json() == saved


async def test_another_workspace_finds_no_agent_and_changes_nothing(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    agent = await create_agent(client, tenant, transfer_destinations=DESK)
    saved = await put_flow(client, tenant, agent, FLOW)
    stranger = other_tenant.auth()
    for method, suffix in (
        ("GET", ""),
        ("GET", "/export"),
        ("PUT", ""),
        ("POST", "/validate"),
        ("DELETE", ""),
    ):
        body = FLOW if method in ("PUT", "POST") else None
        response = await client.request(
            method, flow_url(agent, suffix), json=body, headers=stranger
        )
        assert response.status_code == 404, (method, suffix, response.text)
        assert response.json()["detail"] == f"agent {agent['id']!r} not found"
    assert (await client.get(flow_url(agent), headers=tenant.auth())).json() == saved


@pytest.mark.parametrize(
    ("parameters", "reason"),
    [
        (
            {"type": "object", "properties": {"who": {"$ref": "http://10.0.0.1/who.json"}}},
            "properties.who.$ref: 'http://10.0.0.1/who.json' is not a reference within",
        ),
        (
            {"type": "object", "properties": {"who": {"type": "string", "pattern": "(?<!x)y"}}},
            "properties.who.pattern: '(?<!x)y' cannot run on RE2",
        ),
    ],
)
async def test_transition_parameters_that_could_fetch_or_backtrack_are_refused(
    client: httpx.AsyncClient, tenant: Tenant, parameters: dict[str, Any], reason: str
) -> None:
    agent = await create_agent(client, tenant, transfer_destinations=DESK)
    flow = _broken(lambda n: n[0]["transitions"][0].update(parameters=parameters))
    response = await client.put(flow_url(agent), json=flow, headers=tenant.auth())
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["field"] == "nodes.0.transitions.0.parameters"
    assert reason in problem["detail"]
