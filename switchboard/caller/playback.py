"""The phone's loudspeaker: agent audio plays in real time from the moment it arrives.

A carrier sends agent audio as fast as the app writes it; the phone plays it
at one second per second. This model keeps that playback buffer so the
caller can tell what it heard and when:

- a chunk that arrives while earlier audio is still playing queues behind it;
- a chunk that arrives after the buffer ran dry, in the middle of a reply, is
  an *underrun*: the caller heard a gap as long as the chunk was late;
- a ``clear`` (barge-in) drops whatever had not been played yet;
- a reply (``AgentSpeech``) ends once the buffer has stayed empty for
  ``speech_gap`` seconds, when the caller starts a new line, or on a clear.

Times are the caller's event-loop clock, passed in, so the model is a pure
function of its inputs and testable without a network.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field

ULAW_RATE = 8000  # µ-law bytes per second: one byte per sample at 8 kHz
ULAW_SILENCE = 0xFF  # µ-law code for a zero sample


@dataclass
class PlayedChunk:
    """One piece of agent audio and where it sits on the speaker's timeline."""

    arrived_at: float
    starts_at: float
    audio: bytes  # µ-law 8 kHz; shortened when a clear cut it off

    @property
    def ends_at(self) -> float:
        return self.starts_at + len(self.audio) / ULAW_RATE


@dataclass(frozen=True)
class Underrun:
    """The speaker ran dry mid-reply: silence from ``at`` for ``seconds``."""

    at: float
    seconds: float


@dataclass(frozen=True)
class Clear:
    """The app cleared the buffer at ``at``; ``dropped_seconds`` of audio went unheard."""

    at: float
    dropped_seconds: float


@dataclass
class AgentSpeech:
    """One stretch of agent speech as the caller heard it."""

    first_arrival: float  # the first chunk reached the phone
    starts_at: float  # it started playing
    ends_at: float  # the last of it finished playing (or was cut off)
    underruns: list[Underrun] = field(default_factory=list)
    cleared: bool = False

    @property
    def seconds(self) -> float:
        return self.ends_at - self.starts_at


class PlaybackBuffer:
    """Agent audio on the phone's speaker, chunk by chunk, with its gaps and clears."""

    def __init__(self, *, speech_gap: float = 0.6, gap_tolerance: float = 0.005) -> None:
        self.speech_gap = speech_gap
        self.gap_tolerance = gap_tolerance  # timer jitter below this is not a gap
        self.chunks: list[PlayedChunk] = []
        self.arrivals: list[float] = []  # every chunk's arrival, in order
        self.speeches: list[AgentSpeech] = []
        self.clears: list[Clear] = []
        self.play_end = -math.inf  # when everything received so far will have played
        self._speech_open = False

    def receive(self, now: float, audio: bytes) -> PlayedChunk:
        """Queue a chunk that arrived at ``now``; start a new speech or note an underrun."""
        if now >= self.play_end:
            late = now - self.play_end
            if self._speech_open and late < self.speech_gap:
                if late > self.gap_tolerance:
                    self.speeches[-1].underruns.append(Underrun(self.play_end, late))
            else:
                self.speeches.append(AgentSpeech(now, now, now))
                self._speech_open = True
            starts_at = now
        else:
            starts_at = self.play_end
            if not self._speech_open:  # still playing a speech that was closed by the caller
                self.speeches.append(AgentSpeech(now, starts_at, starts_at))
                self._speech_open = True
        chunk = PlayedChunk(now, starts_at, audio)
        self.arrivals.append(now)
        self.chunks.append(chunk)
        self.play_end = chunk.ends_at
        self.speeches[-1].ends_at = self.play_end
        return chunk

    def clear(self, now: float) -> Clear:
        """Drop everything not yet played at ``now`` (the caller talked over the agent)."""
        dropped = 0.0
        kept: list[PlayedChunk] = []
        for chunk in self.chunks:
            if chunk.ends_at <= now:
                kept.append(chunk)
                continue
            played = max(0, round((now - chunk.starts_at) * ULAW_RATE))
            dropped += (len(chunk.audio) - played) / ULAW_RATE
            if played:
                chunk.audio = chunk.audio[:played]
                kept.append(chunk)
        self.chunks = kept
        if self._speech_open and self.play_end > now:
            self.speeches[-1].ends_at = now
            self.speeches[-1].cleared = True
        self.play_end = min(self.play_end, now)
        self._speech_open = False
        event = Clear(now, dropped)
        self.clears.append(event)
        return event

    def end_speech(self) -> None:
        """The caller started talking: agent audio from now on belongs to a new reply."""
        self._speech_open = False

    def playing(self, now: float) -> bool:
        return now < self.play_end

    def quiet_since(self, now: float) -> float:
        """How long the speaker has been silent at ``now`` (0 while it plays)."""
        return max(0.0, now - self.play_end)

    def seconds_after(self, moment: float) -> float:
        """Seconds of agent audio that arrived at or after ``moment`` (what a machine recorded)."""
        return sum(len(c.audio) for c in self.chunks if c.arrived_at >= moment) / ULAW_RATE

    def first_arrival_after(self, moment: float) -> float | None:
        """When the first chunk at or after ``moment`` arrived, if one has (cleared or not)."""
        index = bisect.bisect_left(self.arrivals, moment)
        return self.arrivals[index] if index < len(self.arrivals) else None

    def speech_at(self, arrival: float) -> AgentSpeech | None:
        """The speech whose first chunk arrived at ``arrival`` or that was playing then."""
        for speech in reversed(self.speeches):
            if speech.first_arrival <= arrival:
                return speech
        return None

    def render(self, origin: float, seconds: float) -> bytes:
        """What the speaker played from ``origin`` for ``seconds``, as µ-law 8 kHz."""
        timeline = bytearray([ULAW_SILENCE]) * max(0, round(seconds * ULAW_RATE))
        for chunk in self.chunks:
            offset = round((chunk.starts_at - origin) * ULAW_RATE)
            audio = chunk.audio[max(0, -offset) :]
            offset = max(0, offset)
            audio = audio[: max(0, len(timeline) - offset)]
            timeline[offset : offset + len(audio)] = audio
        return bytes(timeline)
