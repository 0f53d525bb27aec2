"""Checking an agent's provider choices against the catalog when it is saved.

A missing credential or an unknown voice fails here, with the field named,
rather than when a caller is already on the line. Models and voices left
out are filled in from the catalog, so a stored agent says exactly what it
runs. Test-only providers (the fakes) are refused where the server says so:
in production.
"""

from __future__ import annotations

from typing import TypeVar

from pydantic import ValidationError

from switchboard.agents.schema import AgentConfig, LLMSettings, STTSettings, TTSSettings
from switchboard.errors import InvalidInput
from switchboard.providers.registry import ANY, get_spec
from switchboard.providers.spec import ProviderKind, ProviderSpec

S = TypeVar("S", STTSettings, LLMSettings, TTSSettings)


def language_supported(spec: ProviderSpec, language: str) -> bool:
    """``en-US`` is served by a provider that lists ``en``, and ``en`` by one listing ``en-IN``."""
    if spec.languages == ANY:
        return True
    base = language.split("-")[0]
    return any(lang == language or lang.split("-")[0] == base for lang in spec.languages)


def _resolve(
    kind: ProviderKind,
    settings: S,
    path: str,
    language: str,
    configured: set[str],
    allow_testing: bool,
) -> S:
    try:
        spec = get_spec(kind, settings.provider)
    except InvalidInput as exc:
        raise InvalidInput(exc.message, field=f"{path}.provider") from exc
    if spec.testing and not allow_testing:
        raise InvalidInput(
            f"{spec.label} is for tests only; this server runs in production",
            field=f"{path}.provider",
        )
    updates: dict[str, object] = {}
    if settings.model is None:
        updates["model"] = spec.default_model
    elif spec.models and settings.model not in spec.models:
        raise InvalidInput(
            f"{spec.label} has no model {settings.model!r}; choose one of {list(spec.models)}",
            field=f"{path}.model",
        )
    if isinstance(settings, TTSSettings):
        if settings.voice is None:
            updates["voice"] = spec.default_voice
        elif spec.voices and settings.voice not in spec.voices:
            raise InvalidInput(
                f"{spec.label} has no voice {settings.voice!r}; choose one of {list(spec.voices)}",
                field=f"{path}.voice",
            )
    if (
        isinstance(settings, LLMSettings)
        and spec.id == "openai_compatible"
        and not settings.base_url
    ):
        raise InvalidInput("an OpenAI-compatible endpoint needs base_url", field=f"{path}.base_url")
    try:
        spec.options.model_validate(settings.options)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"])
        raise InvalidInput(
            f"{error['msg']} (options for {spec.label})",
            field=f"{path}.options.{where}".rstrip("."),
        ) from exc
    if spec.credentials and spec.id not in configured:
        raise InvalidInput(
            f"the workspace has no credentials for {spec.label}: "
            f"PUT /api/v1/providers/{spec.id}/credentials first",
            field=f"{path}.provider",
        )
    if not language_supported(spec, language):
        raise InvalidInput(
            f"{spec.label} does not speak {language!r}; it supports {list(spec.languages)}",
            field="language",
        )
    return settings.model_copy(update=updates)


def resolve_providers(
    config: AgentConfig, configured: set[str], *, allow_testing: bool
) -> AgentConfig:
    """Validate every provider choice (primary and fallbacks) and fill in defaults.

    ``configured`` is the set of provider ids the workspace has credentials for;
    ``allow_testing`` is false in production, where the fake providers are refused.
    """

    def resolve(kind: ProviderKind, settings: S, path: str) -> S:
        return _resolve(kind, settings, path, config.language, configured, allow_testing)

    fallbacks = config.fallbacks
    return config.model_copy(
        update={
            "stt": resolve(ProviderKind.STT, config.stt, "stt"),
            "llm": resolve(ProviderKind.LLM, config.llm, "llm"),
            "tts": resolve(ProviderKind.TTS, config.tts, "tts"),
            "fallbacks": fallbacks.model_copy(
                update={
                    "stt": [
                        resolve(ProviderKind.STT, s, f"fallbacks.stt.{i}")
                        for i, s in enumerate(fallbacks.stt)
                    ],
                    "llm": [
                        resolve(ProviderKind.LLM, s, f"fallbacks.llm.{i}")
                        for i, s in enumerate(fallbacks.llm)
                    ],
                    "tts": [
                        resolve(ProviderKind.TTS, s, f"fallbacks.tts.{i}")
                        for i, s in enumerate(fallbacks.tts)
                    ],
                }
            ),
        }
    )
