"""Who picks up when the simulator places a call: a person reading a script, or a machine.

Each simulator number can be given its callee (``PUT /simulator/numbers/{number}``):
the outcomes it plays with their weights and ring times (answer, busy,
no-answer, fail, voicemail), the lines a person says, and a machine's greeting.
Outcomes are drawn from a random generator seeded per number, so a run with a
seed repeats itself. A person is the local phone (``switchboard.caller``)
speaking each line with the embedded Piper voice after the agent's reply; a
machine plays its greeting and a beep, then records whatever is said until the
agent hangs up (``message_seconds``).
"""

from __future__ import annotations

import asyncio
import math
import random
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from switchboard.caller.caller_voice import CallerLine, CallerVoice
from switchboard.caller.conversation import (
    Answer,
    ConversationSettings,
    RenderedLine,
    converse,
)
from switchboard.caller.media_client import MediaStreamClient
from switchboard.caller.twilio_messages import StreamIdentity
from switchboard.providers.phone_line import PHONE_SAMPLE_RATE, encode_phone_line

Outcome = Literal["answer", "busy", "no_answer", "fail", "voicemail", "reject"]
ANY_NUMBER = "*"  # the callee of every number that has none of its own
DEFAULT_SCRIPT = ("Hello?", "Yes, that works for me.", "Thank you, goodbye.")
DEFAULT_VOICEMAIL = (
    "Hi, you have reached the voicemail of a Switchboard test line. Please leave a message"
    " after the tone."
)
BEEP_HZ = 1000
BEEP_SECONDS = 0.6
MESSAGE_DEADLINE_SECONDS = 60.0


class WeightedOutcome(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: Outcome
    weight: float = Field(default=1.0, gt=0, le=1000)
    ring_seconds: float = Field(default=0.5, ge=0, le=60)


class CalleeConfig(BaseModel):
    """What a simulator number does when it is called."""

    model_config = ConfigDict(extra="forbid")

    outcomes: list[WeightedOutcome] = Field(
        default_factory=lambda: [WeightedOutcome(outcome="answer")], min_length=1, max_length=10
    )
    script: list[str] = Field(
        default_factory=lambda: list(DEFAULT_SCRIPT), max_length=20, description="a person's lines"
    )
    voicemail_greeting: str = Field(default=DEFAULT_VOICEMAIL, min_length=1, max_length=500)
    sequence: list[Outcome] = Field(
        default_factory=list,
        max_length=20,
        description="outcomes of the first calls, in order (busy, then answer...); then draws",
    )
    seed: int | None = Field(default=None, description="draws outcomes repeatably")
    carrier_detection: bool = Field(
        default=True,
        description="report who answered as Twilio's detection does; false plays a carrier"
        " without it (Exotel), so the app must tell a machine from a person itself",
    )
    reply_timeout_seconds: float = Field(default=30, gt=0, le=120)
    greeting_wait_seconds: float = Field(
        default=3,
        gt=0,
        le=60,
        description="how long a person listens for the agent before saying the first line",
    )


@dataclass
class Drawn:
    """One call's draw: what happens, after how long."""

    outcome: Outcome
    ring_seconds: float


@dataclass
class CalleeResult:
    """What the callee heard: turns said, seconds of message a machine recorded."""

    lines_said: int = 0
    message_seconds: float = 0.0
    hung_up_by: str | None = None
    errors: list[str] = field(default_factory=list)


class CalleeBook:
    """The callees of simulator numbers (``*``: any other number), with one random generator
    and one count of calls per number."""

    def __init__(self) -> None:
        self.configs: dict[str, CalleeConfig] = {}
        self._randoms: dict[str, random.Random] = {}
        self._calls: dict[str, int] = {}
        self.voice = CallerVoice()

    def configure(self, number: str, config: CalleeConfig) -> None:
        self.configs[number] = config
        self._randoms[number] = random.Random(config.seed)
        self._calls[number] = 0

    def draw(self, number: str) -> Drawn | None:
        """The outcome of a call to ``number``; None when no callee is set for it (or ``*``)."""
        key = number if number in self.configs else ANY_NUMBER
        config = self.configs.get(key)
        if config is None:
            return None
        count = self._calls.get(number, 0)
        self._calls[number] = count + 1
        if count < len(config.sequence):
            outcome = config.sequence[count]
            ring = next((o.ring_seconds for o in config.outcomes if o.outcome == outcome), 0.5)
            return Drawn(outcome, ring)
        rng = self._randoms.setdefault(key, random.Random(config.seed))
        weights = [o.weight for o in config.outcomes]
        chosen = rng.choices(config.outcomes, weights=weights, k=1)[0]
        return Drawn(chosen.outcome, chosen.ring_seconds)

    def config_for(self, number: str) -> CalleeConfig:
        return self.configs.get(number) or self.configs.get(ANY_NUMBER) or CalleeConfig()

    async def person(self, number: str, answer: Answer, call_sid: str) -> CalleeResult:
        """A person answers and says the script, a line after each of the agent's replies."""
        config = self.config_for(number)
        lines = [
            RenderedLine(text, await self.voice.render(CallerLine(text=text)))
            for text in config.script
        ]
        settings = ConversationSettings(
            reply_timeout=config.reply_timeout_seconds,
            greeting_timeout=config.greeting_wait_seconds,
        )
        report = await converse(answer, call_sid, lines, settings)
        return CalleeResult(lines_said=len(report.turns), hung_up_by=report.hung_up_by)

    async def machine(
        self, number: str, answer: Answer, call_sid: str, *, greeting_played: bool
    ) -> CalleeResult:
        """An answering machine: its greeting and beep (unless the carrier's detection already
        waited for them), then it records until the agent hangs up."""
        config = self.config_for(number)
        phone = MediaStreamClient(
            answer.stream_url,
            StreamIdentity(call_sid=call_sid, custom_parameters=answer.parameters),
        )
        await phone.connect()
        result = CalleeResult()
        try:
            started = phone.now()
            if not greeting_played:
                greeting = await self.voice.render(CallerLine(text=config.voicemail_greeting))
                sent = await phone.say(greeting + await beep())
                started = sent.ended_at
            deadline = phone.now() + MESSAGE_DEADLINE_SECONDS
            await phone.wait_closed(deadline)
            result.message_seconds = phone.playback.seconds_after(started)
        finally:
            await phone.hang_up()
        result.hung_up_by = phone.hung_up_by
        return result


async def beep(hz: int = BEEP_HZ, seconds: float = BEEP_SECONDS) -> bytes:
    """An answering machine's tone, as 8 kHz µ-law."""
    samples = np.arange(int(PHONE_SAMPLE_RATE * seconds))
    wave = 0.5 * 32767 * np.sin(2 * math.pi * hz * samples / PHONE_SAMPLE_RATE)
    return await encode_phone_line(wave.astype("<i2").tobytes(), PHONE_SAMPLE_RATE)


async def run_callee(task: asyncio.Task[CalleeResult]) -> CalleeResult:
    """Await a callee, keeping what went wrong instead of raising it into the simulator."""
    try:
        return await task
    except Exception as exc:
        return CalleeResult(errors=[f"{type(exc).__name__}: {exc}"])
