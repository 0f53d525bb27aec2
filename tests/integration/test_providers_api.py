"""The provider catalog, workspace credentials, and agent saves checked against both."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from switchboard.db.models import ProviderCredential, Role
from switchboard.services import Services
from tests.conftest import Tenant
from tests.integration.test_agents_api import MINIMAL

SECRET = "dg-secret-value-123456"


async def save(client: httpx.AsyncClient, tenant: Tenant, **fields: Any) -> httpx.Response:
    return await client.post("/api/v1/agents", json={**MINIMAL, **fields}, headers=tenant.auth())


async def test_catalog_lists_every_kind_with_its_details(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    catalog = (await client.get("/api/v1/providers", headers=tenant.auth())).json()
    by_key = {(p["kind"], p["id"]): p for p in catalog}
    whisper = by_key[("stt", "faster_whisper")]
    assert whisper["local"] is True
    assert whisper["default_model"] == "tiny.en"
    assert whisper["credentials"] == []
    assert "beam_size" in whisper["options_schema"]["properties"]
    assert by_key[("tts", "piper")]["voices"] == ["en_US-joe-medium"]
    assert by_key[("llm", "openai")]["credentials"] == ["api_key"]
    assert by_key[("llm", "openai")]["credentials_set"] is False
    assert {p["kind"] for p in catalog} == {"stt", "llm", "tts", "vad", "turn"}
    only_tts = (await client.get("/api/v1/providers?kind=tts", headers=tenant.auth())).json()
    assert {p["kind"] for p in only_tts} == {"tts"}


async def test_credentials_are_write_only_and_unlock_the_provider(
    client: httpx.AsyncClient, tenant: Tenant, services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    blocked = await save(client, tenant, stt={"provider": "deepgram"})
    assert blocked.status_code == 422
    assert blocked.json()["field"] == "stt.provider"
    assert "/api/v1/providers/deepgram/credentials" in blocked.json()["detail"]

    put = await client.put(
        "/api/v1/providers/deepgram/credentials", json={"api_key": SECRET}, headers=tenant.auth()
    )
    assert put.status_code == 204
    catalog = (await client.get("/api/v1/providers", headers=tenant.auth())).text
    assert SECRET not in catalog
    assert '"credentials_set":true' in catalog.replace(" ", "")

    agent = await save(client, tenant, stt={"provider": "deepgram"}, tts={"provider": "deepgram"})
    assert agent.status_code == 201, agent.text
    assert agent.json()["stt"]["model"] == "nova-3"
    assert agent.json()["tts"]["voice"] == "aura-2-thalia-en"
    async with services.sessions() as session:
        row = await session.scalar(select(ProviderCredential))
        assert row is not None and SECRET.encode() not in row.secrets
    assert SECRET not in caplog.text

    deleted = await client.delete("/api/v1/providers/deepgram/credentials", headers=tenant.auth())
    assert deleted.status_code == 204
    again = await save(client, tenant, name="Second", stt={"provider": "deepgram"})
    assert again.status_code == 422


@pytest.mark.parametrize(
    ("provider", "body", "field"),
    [
        ("deepgram", {"api_key": ""}, "api_key"),
        ("deepgram", {"api_key": "k", "region": "eu"}, "region"),
        ("deepgram", {}, "api_key"),
        ("faster_whisper", {"api_key": "k"}, "provider"),
        ("nonexistent", {"api_key": "k"}, "provider"),
    ],
)
async def test_bad_credentials_name_the_field(
    client: httpx.AsyncClient, tenant: Tenant, provider: str, body: dict[str, Any], field: str
) -> None:
    response = await client.put(
        f"/api/v1/providers/{provider}/credentials", json=body, headers=tenant.auth()
    )
    assert response.status_code in (404, 422), response.text
    assert response.json()["field"] == field


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"stt": {"provider": "whisperx"}}, "stt.provider"),
        ({"stt": {"provider": "faster_whisper", "model": "large-v3"}}, "stt.model"),
        ({"tts": {"provider": "piper", "voice": "en_GB-alan"}}, "tts.voice"),
        (
            {"stt": {"provider": "faster_whisper", "options": {"beam_size": 9}}},
            "stt.options.beam_size",
        ),
        (
            {"stt": {"provider": "faster_whisper", "options": {"temperature": 1}}},
            "stt.options.temperature",
        ),
        ({"llm": {"provider": "openai_compatible", "model": "x"}}, "llm.base_url"),
        ({"fallbacks": {"llm": [{"provider": "anthropic"}]}}, "fallbacks.llm.0.provider"),
        ({"language": "es"}, "language"),
    ],
)
async def test_invalid_provider_choices_are_refused_at_save(
    client: httpx.AsyncClient, tenant: Tenant, fields: dict[str, Any], field: str
) -> None:
    response = await save(client, tenant, **fields)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field


async def test_a_speaker_of_another_language_can_pick_providers_that_speak_it(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    response = await save(
        client,
        tenant,
        language="es",
        stt={"provider": "fake"},
        llm={"provider": "scripted"},
        tts={"provider": "espeak", "voice": "es"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["llm"]["model"] is None


async def test_openai_compatible_endpoint_needs_no_credentials(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    # A server on this machine is a private address: the workspace must allow it first.
    allowed = await client.patch(
        "/api/v1/workspace",
        json={"allowed_private_hosts": ["127.0.0.1"]},
        headers=tenant.auth(Role.ADMIN),
    )
    assert allowed.status_code == 200, allowed.text
    response = await save(
        client,
        tenant,
        llm={
            "provider": "openai_compatible",
            "model": "llama3.2",
            "base_url": "http://127.0.0.1:11434/v1",
        },
    )
    assert response.status_code == 201, response.text
