"""What an agent is: the validated configuration a workspace edits and a call runs with.

Every model forbids unknown fields, so a typo in a field name is a 422 that
names it, not a setting silently ignored.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Mapping
from datetime import date, datetime, time
from enum import StrEnum
from typing import Annotated, Any, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    create_model,
    field_validator,
    model_validator,
)

from switchboard.agents.template import BUILTIN_VARIABLES, placeholders
from switchboard.flows.schema import FlowDocument
from switchboard.phone import to_e164
from switchboard.schema_base import Identifier as Identifier
from switchboard.schema_base import StrictModel as StrictModel

MAX_PROMPT_CHARS = 20_000
MAX_GREETING_CHARS = 1_000

ProviderId = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
LanguageTag = Annotated[str, StringConstraints(pattern=r"^[a-z]{2,3}(-[A-Z]{2})?$")]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


def _e164(value: str) -> str:
    return to_e164(value)


PhoneNumberE164 = Annotated[str, AfterValidator(_e164)]


# The embedded defaults (DESIGN §5): all ship inside packages and run offline. A model or
# voice left out is filled in from the provider's catalog entry when the agent is saved.
DEFAULT_STT_PROVIDER = "faster_whisper"
DEFAULT_LLM_PROVIDER = "llama_cpp"
DEFAULT_TTS_PROVIDER = "piper"


EndpointURL = Annotated[str, StringConstraints(pattern=r"^(https?|wss?)://[^\s]+$", max_length=500)]


class STTSettings(StrictModel):
    provider: ProviderId = DEFAULT_STT_PROVIDER
    model: str | None = Field(default=None, max_length=100)
    language: LanguageTag | None = None
    base_url: EndpointURL | None = Field(
        default=None, description="a self-hosted or regional endpoint instead of the provider's"
    )
    options: dict[str, Any] = Field(default_factory=dict)


class LLMSettings(StrictModel):
    provider: ProviderId = DEFAULT_LLM_PROVIDER
    model: str | None = Field(default=None, max_length=100)
    temperature: float = Field(default=0.3, ge=0, le=2)
    max_tokens: int = Field(default=200, ge=1, le=4096)
    base_url: EndpointURL | None = Field(
        default=None, description="an OpenAI-compatible server, or a provider's regional endpoint"
    )
    options: dict[str, Any] = Field(default_factory=dict)


class TTSSettings(StrictModel):
    provider: ProviderId = DEFAULT_TTS_PROVIDER
    model: str | None = Field(default=None, max_length=100)
    voice: str | None = Field(default=None, max_length=100)
    speed: float = Field(default=1.0, ge=0.5, le=2.0)
    base_url: EndpointURL | None = Field(
        default=None, description="a self-hosted or regional endpoint instead of the provider's"
    )
    options: dict[str, Any] = Field(default_factory=dict)


class Fallbacks(StrictModel):
    """Providers to switch to, in order, when the primary fails with a retryable error."""

    stt: list[STTSettings] = Field(default_factory=list, max_length=3)
    llm: list[LLMSettings] = Field(default_factory=list, max_length=3)
    tts: list[TTSSettings] = Field(default_factory=list, max_length=3)


class VADSettings(StrictModel):
    confidence: float = Field(default=0.7, ge=0, le=1)
    start_seconds: float = Field(default=0.2, ge=0, le=2)
    stop_seconds: float = Field(default=0.8, ge=0.1, le=5)
    min_volume: float = Field(default=0.6, ge=0, le=1)


class PipelineSettings(StrictModel):
    vad: VADSettings = Field(default_factory=VADSettings)
    turn_detection: Literal["smart_turn", "vad"] = "smart_turn"
    allow_interruptions: bool = True
    interruption_min_words: int = Field(default=0, ge=0, le=10)
    idle_reprompt_seconds: float = Field(default=8, ge=1, le=120)
    idle_reprompt_message: str = Field(default="Are you still there?", max_length=300)
    idle_hangup_seconds: float = Field(default=30, ge=2, le=600)
    max_call_seconds: int = Field(default=1800, ge=10, le=4 * 3600)

    @model_validator(mode="after")
    def _idle_order(self) -> Self:
        if self.idle_hangup_seconds <= self.idle_reprompt_seconds:
            raise ValueError("idle_hangup_seconds must be longer than idle_reprompt_seconds")
        return self


class Weekday(StrEnum):
    MON = "mon"
    TUE = "tue"
    WED = "wed"
    THU = "thu"
    FRI = "fri"
    SAT = "sat"
    SUN = "sun"


WEEKDAYS = list(Weekday)
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")


class OpenInterval(StrictModel):
    """``start``-``end`` in local time, "HH:MM"; ``end`` may be "24:00"."""

    start: str
    end: str

    @field_validator("start", "end")
    @classmethod
    def _hhmm(cls, value: str) -> str:
        if not _HHMM.match(value):
            raise ValueError("use 24-hour HH:MM")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.start >= self.end:
            raise ValueError("start must be before end")
        return self

    @property
    def minutes(self) -> tuple[int, int]:
        """``(start, end)`` in minutes after local midnight; ``end`` may be 1440."""
        return _minute_of_day(self.start), _minute_of_day(self.end)

    def contains(self, moment: time) -> bool:
        """Whether the wall-clock ``moment`` is inside (``start`` included, ``end`` not)."""
        start, end = self.minutes
        return start <= moment.hour * 60 + moment.minute < end


@functools.cache  # at most 1,441 distinct values; the calling-window walk asks often
def _minute_of_day(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def open_intervals(
    weekly: Mapping[Weekday, list[OpenInterval]], holidays: Collection[date], day: date
) -> list[OpenInterval]:
    """The intervals open on the local date ``day``: its weekday's, or none on a holiday."""
    if day in holidays:
        return []
    return weekly.get(WEEKDAYS[day.weekday()], [])


def open_on_clock(
    weekly: Mapping[Weekday, list[OpenInterval]], holidays: Collection[date], local: datetime
) -> bool:
    """Whether a clock showing ``local`` (its date and time of day) shows an open time."""
    intervals = open_intervals(weekly, holidays, local.date())
    return any(interval.contains(local.time()) for interval in intervals)


class BusinessHours(StrictModel):
    timezone: str = "UTC"
    weekly: dict[Weekday, list[OpenInterval]] = Field(default_factory=dict)
    holidays: list[date] = Field(default_factory=list, max_length=366)
    out_of_hours_message: str = Field(
        default="We are closed right now. Please call again during business hours.",
        max_length=MAX_GREETING_CHARS,
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA time zone {value!r}") from exc
        return value

    def is_open(self, at: datetime) -> bool:
        """Whether ``at`` (an aware datetime) falls inside the open hours, local to the zone."""
        return open_on_clock(self.weekly, self.holidays, at.astimezone(ZoneInfo(self.timezone)))


class TransferDestination(StrictModel):
    name: Identifier = Field(description="department key the LLM names, e.g. 'sales'")
    number: PhoneNumberE164
    description: str = Field(default="", max_length=300)


class VariableSpec(StrictModel):
    type: Literal["string", "number", "boolean"] = "string"
    description: str = Field(default="", max_length=300)
    default: str | float | bool | None = None


class OutboundSettings(StrictModel):
    """How the agent opens a call it placed: its own greeting, or waiting for the callee."""

    greeting: str = Field(
        default="",
        max_length=MAX_GREETING_CHARS,
        description="said when the callee answers; empty: the agent's greeting",
    )
    first_speaker: Literal["agent", "callee"] = Field(
        default="agent",
        description="'callee': say nothing until the callee has spoken (then answer them)",
    )
    voicemail_message: str = Field(
        default="",
        max_length=MAX_GREETING_CHARS,
        description="left on an answering machine when a call asks to leave a message",
    )


class AnalysisField(StrictModel):
    name: Identifier
    type: Literal["string", "number", "boolean", "enum"] = "string"
    description: str = Field(default="", max_length=500)
    choices: list[str] | None = None

    @model_validator(mode="after")
    def _enum_has_choices(self) -> Self:
        if self.type == "enum" and not self.choices:
            raise ValueError("an enum field needs choices")
        return self


class AgentConfig(StrictModel):
    """The whole editable configuration of an agent."""

    name: Name
    description: str = Field(default="", max_length=2_000)
    system_prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    greeting: str = Field(default="", max_length=MAX_GREETING_CHARS)
    language: LanguageTag = "en"
    supported_languages: list[LanguageTag] = Field(default_factory=list, max_length=20)
    stt: STTSettings = Field(default_factory=STTSettings)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    tts: TTSSettings = Field(default_factory=TTSSettings)
    fallbacks: Fallbacks = Field(default_factory=Fallbacks)
    pipeline: PipelineSettings = Field(default_factory=PipelineSettings)
    business_hours: BusinessHours | None = None
    transfer_destinations: list[TransferDestination] = Field(default_factory=list, max_length=50)
    outbound: OutboundSettings = Field(default_factory=OutboundSettings)
    variables: dict[Identifier, VariableSpec] = Field(default_factory=dict, max_length=100)
    pre_call_tool_ids: list[str] = Field(default_factory=list, max_length=10)
    tool_ids: list[str] = Field(default_factory=list, max_length=50)
    analysis_schema: list[AnalysisField] = Field(default_factory=list, max_length=50)
    recording_enabled: bool = True
    redact_pii: bool = True
    active: bool = True

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.language not in self.supported_languages:
            self.supported_languages.insert(0, self.language)
        names = [d.name for d in self.transfer_destinations]
        if len(names) != len(set(names)):
            raise ValueError("transfer_destinations: names must be unique")
        known = BUILTIN_VARIABLES | set(self.variables)
        templates = {
            "greeting": self.greeting,
            "system_prompt": self.system_prompt,
            "outbound.greeting": self.outbound.greeting,
            "outbound.voicemail_message": self.outbound.voicemail_message,
        }
        for field, template in templates.items():
            unknown = placeholders(template) - known
            if unknown:
                raise ValueError(
                    f"{field}: undeclared variable(s) {sorted(unknown)}; declare them under"
                    f" 'variables' or use a built-in: {sorted(BUILTIN_VARIABLES)}"
                )
        return self


# A partial update: every field optional; the merged result is validated as an AgentConfig.
_optional_fields: dict[str, Any] = {
    name: (info.annotation | None, None)  # type: ignore[operator]
    for name, info in AgentConfig.model_fields.items()
}
AgentPatch = create_model(
    "AgentPatch",
    __config__=ConfigDict(extra="forbid"),
    __doc__="Only the fields sent change; the result is validated as a whole.",
    **_optional_fields,
)


class AgentOut(AgentConfig):
    id: str
    version: int
    created_at: datetime
    updated_at: datetime


class AgentVersionOut(BaseModel):
    version: int
    changed_fields: list[str]
    created_by: str | None
    created_at: datetime
    config: AgentConfig


class ToolSpec(BaseModel):
    """A tool as the LLM sees it (no URL, no headers)."""

    id: str
    name: str
    description: str
    parameters: dict[str, Any]


class RuntimeConfig(BaseModel):
    """Everything a call needs to run one agent, resolved at one version."""

    agent_id: str
    workspace_id: str
    version: int
    config: AgentConfig
    tools: list[ToolSpec]
    pre_call_tools: list[ToolSpec]
    flow: FlowDocument | None = Field(
        default=None, description="the agent's conversation flow; none runs the plain prompt"
    )
