"""The registry: every provider the product promises, each importable and of its kind."""

from __future__ import annotations

import importlib

import pytest

from switchboard.providers.base import LLMProvider, STTProvider, TTSProvider
from switchboard.providers.registry import SPECS, load_adapter
from switchboard.providers.spec import ProviderKind

PROMISED = {
    ProviderKind.STT: {
        "faster_whisper",
        "deepgram",
        "assemblyai",
        "openai",
        "sarvam",
        "elevenlabs",
    },
    ProviderKind.LLM: {
        "llama_cpp",
        "scripted",
        "openai",
        "google",
        "grok",
        "anthropic",
        "openai_compatible",
    },
    ProviderKind.TTS: {"piper", "espeak", "cartesia", "elevenlabs", "sarvam", "deepgram", "openai"},
    ProviderKind.VAD: {"silero"},
    ProviderKind.TURN: {"smart_turn"},
}
BASES = {
    ProviderKind.STT: STTProvider,
    ProviderKind.LLM: LLMProvider,
    ProviderKind.TTS: TTSProvider,
}


def test_every_promised_provider_is_registered_once() -> None:
    for kind, ids in PROMISED.items():
        registered = [s.id for s in SPECS if s.kind is kind and not s.testing]
        assert sorted(registered) == sorted(ids), kind
    keys = [(s.kind, s.id) for s in SPECS]
    assert len(keys) == len(set(keys))


@pytest.mark.parametrize(
    "spec", [s for s in SPECS if s.kind in BASES], ids=lambda s: f"{s.kind}-{s.id}"
)
def test_adapter_imports_and_matches_its_kind(spec: object) -> None:
    from switchboard.providers.spec import ProviderSpec

    assert isinstance(spec, ProviderSpec)
    adapter = load_adapter(spec.kind, spec.id)
    assert isinstance(adapter, BASES[spec.kind])
    assert adapter.spec is spec
    if spec.default_model is not None and spec.models:
        assert spec.default_model in spec.models
    if spec.default_voice is not None and spec.voices:
        assert spec.default_voice in spec.voices


@pytest.mark.parametrize("spec", [s for s in SPECS if s.kind not in BASES], ids=lambda s: s.id)
def test_vad_and_turn_targets_are_pipecat_classes(spec: object) -> None:
    from switchboard.providers.spec import ProviderSpec

    assert isinstance(spec, ProviderSpec)
    module, _, name = spec.target.partition(":")
    assert isinstance(getattr(importlib.import_module(module), name), type)
