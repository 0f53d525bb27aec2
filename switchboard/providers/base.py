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
from enum import StrEnum
from typing import Any, ClassVar, Generic, TypeVar

from pipecat.services.llm_service import LLMService
from pipecat.services.stt_service import STTService
from pipecat.services.tts_service import TTSService
from pydantic import BaseModel, ConfigDict

from switchboard.agents.schema import LLMSettings, STTSettings, TTSSettings


class ProviderKind(StrEnum):
    STT = "stt"
    LLM = "llm"
    TTS = "tts"
    VAD = "vad"
    TURN = "turn"


class NoOptions(BaseModel):
    """For providers that take no provider-specific options."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class ProviderSpec:
    """What the catalog says about one provider; the registry holds one per provider.

    ``target`` names the adapter class (``"module:Class"``), imported only
    when a call needs it, so a missing optional package breaks only the
    agents that use it.
    """

    id: str
    kind: ProviderKind
    target: str
    label: str
    local: bool = False
    streaming: bool = True
    models: tuple[str, ...] = ()
    default_model: str | None = None
    voices: tuple[str, ...] = ()
    default_voice: str | None = None
    languages: tuple[str, ...] = ("en",)
    sample_rates: tuple[int, ...] = (8000, 16000)
    credentials: tuple[str, ...] = ()
    options: type[BaseModel] = NoOptions
    package: str = "pipecat-ai"
    testing: bool = False
    notes: str = ""

    @property
    def any_model(self) -> bool:
        """True when the provider takes any model name (e.g. an OpenAI-compatible server)."""
        return not self.models


@dataclass(frozen=True)
class BuildContext:
    """What a call gives an adapter beyond the agent's settings."""

    sample_rate: int
    language: str = "en"
    credentials: Mapping[str, str] = field(default_factory=dict)
    local: Any = None  # shared local engines (``switchboard.providers.local``), when running


SettingsT = TypeVar("SettingsT", STTSettings, LLMSettings, TTSSettings)
ServiceT = TypeVar("ServiceT", STTService, LLMService, TTSService)


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


class LLMProvider(ProviderAdapter[LLMSettings, LLMService]):
    kind = ProviderKind.LLM


class TTSProvider(ProviderAdapter[TTSSettings, TTSService]):
    kind = ProviderKind.TTS

    def voice(self, settings: TTSSettings) -> str | None:
        return settings.voice or self.spec.default_voice
