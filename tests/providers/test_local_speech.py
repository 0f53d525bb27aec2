"""The embedded speech providers, offline: faster-whisper, Piper and eSpeak NG.

Each adapter builds its Pipecat service from an agent's default settings,
and each service runs alone in a pipeline under Pipecat's own test driver.
"""

from __future__ import annotations

import asyncio
import csv
import threading
from pathlib import Path
from typing import Any

import pytest
from pipecat.frames.frames import (
    ErrorFrame,
    Frame,
    TranscriptionFrame,
    TTSAudioRawFrame,
    TTSSpeakFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
)
from pipecat.pipeline.worker import PipelineParams
from pipecat.services.stt_service import STTService
from pipecat.services.tts_service import TTSService
from pipecat.tests.utils import run_test

from switchboard.agents.schema import STTSettings, TTSSettings
from switchboard.errors import ConfigurationError
from switchboard.providers.base import BuildContext, STTProvider, TTSProvider
from switchboard.providers.phone_line import (
    pcm_rms,
    pcm_seconds,
    read_wav,
    run_service,
    through_phone_line,
    utterance_frames,
    word_error_rate,
)
from switchboard.providers.registry import get_spec, load_adapter
from switchboard.providers.spec import ProviderKind
from switchboard.providers.stt.whisper import (
    SharedWhisperSTTService,
    bundled_model_path,
    shared_whisper_model,
)
from switchboard.providers.tts.espeak import ESpeakError, ESpeakTTSService, engine
from switchboard.providers.tts.piper import SharedPiperTTSService

FIXTURES = Path(__file__).parent.parent / "fixtures" / "audio"
SENTENCE = "Thanks for calling. How can I help you today?"
AUDIBLE_RMS = 300.0  # of 32768; speech is in the thousands, silence is 0
PHONE_PIPELINE = PipelineParams(audio_in_sample_rate=8000, audio_out_sample_rate=8000)


@pytest.fixture(autouse=True)
def _no_downloads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every model comes from a package: reaching for a download fails the test."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"a model download was attempted: {args}")

    monkeypatch.setattr("faster_whisper.transcribe.download_model", refuse)
    monkeypatch.setattr("pipecat.services.piper.tts.download_voice", refuse)


def fixture_text(name: str) -> str:
    with (FIXTURES / "utterances.tsv").open(newline="") as tsv:
        return next(
            row["text"] for row in csv.DictReader(tsv, delimiter="\t") if row["file"] == name
        )


def stt(settings: STTSettings, sample_rate: int) -> STTService:
    adapter = load_adapter(ProviderKind.STT, settings.provider)
    assert isinstance(adapter, STTProvider)
    return adapter.create(settings, BuildContext(sample_rate=sample_rate))


def tts(settings: TTSSettings, sample_rate: int) -> TTSService:
    adapter = load_adapter(ProviderKind.TTS, settings.provider)
    assert isinstance(adapter, TTSProvider)
    return adapter.create(settings, BuildContext(sample_rate=sample_rate))


def transcripts(frames: list[Frame]) -> list[TranscriptionFrame]:
    return [f for f in frames if isinstance(f, TranscriptionFrame)]


def spoken_audio(frames: list[Frame]) -> list[TTSAudioRawFrame]:
    return [f for f in frames if isinstance(f, TTSAudioRawFrame)]


# ---- adapters ---------------------------------------------------------------------------


def test_adapters_build_services_from_default_settings() -> None:
    assert isinstance(stt(STTSettings(), 8000), SharedWhisperSTTService)
    assert isinstance(tts(TTSSettings(), 8000), SharedPiperTTSService)
    assert isinstance(tts(TTSSettings(provider="espeak"), 8000), ESpeakTTSService)


@pytest.mark.parametrize(
    "settings",
    [STTSettings(language="es"), STTSettings(model="large-v3")],
    ids=["language", "model"],
)
def test_whisper_refuses_what_the_bundled_model_cannot_do(settings: STTSettings) -> None:
    with pytest.raises(ConfigurationError):
        stt(settings, 8000)


@pytest.mark.parametrize(
    "settings",
    [TTSSettings(voice="en_US-ryan-high"), TTSSettings(provider="espeak", voice="no-such-voice")],
    ids=["piper", "espeak"],
)
def test_tts_refuses_voices_outside_the_catalog(settings: TTSSettings) -> None:
    with pytest.raises(ConfigurationError):
        tts(settings, 8000)


# ---- faster-whisper ---------------------------------------------------------------------


@pytest.mark.parametrize("sample_rate", [8000, 16000], ids=["phone", "browser"])
async def test_whisper_transcribes_a_caller(sample_rate: int) -> None:
    name = "book_appointment.wav"
    pcm = await through_phone_line(read_wav(FIXTURES / name), sample_rate)

    frames = await run_service(
        stt(STTSettings(), sample_rate), utterance_frames(pcm, sample_rate), sample_rate=sample_rate
    )

    [transcript] = transcripts(frames)
    assert transcript.finalized
    assert word_error_rate([(fixture_text(name), transcript.text)]) <= 0.1


async def test_whisper_calls_share_one_model() -> None:
    names = ["opening_hours.wav", "cancel_order.wav"]
    services = [stt(STTSettings(), 8000) for _ in names]
    utterances = [await through_phone_line(read_wav(FIXTURES / name)) for name in names]

    results = await asyncio.gather(
        *(
            run_service(service, utterance_frames(pcm, 8000), sample_rate=8000)
            for service, pcm in zip(services, utterances, strict=True)
        )
    )

    first, second = (s for s in services if isinstance(s, SharedWhisperSTTService))
    assert first._model is not None and first._model is second._model
    for name, frames in zip(names, results, strict=True):
        [transcript] = transcripts(frames)
        assert word_error_rate([(fixture_text(name), transcript.text)]) <= 0.2


async def test_whisper_transcribes_in_a_worker_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    model = await asyncio.to_thread(shared_whisper_model, str(bundled_model_path()), cpu_threads=2)
    transcribe, threads = model.transcribe, []

    def spy(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.current_thread())
        return transcribe(*args, **kwargs)

    monkeypatch.setattr(model, "transcribe", spy)
    pcm = await through_phone_line(read_wav(FIXTURES / "opening_hours.wav"))

    service = stt(STTSettings(), 8000)
    frames = await run_service(service, utterance_frames(pcm, 8000), sample_rate=8000)

    assert transcripts(frames)
    assert threads and threading.main_thread() not in threads


# ---- text to speech ---------------------------------------------------------------------


@pytest.mark.parametrize("provider", ["piper", "espeak"])
@pytest.mark.parametrize("sample_rate", [8000, 16000], ids=["phone", "browser"])
async def test_tts_speaks_at_the_pipeline_rate(provider: str, sample_rate: int) -> None:
    service = tts(TTSSettings(provider=provider), sample_rate)

    frames = await run_service(service, [TTSSpeakFrame(SENTENCE)], sample_rate=sample_rate)

    kinds = [type(f) for f in frames]
    audio_at = [i for i, kind in enumerate(kinds) if kind is TTSAudioRawFrame]
    assert kinds.index(TTSStartedFrame) < audio_at[0]
    assert kinds.index(TTSStoppedFrame) > audio_at[-1]
    audio = spoken_audio(frames)
    assert {(f.sample_rate, f.num_channels) for f in audio} == {(sample_rate, 1)}
    pcm = b"".join(f.audio for f in audio)
    assert 1.0 < pcm_seconds(pcm, sample_rate) < 10.0
    assert pcm_rms(pcm) > AUDIBLE_RMS


async def test_piper_calls_share_one_voice_and_keep_their_own_speed() -> None:
    normal, fast = tts(TTSSettings(), 8000), tts(TTSSettings(speed=2.0), 8000)

    normal_frames, fast_frames = await asyncio.gather(
        run_service(normal, [TTSSpeakFrame(SENTENCE)], sample_rate=8000),
        run_service(fast, [TTSSpeakFrame(SENTENCE)], sample_rate=8000),
    )

    assert isinstance(normal, SharedPiperTTSService) and isinstance(fast, SharedPiperTTSService)
    assert normal._voice.session is fast._voice.session
    seconds = [
        pcm_seconds(b"".join(f.audio for f in spoken_audio(frames)), 8000)
        for frames in (normal_frames, fast_frames)
    ]
    assert seconds[1] < 0.85 * seconds[0]  # Piper's noise varies durations by a few %


async def test_espeak_synthesizes_in_a_worker_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    synthesize, threads = engine.synthesize, []

    def spy(*args: Any, **kwargs: Any) -> tuple[bytes, int]:
        threads.append(threading.current_thread())
        return synthesize(*args, **kwargs)

    monkeypatch.setattr(engine, "synthesize", spy)

    frames = await run_service(
        tts(TTSSettings(provider="espeak"), 8000), [TTSSpeakFrame(SENTENCE)], sample_rate=8000
    )

    assert spoken_audio(frames)
    assert threads and threading.main_thread() not in threads


async def test_espeak_serializes_concurrent_syntheses() -> None:
    texts = [SENTENCE, "One moment please.", "Goodbye.", SENTENCE]
    alone = [pcm_seconds(*engine.synthesize(text, "en-us")) for text in texts]

    together = await asyncio.gather(
        *(asyncio.to_thread(engine.synthesize, text, "en-us") for text in texts)
    )

    for seconds, (pcm, rate) in zip(alone, together, strict=True):
        assert pcm_seconds(pcm, rate) == pytest.approx(seconds, rel=0.02)
        assert pcm_rms(pcm) > AUDIBLE_RMS


@pytest.mark.parametrize("voice", get_spec(ProviderKind.TTS, "espeak").voices)
def test_espeak_has_every_catalog_voice(voice: str) -> None:
    pcm, rate = engine.synthesize("one two three", voice)

    assert rate == 22050
    assert pcm_seconds(pcm, rate) > 0.5


def test_espeak_names_an_unknown_voice() -> None:
    with pytest.raises(ESpeakError, match="no-such-voice"):
        engine.check_voice("no-such-voice")


async def test_espeak_service_reports_an_unknown_voice_as_an_error_frame() -> None:
    # With no audio, Pipecat closes the turn once it has been quiet this long.
    service = ESpeakTTSService(voice="no-such-voice", sample_rate=8000, stop_frame_timeout_s=0.1)

    down, up = await run_test(
        service, frames_to_send=[TTSSpeakFrame(SENTENCE)], pipeline_params=PHONE_PIPELINE
    )

    errors = [f for f in [*down, *up] if isinstance(f, ErrorFrame)]
    assert errors and "no-such-voice" in errors[0].error
    assert not spoken_audio(list(down))
    assert any(isinstance(f, TTSStoppedFrame) for f in down)
