"""A deterministic text-to-speech for tests and benchmarks.

A real ``TTSService``: text aggregation, interruptions, metrics and frame
flow are Pipecat's own. Only synthesis is faked: after ``ttfb_ms`` it yields
a sine tone as long as the text would take to say, in 20 ms chunks paced in
real time like a streaming provider.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncGenerator, AsyncIterator

import numpy as np
from pipecat.frames.frames import Frame
from pipecat.services.settings import TTSSettings as PipecatTTSSettings
from pipecat.services.tts_service import TTSService

from switchboard.agents.schema import TTSSettings
from switchboard.providers.base import BuildContext, TTSProvider
from switchboard.providers.options import FakeTTSOptions

CHUNK_SECONDS = 0.02


def tone(seconds: float, sample_rate: int, frequency_hz: float) -> bytes:
    """A 16-bit mono sine tone at half scale."""
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    return (np.sin(2 * math.pi * frequency_hz * t) * 16383).astype("<i2").tobytes()


class FakeTTSService(TTSService):
    def __init__(self, *, options: FakeTTSOptions, **kwargs: object) -> None:
        kwargs.setdefault("settings", PipecatTTSSettings(model=None, voice=None, language=None))
        super().__init__(push_start_frame=True, push_stop_frames=True, **kwargs)  # type: ignore[arg-type]
        self._options = options
        self.spoken: list[str] = []

    def can_generate_metrics(self) -> bool:
        return True

    def speech_seconds(self, text: str) -> float:
        return max(0.2, len(text) / self._options.chars_per_second)

    async def _chunks(self, text: str) -> AsyncIterator[bytes]:
        audio = tone(self.speech_seconds(text), self.sample_rate, self._options.frequency_hz)
        step = int(CHUNK_SECONDS * self.sample_rate) * 2
        await asyncio.sleep(self._options.ttfb_ms / 1000)  # the provider's time to first byte
        loop = asyncio.get_running_loop()
        started = loop.time()
        for n, offset in enumerate(range(0, len(audio), step)):
            yield audio[offset : offset + step]
            # Stream no faster than real time, as a provider does.
            ahead = started + (n + 1) * CHUNK_SECONDS * 0.5 - loop.time()
            if ahead > 0:
                await asyncio.sleep(ahead)

    async def run_tts(self, text: str, context_id: str) -> AsyncGenerator[Frame, None]:
        self.spoken.append(text)
        await self.start_tts_usage_metrics(text)
        async for frame in self._stream_audio_frames_from_iterator(
            self._chunks(text), in_sample_rate=self.sample_rate, context_id=context_id
        ):
            await self.stop_ttfb_metrics()
            yield frame


class FakeTTS(TTSProvider):
    def create(self, settings: TTSSettings, ctx: BuildContext) -> TTSService:
        options = self.options(settings)
        assert isinstance(options, FakeTTSOptions)
        return FakeTTSService(options=options, sample_rate=ctx.sample_rate)
