"""What one 20 ms block of the callee's audio is: silence, speech or a tone.

The detector listens before the call's own VAD (Silero runs later, inside
the user aggregator), so it carries a VAD of its own that costs almost
nothing: a block louder than the line's noise floor is sound; a sound whose
energy sits in one narrow band is a tone (an answering machine's beep); any
other sound is speech.

Why an FFT peak rather than Goertzel filters at chosen frequencies: beeps run
from about 400 Hz to over 2 kHz, and one real FFT of a block (160 samples at
8 kHz, a few microseconds) finds the peak wherever it is; the share of the
block's energy around that peak says whether it is a tone. Quiet blocks are
never transformed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

import numpy as np
import numpy.typing as npt

BLOCK_SECONDS = 0.02  # carriers send 20 ms packets; the detector thinks in the same steps
FULL_SCALE = 32768.0


class BlockKind(Enum):
    """What a block sounds like."""

    SILENCE = "silence"
    SPEECH = "speech"
    TONE = "tone"


@dataclass(frozen=True, slots=True)
class Block:
    """One analysed block: its kind, its level (dBFS) and, for a tone, its frequency."""

    kind: BlockKind
    level_db: float
    tone_hz: float | None = None


@dataclass(frozen=True)
class BlockThresholds:
    """Where silence ends and a tone begins; the defaults suit an 8 kHz phone line.

    Attributes:
        speech_margin_db: how far above the noise floor a block must be to count as sound.
        min_sound_db: a block quieter than this is silence however quiet the line is.
        floor_seconds: the noise floor is the quietest block in this trailing window (or
            since the call began), so it follows a noisy line up within this time and is
            never pulled up by speech, whose pauses between words keep dipping to the floor.
            The first block of a call sets it: a line is picked up before anyone speaks.
        tone_purity: the share of a block's energy within two FFT bins of its peak that
            makes it a tone. A beep through a µ-law line scores above 0.99; Piper speech on
            the same line scored at most 0.954 (a tenth of its blocks pass 0.8), so a
            beep is also required to hold its frequency for a while (``min_beep``).
        tone_band_hz: where beeps are; a peak outside is not a tone.
    """

    speech_margin_db: float = 12.0
    min_sound_db: float = -50.0
    floor_seconds: float = 2.0
    tone_purity: float = 0.96
    tone_band_hz: tuple[float, float] = (300.0, 3000.0)


class BlockAnalyzer:
    """Turns 20 ms blocks of 16-bit PCM into ``Block``s, tracking the line's noise floor.

    One per call: the floor is that line's own.
    """

    def __init__(self, sample_rate: int, thresholds: BlockThresholds | None = None) -> None:
        self.sample_rate = sample_rate
        self.thresholds = thresholds or BlockThresholds()
        self.block_samples = round(sample_rate * BLOCK_SECONDS)
        floor_blocks = max(1, round(self.thresholds.floor_seconds / BLOCK_SECONDS))
        self._levels = np.full(floor_blocks, np.inf)  # nothing heard yet
        self._next = 0
        self._window = np.hanning(self.block_samples)
        freqs = np.fft.rfftfreq(self.block_samples, 1 / sample_rate)
        low, high = self.thresholds.tone_band_hz
        band = np.flatnonzero((freqs >= low) & (freqs <= high))
        self._band = (int(band[0]), int(band[-1]) + 1)
        self._bin_hz = sample_rate / self.block_samples

    @property
    def noise_floor_db(self) -> float:
        """The quietest level heard over the trailing window (infinite before any)."""
        return float(self._levels.min())

    def analyze(self, block: bytes) -> Block:
        """Classify one block of ``block_samples`` mono 16-bit PCM samples."""
        samples = np.frombuffer(block, "<i2").astype(np.float64)
        energy = float(np.dot(samples, samples)) / max(1, samples.size)
        level = 10 * math.log10(energy / FULL_SCALE**2 + 1e-12)
        self._levels[self._next] = level
        floor = self.noise_floor_db
        self._next = (self._next + 1) % self._levels.size
        threshold = max(floor + self.thresholds.speech_margin_db, self.thresholds.min_sound_db)
        if level < threshold:
            return Block(BlockKind.SILENCE, level)
        tone_hz = self._tone(samples)
        if tone_hz is not None:
            return Block(BlockKind.TONE, level, tone_hz)
        return Block(BlockKind.SPEECH, level)

    def _tone(self, samples: npt.NDArray[np.float64]) -> float | None:
        """The block's frequency if nearly all its energy is around one peak, else None."""
        if samples.size != self.block_samples:
            return None
        power = np.abs(np.fft.rfft(samples * self._window)) ** 2
        total = float(power[1:].sum())
        low, high = self._band
        peak = low + int(np.argmax(power[low:high]))
        near = float(power[max(1, peak - 2) : peak + 3].sum())
        if total <= 0 or near / total < self.thresholds.tone_purity:
            return None
        return peak * self._bin_hz
