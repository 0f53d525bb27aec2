"""A pass-through processor that turns what flows by into call events and latency figures.

Placed after the output transport, it sees the frames the call is made of
(bot speaking, VAD, interruptions, metrics) without adding a hop for
inbound audio, which never travels that far.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    ErrorFrame,
    Frame,
    InputDTMFFrame,
    InterruptionFrame,
    MetricsFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.metrics.metrics import (
    LLMUsageMetricsData,
    ProcessingMetricsData,
    TTFBMetricsData,
    TTSUsageMetricsData,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

EventSink = Callable[..., Awaitable[None]]


@dataclass
class TurnLatency:
    """One caller turn, timed on the server's monotonic clock (seconds)."""

    vad_stopped: float
    speech_ended: float  # VAD stop minus its stop_secs: when the caller actually went quiet
    stt_ms: float | None = None
    llm_ttfb_ms: float | None = None
    tts_ttfb_ms: float | None = None
    bot_started: float | None = None

    def as_dict(self) -> dict[str, Any]:
        v2v = None if self.bot_started is None else (self.bot_started - self.speech_ended) * 1000
        return {
            "voice_to_voice_ms": None if v2v is None else round(v2v, 1),
            "stt_ms": self.stt_ms,
            "llm_ttfb_ms": self.llm_ttfb_ms,
            "tts_ttfb_ms": self.tts_ttfb_ms,
        }


@dataclass
class CallMeter:
    """Latency per turn and usage totals for one call."""

    vad_stop_secs: float
    kinds: dict[str, str] = field(default_factory=dict)  # processor name -> stt | llm | tts
    turns: list[TurnLatency] = field(default_factory=list)
    usage: dict[str, float] = field(
        default_factory=lambda: {
            "llm_prompt_tokens": 0,
            "llm_completion_tokens": 0,
            "tts_characters": 0,
        }
    )

    def latency_summary(self) -> dict[str, Any]:
        turns = [t.as_dict() for t in self.turns]
        values = sorted(t["voice_to_voice_ms"] for t in turns if t["voice_to_voice_ms"] is not None)
        summary: dict[str, Any] = {"turns": turns}
        if values:
            summary["voice_to_voice_p50_ms"] = values[len(values) // 2]
            summary["voice_to_voice_max_ms"] = values[-1]
        return summary


class BotSpeech:
    """Lets a tool wait until something the agent is about to say has been played."""

    def __init__(self) -> None:
        self.speaking = False
        self._starts = 0
        self._changed = asyncio.Condition()

    async def mark(self, speaking: bool) -> None:
        async with self._changed:
            self.speaking = speaking
            self._starts += int(speaking)
            self._changed.notify_all()

    async def quiet(self) -> None:
        """Return once the agent is not speaking (at once if it is not)."""
        async with self._changed:
            await self._changed.wait_for(lambda: not self.speaking)

    async def finished_after_now(self) -> None:
        """Return once speech that starts after this call has stopped."""
        async with self._changed:
            starts = self._starts
            await self._changed.wait_for(lambda: self._starts > starts and not self.speaking)


class CallTap(FrameProcessor):
    """Records what happens on the call; every frame passes through unchanged."""

    def __init__(self, meter: CallMeter, on_event: EventSink, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.meter = meter
        self.speech = BotSpeech()
        self._on_event = on_event
        self._open: TurnLatency | None = None
        self._bot_speaking = False

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        now = time.monotonic()
        if isinstance(frame, VADUserStoppedSpeakingFrame):
            self._open = TurnLatency(vad_stopped=now, speech_ended=now - self.meter.vad_stop_secs)
            self.meter.turns.append(self._open)
        elif isinstance(frame, VADUserStartedSpeakingFrame) and self._bot_speaking:
            pass  # barge-in shows up as the InterruptionFrame below
        elif isinstance(frame, BotStartedSpeakingFrame):
            self._bot_speaking = True
            await self.speech.mark(True)
            if self._open is not None and self._open.bot_started is None:
                self._open.bot_started = now
                await self._on_event("latency", **self._open.as_dict())
        elif isinstance(frame, BotStoppedSpeakingFrame):
            self._bot_speaking = False
            await self.speech.mark(False)
        elif isinstance(frame, InterruptionFrame) and self._bot_speaking:
            await self._on_event("interrupted")
        elif isinstance(frame, InputDTMFFrame):
            await self._on_event("dtmf", digit=str(frame.button.value))
        elif isinstance(frame, ErrorFrame):
            await self._on_event("error", message=frame.error, fatal=frame.fatal)
        elif isinstance(frame, MetricsFrame):
            self._meter(frame)
        await self.push_frame(frame, direction)

    def _meter(self, frame: MetricsFrame) -> None:
        for data in frame.data:
            kind = self.meter.kinds.get(data.processor)
            turn = self._open
            if isinstance(data, TTFBMetricsData) and turn is not None and data.value > 0:
                if kind == "llm" and turn.llm_ttfb_ms is None:
                    turn.llm_ttfb_ms = round(data.value * 1000, 1)
                elif kind == "tts" and turn.tts_ttfb_ms is None:
                    turn.tts_ttfb_ms = round(data.value * 1000, 1)
            elif isinstance(data, ProcessingMetricsData) and kind == "stt" and turn is not None:
                turn.stt_ms = round(data.value * 1000, 1)
            elif isinstance(data, LLMUsageMetricsData):
                self.meter.usage["llm_prompt_tokens"] += data.value.prompt_tokens or 0
                self.meter.usage["llm_completion_tokens"] += data.value.completion_tokens or 0
            elif isinstance(data, TTSUsageMetricsData):
                self.meter.usage["tts_characters"] += data.value
