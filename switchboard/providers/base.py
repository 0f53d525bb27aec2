"""The provider boundary: one small adapter per provider, built from an agent's settings.

An adapter turns validated settings (``switchboard.agents.schema``) plus the
workspace's decrypted credentials into a Pipecat service. The Pipecat base
classes own streaming, metrics (TTFB, usage) and interruption handling; the
adapter only fills in the one hook, ``create``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

import aiohttp
from pipecat.services.ai_service import AIService
from pipecat.services.llm_service import LLMService
from pipecat.services.stt_service import STTService
from pipecat.services.tts_service import TTSService
from pydantic import BaseModel

from switchboard.agents.schema import LLMSettings, STTSettings, TTSSettings
from switchboard.providers.spec import ProviderKind, ProviderSpec


@dataclass(frozen=True)
class BuildContext:
    """What a call gives an adapter beyond the agent's settings."""

    sample_rate: int
    language: str = "en"
    credentials: Mapping[str, str] = field(default_factory=dict)
    local: Any = None  # shared local engines (``switchboard.providers.local``), when running
    http: aiohttp.ClientSession | None = None  # the process's shared HTTP session
    system_instruction: str | None = None  # the agent's prompt, for LLM services


SettingsT = TypeVar("SettingsT", STTSettings, LLMSettings, TTSSettings)
ServiceT = TypeVar("ServiceT", bound=AIService)


class ProviderAdapter(ABC, Generic[SettingsT, ServiceT]):
    """Builds one provider's Pipecat service."""

    kind: ClassVar[ProviderKind]

    def __init__(self, spec: ProviderSpec) -> None:
        self.spec = spec

    @abstractmethod
    def create(self, settings: SettingsT, ctx: BuildContext) -> ServiceT:
        """Return a new service for one call."""

    def options(self, settings: SettingsT) -> BaseModel:
        """The provider-specific options, validated (they were checked at save time too)."""
        return self.spec.options.model_validate(settings.options)

    def model(self, settings: SettingsT) -> str | None:
        return getattr(settings, "model", None) or self.spec.default_model


class STTProvider(ProviderAdapter[STTSettings, STTService]):
    kind = ProviderKind.STT


class LLMProvider(ProviderAdapter[LLMSettings, LLMService[Any]]):
    kind = ProviderKind.LLM


class TTSProvider(ProviderAdapter[TTSSettings, TTSService]):
    kind = ProviderKind.TTS

    def voice(self, settings: TTSSettings) -> str | None:
        return settings.voice or self.spec.default_voice


def endpoint(parameter: str, url: str | None) -> dict[str, Any]:
    """``{parameter: url}`` when an agent overrides a provider's endpoint, else no argument at all
    (so the service keeps its own default)."""
    return {parameter: url} if url else {}
