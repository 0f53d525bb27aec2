"""A deterministic speech-to-text for tests and benchmarks.

It is a real ``SegmentedSTTService``: VAD segments the caller's audio exactly
as for faster-whisper; each segment then yields the next scripted transcript
after a set latency. Only the recognition itself is faked.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

from pipecat.frames.frames import Frame, TranscriptionFrame
from pipecat.services.settings import STTSettings as PipecatSTTSettings
from pipecat.services.stt_service import SegmentedSTTService, STTService
from pipecat.utils.time import time_now_iso8601

from switchboard.agents.schema import STTSettings
from switchboard.providers.base import BuildContext, STTProvider
from switchboard.providers.languages import pipecat_language
from switchboard.providers.options import FakeSTTOptions


class FakeSTTService(SegmentedSTTService):
    """Transcribes the n-th speech segment as ``transcripts[n]`` after ``latency_ms``."""

    def __init__(
        self,
        *,
        transcripts: list[str],
        latency_ms: int,
        languages: list[str] | None = None,
        **kwargs: object,
    ) -> None:
        # A fake has no model or language; Pipecat wants every setting given.
        kwargs.setdefault("settings", PipecatSTTSettings(model=None, language=None))
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._transcripts = list(transcripts)
        self._languages = list(languages or [])
        self._latency = latency_ms / 1000
        self.segments_heard = 0

    @property
    def wants_wav_segments(self) -> bool:
        return False

    def can_generate_metrics(self) -> bool:
        return True

    async def run_stt(self, audio: bytes) -> AsyncGenerator[Frame, None]:
        index = self.segments_heard
        self.segments_heard += 1
        await self.start_processing_metrics()
        await asyncio.sleep(self._latency)  # the provider's simulated recognition time
        await self.stop_processing_metrics()
        if index < len(self._transcripts) and self._transcripts[index]:
            language = (
                pipecat_language(self._languages[index]) if index < len(self._languages) else None
            )
            yield TranscriptionFrame(
                self._transcripts[index], self._user_id, time_now_iso8601(), language=language
            )


class FakeSTT(STTProvider):
    def create(self, settings: STTSettings, ctx: BuildContext) -> STTService:
        options = self.options(settings)
        assert isinstance(options, FakeSTTOptions)
        return FakeSTTService(
            transcripts=options.transcripts,
            languages=options.languages,
            latency_ms=options.latency_ms,
            sample_rate=ctx.sample_rate,
        )
