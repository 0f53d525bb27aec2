"""A telephone line in a few functions, for tests and benchmarks of the speech providers.

A carrier carries 8 kHz G.711 µ-law. ``through_phone_line`` takes 16-bit PCM
(the 16 kHz WAVs we record), squeezes it to 8 kHz µ-law the way a carrier
does and decodes it again, so a speech-to-text provider hears what it would
hear on a real call. ``word_error_rate`` scores what it heard.

The codec and resampling are Pipecat's (``pipecat.audio.utils``), the same
code the carrier serializers use. ``utterance_frames`` and ``run_service``
play a caller's utterance into one service, or a text into a TTS, the way a
pipeline would.
"""

from __future__ import annotations

import math
import re
import wave
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pipecat.audio.utils import create_file_resampler, pcm_to_ulaw, ulaw_to_pcm
from pipecat.frames.frames import (
    Frame,
    InputAudioRawFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.observers.base_observer import BaseObserver
from pipecat.pipeline.worker import PipelineParams
from pipecat.processors.frame_processor import FrameProcessor
from pipecat.tests.utils import run_test

PHONE_SAMPLE_RATE = 8000
SAMPLE_WIDTH = 2  # bytes: 16-bit PCM


@dataclass(frozen=True)
class Recording:
    """Mono 16-bit PCM and its sample rate."""

    pcm: bytes
    sample_rate: int

    @property
    def seconds(self) -> float:
        return pcm_seconds(self.pcm, self.sample_rate)


def read_wav(path: Path | str) -> Recording:
    """Any PCM WAV (8, 16 or 32-bit; mono or stereo, any rate) as mono 16-bit PCM."""
    with wave.open(str(path), "rb") as wav:
        width, channels, rate = wav.getsampwidth(), wav.getnchannels(), wav.getframerate()
        raw = wav.readframes(wav.getnframes())
    if width == 1:
        samples = (np.frombuffer(raw, np.uint8).astype(np.int32) - 128) << 8
    elif width == SAMPLE_WIDTH:
        samples = np.frombuffer(raw, "<i2").astype(np.int32)
    elif width == 4:
        samples = np.frombuffer(raw, "<i4").astype(np.int64) >> 16
    else:
        raise ValueError(f"{path}: {8 * width}-bit WAV is not supported (use 8, 16 or 32-bit)")
    mono = samples.reshape(-1, channels).mean(axis=1) if channels > 1 else samples
    return Recording(np.asarray(mono).astype("<i2").tobytes(), rate)


def pcm_seconds(pcm: bytes, sample_rate: int) -> float:
    """How long mono 16-bit PCM lasts."""
    return len(pcm) / (SAMPLE_WIDTH * sample_rate)


def pcm_rms(pcm: bytes) -> float:
    """Root mean square of 16-bit PCM samples, 0 to 32768 (0 for no samples)."""
    samples = np.frombuffer(pcm, dtype=np.int16).astype(np.float64)
    return math.sqrt(float(np.mean(samples**2))) if samples.size else 0.0


async def encode_phone_line(pcm: bytes, sample_rate: int) -> bytes:
    """PCM at any rate to 8 kHz µ-law bytes, as a carrier sends them."""
    return bytes(await pcm_to_ulaw(pcm, sample_rate, PHONE_SAMPLE_RATE, create_file_resampler()))


async def decode_phone_line(ulaw: bytes, sample_rate: int = PHONE_SAMPLE_RATE) -> bytes:
    """8 kHz µ-law bytes to 16-bit PCM at ``sample_rate``."""
    return bytes(await ulaw_to_pcm(ulaw, PHONE_SAMPLE_RATE, sample_rate, create_file_resampler()))


async def through_phone_line(recording: Recording, sample_rate: int = PHONE_SAMPLE_RATE) -> bytes:
    """A recording as heard at the far end of a call: 8 kHz µ-law, decoded to PCM."""
    ulaw = await encode_phone_line(recording.pcm, recording.sample_rate)
    return await decode_phone_line(ulaw, sample_rate)


# ---- word error rate -------------------------------------------------------------------

_ONES = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen",
)  # fmt: skip
_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_FILLERS = frozenset({"um", "uh", "uhm", "umm", "hmm", "mm", "er", "erm", "ah"})


def _number_words(digits: str) -> list[str]:
    """0-99 as a number (``10`` is "ten"); longer digit strings digit by digit, as phone
    numbers, order numbers and codes are read out."""
    if len(digits) > 2 or (len(digits) == 2 and digits[0] == "0"):
        return [_ONES[int(d)] for d in digits]
    value = int(digits)
    if value < 20:
        return [_ONES[value]]
    tens, ones = divmod(value, 10)
    return [_TENS[tens]] if ones == 0 else [_TENS[tens], _ONES[ones]]


def normalize_words(text: str) -> list[str]:
    """Words to compare: lowercase, no punctuation or fillers, numbers and symbols spoken.

    Whisper writes what people say in its own way ("555-123-4567", "ABC123",
    "alex@example.com"); this brings both sides to the spoken form
    ("five five five ...", "a b c one two three", "alex at example dot com").
    """
    text = text.replace("@", " at ")
    text = re.sub(r"(?<=\w)\.(?=\w)", " dot ", text)
    # Capital runs are spelled-out letters ("ABC" is "a b c"); a lone capital is left alone.
    text = re.sub(r"\b[A-Z]{2,}(?=\d|\b)", lambda m: " ".join(m.group()), text)
    text = re.sub(r"(?<=[A-Za-z])(?=\d)|(?<=\d)(?=[A-Za-z])", " ", text)
    text = text.lower().replace("'", "").replace("\u2019", "")
    words: list[str] = []
    for token in re.sub(r"[^a-z0-9]+", " ", text).split():
        if token.isdigit():
            words.extend(_number_words(token))
        elif token not in _FILLERS:
            words.append(token)
    return words


def word_edits(reference: Sequence[str], hypothesis: Sequence[str]) -> int:
    """Substitutions, deletions and insertions turning ``reference`` into ``hypothesis``."""
    previous = list(range(len(hypothesis) + 1))
    for i, ref_word in enumerate(reference, start=1):
        current = [i]
        for j, hyp_word in enumerate(hypothesis, start=1):
            current.append(
                min(
                    previous[j] + 1,  # deletion
                    current[j - 1] + 1,  # insertion
                    previous[j - 1] + (ref_word != hyp_word),  # substitution or match
                )
            )
        previous = current
    return previous[-1]


def word_error_rate(pairs: Iterable[tuple[str, str]]) -> float:
    """Aggregate WER over ``(reference, hypothesis)`` pairs: total edits / total reference words."""
    edits = words = 0
    for reference, hypothesis in pairs:
        ref_words = normalize_words(reference)
        edits += word_edits(ref_words, normalize_words(hypothesis))
        words += len(ref_words)
    if words == 0:
        raise ValueError("no reference words to score")
    return edits / words


# ---- driving a speech service as a call would -------------------------------------------

FRAME_MS = 20  # carriers and WebRTC send audio in 20 ms packets
START_TIMEOUT_SECS = 30.0  # the first call loads the embedded models


def utterance_frames(pcm: bytes, sample_rate: int) -> list[Frame]:
    """One caller utterance as an STT service sees it: VAD start, 20 ms audio packets, VAD stop."""
    size = sample_rate * FRAME_MS // 1000 * SAMPLE_WIDTH
    packets = [
        InputAudioRawFrame(pcm[i : i + size], sample_rate, 1) for i in range(0, len(pcm), size)
    ]
    return [VADUserStartedSpeakingFrame(), *packets, VADUserStoppedSpeakingFrame()]


async def run_service(
    service: FrameProcessor,
    frames: Sequence[Frame],
    *,
    sample_rate: int,
    observers: list[BaseObserver] | None = None,
) -> list[Frame]:
    """Run one service alone in a pipeline at ``sample_rate``; the frames it sent downstream.

    Pipecat's own test driver (``run_test``): it sends ``frames``, then an
    ``EndFrame``, and returns once the service has finished with them.
    """
    params = PipelineParams(audio_in_sample_rate=sample_rate, audio_out_sample_rate=sample_rate)
    down, _ = await run_test(
        service,
        frames_to_send=frames,
        pipeline_params=params,
        observers=observers,
        start_timeout=START_TIMEOUT_SECS,
    )
    return list(down)
