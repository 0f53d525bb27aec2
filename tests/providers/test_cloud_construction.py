"""Cloud providers are built with the model, voice, language, sample rate and key they were given.

They cannot be reached from here; ``test_cloud_requests`` checks what they would send.
"""

from __future__ import annotations

from typing import Any

import pytest

from switchboard.agents.schema import LLMSettings, STTSettings, TTSSettings
from switchboard.providers.base import BuildContext
from switchboard.providers.registry import load_adapter
from switchboard.providers.spec import ProviderKind

KEY = {"api_key": "key-under-test"}


def ctx(language: str = "en") -> BuildContext:
    return BuildContext(sample_rate=8000, language=language, credentials=KEY)


def settings_of(service: Any) -> Any:
    return service._settings


def holds_key(obj: Any, depth: int = 4, seen: set[int] | None = None) -> bool:
    """Whether the key appears among the object's attributes (it may sit in an SDK client)."""
    seen = seen if seen is not None else set()
    if id(obj) in seen or depth < 0:
        return False
    seen.add(id(obj))
    if isinstance(obj, str):
        return KEY["api_key"] in obj
    if isinstance(obj, dict):
        return any(holds_key(v, depth - 1, seen) for v in obj.values())
    attributes = getattr(obj, "__dict__", None)
    return isinstance(attributes, dict) and any(
        holds_key(v, depth - 1, seen) for v in attributes.values()
    )


@pytest.mark.parametrize(
    ("provider", "model", "language"),
    [
        ("deepgram", "nova-2-phonecall", "en-US"),
        ("assemblyai", "universal-streaming-english", "en"),
        ("openai", "whisper-1", "es"),
        ("sarvam", "saaras:v3", "hi-IN"),
    ],
)
def test_stt(provider: str, model: str, language: str) -> None:
    adapter = load_adapter(ProviderKind.STT, provider)
    service = adapter.create(STTSettings(provider=provider, model=model), ctx(language))
    assert settings_of(service).model == model
    assert str(settings_of(service).language).lower().startswith(language.split("-")[0])
    assert service._init_sample_rate == 8000
    assert holds_key(service)


async def test_elevenlabs_stt_borrows_the_shared_http_session() -> None:
    import aiohttp

    adapter = load_adapter(ProviderKind.STT, "elevenlabs")
    with pytest.raises(RuntimeError, match="shared HTTP session"):
        adapter.create(STTSettings(provider="elevenlabs"), ctx())
    async with aiohttp.ClientSession() as session:
        service = adapter.create(
            STTSettings(provider="elevenlabs", model="scribe_v1"),
            BuildContext(sample_rate=8000, credentials=KEY, http=session),
        )
        assert settings_of(service).model == "scribe_v1"
        assert service._init_sample_rate == 8000


@pytest.mark.parametrize(
    ("provider", "model", "base_url"),
    [
        ("openai", "gpt-4.1-mini", None),
        ("google", "gemini-2.5-flash", None),
        ("grok", "grok-3-mini", None),
        ("anthropic", "claude-haiku-4-5", None),
        ("openai_compatible", "qwen2.5:0.5b", "http://127.0.0.1:11434/v1"),
    ],
)
def test_llm(provider: str, model: str, base_url: str | None) -> None:
    adapter = load_adapter(ProviderKind.LLM, provider)
    settings = LLMSettings(
        provider=provider, model=model, temperature=0.2, max_tokens=99, base_url=base_url
    )
    service = adapter.create(settings, ctx())
    assert settings_of(service).model == model
    assert settings_of(service).temperature == 0.2
    assert settings_of(service).max_tokens == 99
    assert holds_key(service)
    if base_url:
        assert str(service._client.base_url).rstrip("/") == base_url


def test_openai_compatible_works_without_a_key() -> None:
    adapter = load_adapter(ProviderKind.LLM, "openai_compatible")
    service = adapter.create(
        LLMSettings(provider="openai_compatible", model="m", base_url="http://127.0.0.1:8080/v1"),
        BuildContext(sample_rate=8000),
    )
    assert settings_of(service).model == "m"


@pytest.mark.parametrize(
    ("provider", "model", "voice", "rate"),
    [
        ("cartesia", "sonic-2", "a0e99841-438c-4a64-b679-ae501e7d6091", 8000),
        ("elevenlabs", "eleven_flash_v2_5", "21m00Tcm4TlvDq8ikWAM", 8000),
        ("sarvam", "bulbul:v3", "shubh", 8000),
        ("deepgram", None, "aura-2-thalia-en", 8000),
        ("openai", "gpt-4o-mini-tts", "coral", 24000),
    ],
)
def test_tts(provider: str, model: str | None, voice: str, rate: int) -> None:
    adapter = load_adapter(ProviderKind.TTS, provider)
    service = adapter.create(TTSSettings(provider=provider, model=model, voice=voice), ctx())
    assert settings_of(service).voice == voice
    if model:
        assert settings_of(service).model == model
    assert service._init_sample_rate == rate
    assert holds_key(service)


def test_a_missing_key_is_a_clear_error() -> None:
    adapter = load_adapter(ProviderKind.TTS, "cartesia")
    with pytest.raises(KeyError, match="api_key"):
        adapter.create(TTSSettings(provider="cartesia"), BuildContext(sample_rate=8000))
