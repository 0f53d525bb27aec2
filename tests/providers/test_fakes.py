"""The fake STT and TTS behave like real Pipecat services with set timing."""

from __future__ import annotations

import asyncio

import numpy as np
from pipecat.frames.frames import (
    InputAudioRawFrame,
    TranscriptionFrame,
    TTSAudioRawFrame,
    TTSSpeakFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.tests.utils import run_test

from switchboard.agents.schema import STTSettings, TTSSettings
from switchboard.providers.base import BuildContext
from switchboard.providers.registry import load_adapter
from switchboard.providers.spec import ProviderKind
from switchboard.providers.stt.fake import FakeSTTService
from switchboard.providers.tts.fake import FakeTTSService

RATE = 8000


def speech(seconds: float) -> list[InputAudioRawFrame]:
    samples = (np.random.default_rng(1).normal(0, 3000, int(seconds * RATE))).astype("<i2")
    chunk = RATE // 50
    return [
        InputAudioRawFrame(audio=samples[i : i + chunk].tobytes(), sample_rate=RATE, num_channels=1)
        for i in range(0, len(samples), chunk)
    ]


async def test_fake_stt_transcribes_each_segment_in_order_after_its_latency() -> None:
    service = load_adapter(ProviderKind.STT, "fake").create(
        STTSettings(
            provider="fake",
            options={"transcripts": ["first line", "second line"], "latency_ms": 50},
        ),
        BuildContext(sample_rate=RATE),
    )
    assert isinstance(service, FakeSTTService)
    frames = [
        VADUserStartedSpeakingFrame(),
        *speech(0.3),
        VADUserStoppedSpeakingFrame(),
        VADUserStartedSpeakingFrame(),
        *speech(0.3),
        VADUserStoppedSpeakingFrame(),
        VADUserStartedSpeakingFrame(),
        *speech(0.3),
        VADUserStoppedSpeakingFrame(),
    ]
    loop = asyncio.get_running_loop()
    started = loop.time()
    down, _ = await run_test(service, frames_to_send=frames)
    elapsed = loop.time() - started
    texts = [f.text for f in down if isinstance(f, TranscriptionFrame)]
    assert texts == ["first line", "second line"]  # the third segment has no script: silence
    assert service.segments_heard == 3
    assert elapsed >= 3 * 0.05


async def test_fake_tts_speaks_a_tone_as_long_as_the_text() -> None:
    service = load_adapter(ProviderKind.TTS, "fake").create(
        TTSSettings(provider="fake", options={"ttfb_ms": 30, "chars_per_second": 20}),
        BuildContext(sample_rate=RATE),
    )
    assert isinstance(service, FakeTTSService)
    text = "Hello there, this is forty characters ok."
    down, _ = await run_test(service, frames_to_send=[TTSSpeakFrame(text)])
    audio = b"".join(f.audio for f in down if isinstance(f, TTSAudioRawFrame))
    assert all(f.sample_rate == RATE for f in down if isinstance(f, TTSAudioRawFrame))
    seconds = len(audio) / 2 / RATE
    assert abs(seconds - service.speech_seconds(text)) < 0.03
    assert np.abs(np.frombuffer(audio, "<i2")).mean() > 5000  # a tone, not silence
    kinds = [type(f) for f in down]
    assert (
        kinds.index(TTSStartedFrame) < kinds.index(TTSAudioRawFrame) < kinds.index(TTSStoppedFrame)
    )
    assert service.spoken == [text]
