"""Caller lines to 8 kHz µ-law: WAV files of any shape and text through the embedded Piper voice."""

from __future__ import annotations

import math
import wave
from pathlib import Path

import numpy as np
import pytest

from switchboard.caller.caller_voice import CallerLine, CallerVoice, read_wav, stereo


def write(path: Path, samples: np.ndarray, *, rate: int, channels: int, width: int) -> Path:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(width)
        wav.setframerate(rate)
        wav.writeframes(samples.tobytes())
    return path


def sine(seconds: float, rate: int) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return np.sin(2 * math.pi * 300 * t)


def test_a_line_is_text_or_audio_never_both() -> None:
    with pytest.raises(ValueError):
        CallerLine()
    with pytest.raises(ValueError):
        CallerLine(text="hi", audio=Path("x.wav"))
    assert CallerLine(audio=Path("a/b.wav")).label == "[a/b.wav]"


def test_stereo_8_bit_wav_becomes_mono_16_bit(tmp_path: Path) -> None:
    left = (sine(0.5, 44100) * 100 + 128).astype(np.uint8)
    frames = np.column_stack([left, left]).ravel()
    recording = read_wav(write(tmp_path / "s.wav", frames, rate=44100, channels=2, width=1))
    assert recording.sample_rate == 44100
    assert recording.seconds == pytest.approx(0.5)
    samples = np.frombuffer(recording.pcm, "<i2")
    assert 20000 < np.abs(samples).max() < 26000  # 100/128 of full scale


async def test_wav_lines_are_resampled_to_8k_mulaw(tmp_path: Path) -> None:
    samples = (sine(1.0, 16000) * 10000).astype("<i2")
    path = write(tmp_path / "m.wav", samples, rate=16000, channels=1, width=2)
    ulaw = await CallerVoice().render(CallerLine(audio=path))
    assert len(ulaw) == pytest.approx(8000, abs=10)


async def test_text_lines_are_spoken_by_piper_once() -> None:
    voice = CallerVoice()
    first = await voice.render(CallerLine(text="Yes, please."))
    assert 0.4 < len(first) / 8000 < 3.0
    assert len(set(first)) > 50  # speech, not silence
    assert await voice.render(CallerLine(text="Yes, please.")) is first


async def test_silence_at_the_end_of_a_line_is_not_sent(tmp_path: Path) -> None:
    sound = (sine(0.5, 16000) * 10000).astype("<i2")
    padded = np.concatenate([sound, np.zeros(8000, "<i2")])  # + 0.5 s of silence
    path = write(tmp_path / "p.wav", padded, rate=16000, channels=1, width=2)
    ulaw = await CallerVoice().render(CallerLine(audio=path))
    assert len(ulaw) / 8000 == pytest.approx(0.52, abs=0.01)


def test_stereo_pads_the_shorter_side() -> None:
    both = np.frombuffer(stereo(b"\x01\x00" * 3, b"\x02\x00"), "<i2").reshape(-1, 2)
    assert both.tolist() == [[1, 2], [1, 0], [1, 0]]
