"""The agents API: defaults, validation, version history and the runtime config."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import func, select

from switchboard.agents.schema import MAX_PROMPT_CHARS
from switchboard.app import create_app
from switchboard.config import Environment, Settings
from switchboard.db.models import Agent, AgentVersion, Role
from switchboard.services import Services
from tests.conftest import Tenant

MINIMAL = {"name": "Front desk", "system_prompt": "You answer the phone.", "greeting": "Hello!"}


async def create(client: httpx.AsyncClient, tenant: Tenant, **fields: Any) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/agents", json={**MINIMAL, **fields}, headers=tenant.auth()
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def count_agents(services: Services) -> int:
    async with services.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(Agent)) or 0)


async def test_omitted_providers_take_the_embedded_defaults(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    agent = await create(client, tenant)
    assert agent["stt"]["provider"] == "faster_whisper"
    assert agent["stt"]["model"] == "tiny.en"
    assert agent["llm"]["provider"] == "llama_cpp"
    assert agent["tts"] == {
        "provider": "piper",
        "model": None,
        "voice": "en_US-joe-medium",
        "speed": 1.0,
        "base_url": None,
        "options": {},
    }
    assert agent["version"] == 1
    assert agent["id"].startswith("agt_")
    assert agent["supported_languages"] == ["en"]
    fetched = await client.get(f"/api/v1/agents/{agent['id']}", headers=tenant.auth())
    assert fetched.json() == agent


async def test_full_configuration_round_trips(client: httpx.AsyncClient, tenant: Tenant) -> None:
    stored = await client.put(
        "/api/v1/providers/openai/credentials", json={"api_key": "sk-test"}, headers=tenant.auth()
    )
    assert stored.status_code == 204
    agent = await create(
        client,
        tenant,
        description="Books cleanings",
        greeting="Hi {{first_name}}, this is {{agent_name}}.",
        language="en",
        supported_languages=["es"],
        llm={"provider": "openai", "model": "gpt-4o-mini", "temperature": 0.5},
        fallbacks={"llm": [{"provider": "llama_cpp"}]},
        pipeline={"idle_reprompt_seconds": 5, "idle_hangup_seconds": 20, "max_call_seconds": 600},
        business_hours={
            "timezone": "America/New_York",
            "weekly": {"mon": [{"start": "09:00", "end": "17:00"}]},
            "holidays": ["2026-12-25"],
        },
        transfer_destinations=[{"name": "sales", "number": "+1 415 867 5309"}],
        variables={"first_name": {"type": "string", "default": "there"}},
        analysis_schema=[{"name": "booked", "type": "boolean"}],
        recording_enabled=False,
    )
    assert agent["supported_languages"] == ["en", "es"]
    assert agent["transfer_destinations"][0]["number"] == "+14158675309"
    assert agent["business_hours"]["weekly"]["mon"] == [{"start": "09:00", "end": "17:00"}]
    assert agent["fallbacks"]["llm"][0]["provider"] == "llama_cpp"
    assert agent["recording_enabled"] is False


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({**MINIMAL, "colour": "blue"}, 422, "colour"),
        ({**MINIMAL, "name": 42}, 422, "name"),
        ({"name": "No prompt"}, 422, "system_prompt"),
        ({**MINIMAL, "system_prompt": "x" * (MAX_PROMPT_CHARS + 1)}, 422, "system_prompt"),
        (
            {**MINIMAL, "business_hours": {"timezone": "Mars/Olympus"}},
            422,
            "business_hours.timezone",
        ),
        ({**MINIMAL, "stt": {"provider": "Deep Gram!"}}, 422, "stt.provider"),
        (
            {**MINIMAL, "transfer_destinations": [{"name": "sales", "number": "12"}]},
            422,
            "transfer_destinations.0.number",
        ),
        (
            {**MINIMAL, "pipeline": {"idle_reprompt_seconds": 30, "idle_hangup_seconds": 10}},
            422,
            "pipeline",
        ),
        ({**MINIMAL, "greeting": "Hi {{nickname}}"}, 422, "body"),
        ({**MINIMAL, "tool_ids": ["tool_missing"]}, 422, "tool_ids"),
    ],
)
async def test_bad_input_is_a_problem_naming_the_field_and_writes_nothing(
    client: httpx.AsyncClient,
    tenant: Tenant,
    services: Services,
    body: dict[str, Any],
    status: int,
    field: str,
) -> None:
    response = await client.post("/api/v1/agents", json=body, headers=tenant.auth())
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == status
    assert problem["field"] == field
    assert problem["detail"]
    assert await count_agents(services) == 0


async def test_malformed_json_is_400(client: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await client.post(
        "/api/v1/agents",
        content=b'{"name": "x",',
        headers={**tenant.auth(), "content-type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["field"] == "body"


async def test_oversize_body_is_413(client: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await client.post(
        "/api/v1/agents",
        json={**MINIMAL, "description": "x" * 1_100_000},
        headers=tenant.auth(),
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"


async def test_duplicate_name_is_409(
    client: httpx.AsyncClient, tenant: Tenant, services: Services
) -> None:
    await create(client, tenant)
    response = await client.post("/api/v1/agents", json=MINIMAL, headers=tenant.auth())
    assert response.status_code == 409
    assert response.json()["field"] == "name"
    assert await count_agents(services) == 1


async def test_patch_makes_a_version_and_history_can_be_restored(
    client: httpx.AsyncClient, tenant: Tenant, services: Services
) -> None:
    agent = await create(client, tenant)
    url = f"/api/v1/agents/{agent['id']}"
    changed = await client.patch(url, json={"greeting": "Good morning!"}, headers=tenant.auth())
    assert changed.status_code == 200
    assert changed.json()["greeting"] == "Good morning!"
    assert changed.json()["version"] == 2
    assert changed.json()["system_prompt"] == MINIMAL["system_prompt"]

    same = await client.patch(url, json={"greeting": "Good morning!"}, headers=tenant.auth())
    assert same.json()["version"] == 2

    versions = (await client.get(f"{url}/versions", headers=tenant.auth())).json()
    assert [v["version"] for v in versions] == [2, 1]
    assert versions[0]["changed_fields"] == ["greeting"]
    assert versions[1]["config"]["greeting"] == "Hello!"

    restored = await client.post(f"{url}/versions/1/restore", headers=tenant.auth())
    assert restored.json()["greeting"] == "Hello!"
    assert restored.json()["version"] == 3
    async with services.sessions() as session:
        count = await session.scalar(select(func.count()).select_from(AgentVersion))
    assert count == 3


async def test_invalid_patch_changes_nothing(client: httpx.AsyncClient, tenant: Tenant) -> None:
    agent = await create(client, tenant)
    url = f"/api/v1/agents/{agent['id']}"
    bad = await client.patch(
        url, json={"greeting": "New", "pipeline": {"max_call_seconds": 1}}, headers=tenant.auth()
    )
    assert bad.status_code == 422
    assert bad.json()["field"] == "pipeline.max_call_seconds"
    assert (await client.get(url, headers=tenant.auth())).json() == agent


async def test_list_pages_through_agents(client: httpx.AsyncClient, tenant: Tenant) -> None:
    ids = [(await create(client, tenant, name=f"Agent {i}"))["id"] for i in range(5)]
    seen: list[str] = []
    after = None
    while True:
        params = {"limit": 2, **({"after": after} if after else {})}
        page = (await client.get("/api/v1/agents", params=params, headers=tenant.auth())).json()
        seen += [a["id"] for a in page["data"]]
        after = page["next_after"]
        if after is None:
            break
    assert seen == sorted(ids)


async def test_delete_then_404(client: httpx.AsyncClient, tenant: Tenant) -> None:
    agent = await create(client, tenant)
    url = f"/api/v1/agents/{agent['id']}"
    assert (await client.delete(url, headers=tenant.auth())).status_code == 204
    missing = await client.get(url, headers=tenant.auth())
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"


async def test_a_department_the_flow_transfers_to_cannot_be_removed(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    desk = {"name": "front_desk", "number": "+14158675309"}
    agent = await create(client, tenant)  # version 1: no destinations
    url = f"/api/v1/agents/{agent['id']}"
    added = await client.patch(url, json={"transfer_destinations": [desk]}, headers=tenant.auth())
    assert added.status_code == 200, added.text
    flow = {
        "nodes": [
            {
                "key": "start",
                "is_initial": True,
                "is_terminal": True,
                "pre_actions": [{"type": "transfer", "department": "front_desk"}],
            }
        ]
    }
    saved = await client.put(f"/api/v1/agents/{agent['id']}/flow", json=flow, headers=tenant.auth())
    assert saved.status_code == 200, saved.text

    restored = await client.post(f"{url}/versions/1/restore", headers=tenant.auth())
    assert restored.status_code == 422
    assert restored.json()["field"] == "transfer_destinations"
    removed = await client.patch(url, json={"transfer_destinations": []}, headers=tenant.auth())
    assert removed.status_code == 422
    assert removed.json()["field"] == "transfer_destinations"
    assert "['front_desk']" in removed.json()["detail"]
    renamed = await client.patch(url, json={"greeting": "Hi"}, headers=tenant.auth())
    assert renamed.status_code == 200  # other changes still go through
    assert (await client.get(url, headers=tenant.auth())).json()["transfer_destinations"] == [
        {**desk, "description": ""}
    ]


# --- stored provider keys stay where their owner sent them ------------------------------


async def put_key(client: httpx.AsyncClient, tenant: Tenant, provider: str) -> None:
    stored = await client.put(
        f"/api/v1/providers/{provider}/credentials", json={"api_key": "k-1"}, headers=tenant.auth()
    )
    assert stored.status_code == 204, stored.text


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"llm": {"provider": "openai", "base_url": "https://evil.example/v1"}}, "llm.base_url"),
        ({"stt": {"provider": "openai", "base_url": "https://evil.example/"}}, "stt.base_url"),
        (
            {"fallbacks": {"llm": [{"provider": "openai", "base_url": "https://evil.example/"}]}},
            "fallbacks.llm.0.base_url",
        ),
    ],
)
async def test_a_developer_cannot_create_an_agent_sending_a_stored_key_elsewhere(
    client: httpx.AsyncClient,
    tenant: Tenant,
    services: Services,
    fields: dict[str, Any],
    field: str,
) -> None:
    await put_key(client, tenant, "openai")
    body = {**MINIMAL, **fields}
    refused = await client.post("/api/v1/agents", json=body, headers=tenant.auth(Role.DEVELOPER))
    assert refused.status_code == 403, refused.text
    assert refused.json()["field"] == field
    assert await count_agents(services) == 0
    allowed = await client.post("/api/v1/agents", json=body, headers=tenant.auth(Role.ADMIN))
    assert allowed.status_code == 201, allowed.text


async def test_moving_a_credentialed_provider_to_a_new_host_is_an_admin_action(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    await put_key(client, tenant, "openai")
    regional = {"provider": "openai", "base_url": "https://eu.openai.example/v1"}
    agent = await create(client, tenant, llm=regional)  # the owner: version 1
    url = f"/api/v1/agents/{agent['id']}"
    developer = tenant.auth(Role.DEVELOPER)

    moved = await client.patch(
        url, json={"llm": {**regional, "base_url": "https://evil.example/v1"}}, headers=developer
    )
    assert moved.status_code == 403, moved.text
    assert moved.json()["field"] == "llm.base_url"
    assert (await client.get(url, headers=developer)).json() == agent

    for change in (
        {"greeting": "Hi there"},  # anything else stays a developer action
        {"llm": {**regional, "base_url": "https://EU.openai.example/v2", "temperature": 1}},
        {"llm": {"provider": "openai"}},  # back to the provider's own endpoint
    ):
        changed = await client.patch(url, json=change, headers=developer)
        assert changed.status_code == 200, (change, changed.text)

    restored = await client.post(f"{url}/versions/1/restore", headers=developer)
    assert restored.status_code == 403, restored.text
    assert restored.json()["field"] == "llm.base_url"
    admin = await client.post(f"{url}/versions/1/restore", headers=tenant.auth(Role.ADMIN))
    assert admin.status_code == 200, admin.text
    assert admin.json()["llm"]["base_url"] == regional["base_url"]


async def test_a_provider_without_stored_keys_may_be_pointed_anywhere_public(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    own = {"provider": "openai_compatible", "base_url": "https://llm.example/v1"}
    created = await client.post(
        "/api/v1/agents", json={**MINIMAL, "llm": own}, headers=tenant.auth(Role.DEVELOPER)
    )
    assert created.status_code == 201, created.text


async def assert_creation_refused(
    http: httpx.AsyncClient, tenant: Tenant, services: Services, fields: dict[str, Any], field: str
) -> None:
    """Creating an agent with ``fields`` is a 422 naming ``field``, and stores nothing."""
    refused = await http.post("/api/v1/agents", json={**MINIMAL, **fields}, headers=tenant.auth())
    assert refused.status_code == 422, refused.text
    assert refused.json()["field"] == field
    assert await count_agents(services) == 0


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        (
            {"llm": {"provider": "openai_compatible", "base_url": "http://127.0.0.1:11434/v1"}},
            "llm.base_url",
        ),
        (
            {"llm": {"provider": "openai_compatible", "base_url": "http://localhost:11434/v1"}},
            "llm.base_url",
        ),
        ({"tts": {"base_url": "http://[::1]:5000/"}}, "tts.base_url"),
        ({"stt": {"base_url": "ws://10.0.0.5/listen"}}, "stt.base_url"),
        (
            {"fallbacks": {"llm": [{"base_url": "http://169.254.169.254/"}]}},
            "fallbacks.llm.0.base_url",
        ),
    ],
)
async def test_a_private_provider_endpoint_needs_the_workspace_policy(
    client: httpx.AsyncClient,
    tenant: Tenant,
    services: Services,
    fields: dict[str, Any],
    field: str,
) -> None:
    await assert_creation_refused(client, tenant, services, fields, field)
    agent = await create(client, tenant)
    patched = await client.patch(
        f"/api/v1/agents/{agent['id']}", json=fields, headers=tenant.auth()
    )
    assert patched.status_code == 422, patched.text
    assert patched.json()["field"] == field


async def test_allowed_private_hosts_open_provider_endpoints_but_not_link_local(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    allowed = await client.patch(
        "/api/v1/workspace",
        json={"allowed_private_hosts": ["localhost", "10.0.0.5"]},
        headers=tenant.auth(),
    )
    assert allowed.status_code == 200, allowed.text
    await create(
        client,
        tenant,
        llm={"provider": "openai_compatible", "base_url": "http://localhost:11434/v1"},
        stt={"base_url": "ws://10.0.0.5/listen"},
    )
    refused = await client.post(
        "/api/v1/agents",
        json={**MINIMAL, "name": "Other", "tts": {"base_url": "http://169.254.169.254/"}},
        headers=tenant.auth(),
    )
    assert refused.status_code == 422
    assert refused.json()["field"] == "tts.base_url"


# --- test-only providers stay out of production -----------------------------------------

FAKE_STT = {"provider": "fake", "options": {"transcripts": ["hello"]}}


@pytest.fixture
async def production(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A production server on the same database as ``client`` (same keys, same agents)."""
    application = create_app(settings.model_copy(update={"environment": Environment.PRODUCTION}))
    async with LifespanManager(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://prod") as http:
            yield http


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"stt": FAKE_STT}, "stt.provider"),
        ({"llm": {"provider": "fake"}}, "llm.provider"),
        (
            {"fallbacks": {"tts": [{"provider": "piper"}, {"provider": "fake"}]}},
            "fallbacks.tts.1.provider",
        ),
    ],
)
async def test_testing_providers_are_refused_in_production(
    client: httpx.AsyncClient,
    production: httpx.AsyncClient,
    tenant: Tenant,
    services: Services,
    fields: dict[str, Any],
    field: str,
) -> None:
    await assert_creation_refused(production, tenant, services, fields, field)

    agent = await create(client, tenant, **fields)  # development allows them
    url = f"/api/v1/agents/{agent['id']}"
    plain = {"stt": {}, "llm": {}, "tts": {}, "fallbacks": {}}
    assert (await client.patch(url, json=plain, headers=tenant.auth())).status_code == 200
    restored = await production.post(f"{url}/versions/1/restore", headers=tenant.auth())
    assert restored.status_code == 422, restored.text
    assert restored.json()["field"] == field
    patched = await production.patch(url, json=fields, headers=tenant.auth())
    assert patched.status_code == 422, patched.text
    assert patched.json()["field"] == field
    changed = await production.patch(url, json={"greeting": "Hi"}, headers=tenant.auth())
    assert changed.status_code == 200, changed.text
