"""Provider-specific options: what an agent may put in ``stt/llm/tts.options`` per provider.

Kept apart from the adapters so the catalog can describe them without
importing any provider package.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from switchboard.schema_validation import UnusablePattern, compile_pattern


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WhisperOptions(_Options):
    beam_size: int = Field(default=1, ge=1, le=5, description="1 is greedy: fastest")
    cpu_threads: int = Field(default=2, ge=1, le=16)


class DeepgramOptions(_Options):
    smart_format: bool = True
    endpointing_ms: int = Field(default=300, ge=10, le=5000)


class ScriptedRule(_Options):
    """When the caller's words contain any of ``match``, say ``reply`` and/or call ``tool``."""

    match: list[str] = Field(min_length=1)
    reply: str = ""
    tool: str | None = None
    arguments: dict[str, str] = Field(default_factory=dict)
    capture: dict[str, str] = Field(
        default_factory=dict,
        description="argument -> regular expression (RE2 syntax, ignoring case) over the"
        " caller's words (first group, or the whole match); the rule applies only when every"
        " capture is found",
    )
    result_reply: str = Field(
        default="",
        description="said when the tool answers; {{ key }} takes the answer's top-level values",
    )
    error_reply: str = Field(default="", description="said when the tool fails")

    @field_validator("capture")
    @classmethod
    def _runs_on_re2(cls, value: dict[str, str]) -> dict[str, str]:
        """Captures run on RE2 against the caller's words, so they can never backtrack."""
        for name, pattern in value.items():
            try:
                compile_pattern(pattern, ignore_case=True)
            except UnusablePattern as exc:
                raise ValueError(f"capture {name!r}: {exc}") from exc
        return value


class ScriptedOptions(_Options):
    rules: list[ScriptedRule] = Field(default_factory=list)
    fallback: str = "Sorry, I did not catch that. Could you say it another way?"
    match_tool_names: bool = Field(
        default=False,
        description="when no rule matches, call an offered tool whose name's words the caller said",
    )
    tool_error_reply: str = Field(
        default="I'm sorry, I couldn't do that just now. Is there anything else I can help with?",
        description="said when a tool fails and its rule has no error_reply",
    )


class LlamaCppOptions(_Options):
    context_tokens: int = Field(default=2048, ge=256, le=8192)
    tool_choice: Literal["auto", "grammar"] = Field(
        default="grammar", description="grammar: constrain tool calls to valid JSON for the tools"
    )


class FakeSTTOptions(_Options):
    """A deterministic STT for tests and benchmarks: transcripts in order, after a delay."""

    transcripts: list[str] = Field(default_factory=list)
    languages: list[str] = Field(
        default_factory=list, description="the language each transcript is reported in"
    )
    latency_ms: int = Field(default=100, ge=0, le=10_000)


class FakeToolCall(_Options):
    name: str
    arguments: dict[str, object] = Field(default_factory=dict)


class FakeLLMReply(_Options):
    text: str = ""
    tool_calls: list[FakeToolCall] = Field(default_factory=list)


class FakeLLMOptions(_Options):
    """A deterministic LLM: replies in order (the last repeats), with set timing."""

    replies: list[FakeLLMReply] = Field(default_factory=list)
    ttft_ms: int = Field(default=200, ge=0, le=10_000)
    tokens_per_second: float = Field(default=50, gt=0, le=10_000)
    fail_after: int | None = Field(default=None, ge=0, description="fail on this request number")


class FakeTTSOptions(_Options):
    """A deterministic TTS: a tone as long as the text would take to say."""

    ttfb_ms: int = Field(default=150, ge=0, le=10_000)
    chars_per_second: float = Field(default=15, gt=0)
    frequency_hz: float = Field(default=440, gt=20, lt=4000)
