"""What the catalog knows about a provider, without importing any provider package."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, ConfigDict


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
    credentials: tuple[str, ...] = ()  # secrets the workspace must have stored
    optional_credentials: tuple[str, ...] = ()  # secrets used when stored
    options: type[BaseModel] = NoOptions
    package: str = "pipecat-ai"
    testing: bool = False
    notes: str = ""

    @property
    def any_model(self) -> bool:
        """True when the provider takes any model name (e.g. an OpenAI-compatible server)."""
        return not self.models
