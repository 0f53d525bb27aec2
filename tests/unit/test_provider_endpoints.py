"""Provider endpoints are checked against the workspace's address policy before a call.

Every lookup goes to a fake resolver; no test touches DNS.
"""

from __future__ import annotations

from typing import Any

import pytest

from switchboard.agents.schema import AgentConfig
from switchboard.errors import InvalidInput
from switchboard.providers.endpoints import check_provider_endpoints
from tests.tools.test_safe_http import FakeResolver, answering


def agent(**fields: Any) -> AgentConfig:
    return AgentConfig.model_validate({"name": "A", "system_prompt": "p", **fields})


async def test_default_endpoints_need_no_lookup() -> None:
    resolver = FakeResolver()
    await check_provider_endpoints(agent(), (), resolver)
    assert resolver.lookups == []


async def test_public_endpoints_pass_and_every_one_is_looked_up() -> None:
    resolver = answering(llm__example="93.184.216.34", tts__example="2606:4700::1")
    config = agent(
        llm={"provider": "openai_compatible", "base_url": "https://llm.example/v1"},
        fallbacks={"tts": [{"provider": "piper"}, {"base_url": "wss://tts.example/stream"}]},
    )
    await check_provider_endpoints(config, (), resolver)
    assert sorted(resolver.lookups) == ["llm.example", "tts.example"]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"llm": {"base_url": "http://llm.example/v1"}}, "llm.base_url"),
        ({"stt": {"base_url": "wss://llm.example/listen"}}, "stt.base_url"),
        (
            {"fallbacks": {"tts": [{"provider": "piper"}, {"base_url": "https://llm.example/"}]}},
            "fallbacks.tts.1.base_url",
        ),
        ({"tts": {"base_url": "http://127.0.0.1:8080/"}}, "tts.base_url"),
        ({"llm": {"base_url": "http://unknown.example/"}}, "llm.base_url"),
    ],
)
async def test_an_endpoint_the_policy_refuses_is_named(fields: dict[str, Any], field: str) -> None:
    resolver = answering(llm__example=["93.184.216.34", "10.1.2.3"])
    with pytest.raises(InvalidInput) as caught:
        await check_provider_endpoints(agent(**fields), (), resolver)
    assert caught.value.field == field


async def test_allowed_private_hosts_open_endpoints_but_not_metadata() -> None:
    resolver = answering(ollama__internal="10.0.0.7", sneaky__internal="169.254.169.254")
    allowed = ["ollama.internal", "sneaky.internal", "127.0.0.1"]
    await check_provider_endpoints(
        agent(
            llm={"provider": "openai_compatible", "base_url": "http://ollama.internal:11434/v1"},
            tts={"base_url": "http://127.0.0.1:5000/"},
        ),
        allowed,
        resolver,
    )
    with pytest.raises(InvalidInput, match=r"169\.254\.169\.254") as caught:
        await check_provider_endpoints(
            agent(fallbacks={"llm": [{"base_url": "http://sneaky.internal/v1"}]}),
            allowed,
            resolver,
        )
    assert caught.value.field == "fallbacks.llm.0.base_url"
