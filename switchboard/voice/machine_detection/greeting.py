"""Who answered, told from the length of the greeting and the silence after it.

A person answers with a word or two ("Hello?", "Yeah, Sam speaking") and
then waits for the caller; a machine plays a greeting of several seconds,
often ended by a beep. So, block by block (see ``block_features``):

- a beep (a steady tone) at any point: a machine;
- speech that runs on, with pauses shorter than ``human_silence``, past
  ``max_human_greeting``: a machine;
- a greeting shorter than that followed by ``human_silence`` of quiet: a person;
- nothing decided by ``decision_deadline``: unknown (silence, or a late start).

This is the shape of Asterisk's AMD() (greeting 1.5 s, after-greeting
silence 0.8 s, total 5 s), without its word counting, which an energy
detector does poorly on a phone line; the greeting limit is 2 s here because
"Hello, this is Sam speaking." alone takes 1.7 s. After a machine verdict it listens on
for the end of the greeting, where a message can be left: the end of the
beep, else ``greeting_end_silence`` of quiet, else ``max_greeting``.

Time is audio time: seconds of callee audio since the first frame, so a
decision depends on the audio alone and tests can feed it faster than real time.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from switchboard.voice.machine_detection.block_features import BLOCK_SECONDS, Block, BlockKind

EPSILON = 1e-9  # block times are sums of 0.02: compare them with a little slack
SAME_TONE_HZ = 60.0  # a beep's FFT peak may move by a bin (50 Hz at 8 kHz) between blocks

GreetingEndCue = Literal["beep", "silence", "timeout"]


class AnsweredBy(StrEnum):
    """The verdict on who answered."""

    HUMAN = "human"
    MACHINE = "machine"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class MachineDetectionParams:
    """The detector's timings, in seconds of callee audio.

    Attributes:
        decision_deadline: undecided by then, the verdict is ``unknown``.
        max_human_greeting: a greeting longer than this is a machine's.
        human_silence: quiet this long after a shorter greeting means a person is waiting.
        min_speech: sound shorter than this (a click, a breath) does not start a greeting.
        min_beep: a steady tone at least this long is a beep.
        greeting_end_silence: with no beep, quiet this long ends a machine's greeting;
            longer than the pauses inside greetings, so the message is not spoken over one.
        beep_margin: after a beep, quiet this long before the message starts.
        max_greeting: a machine greeting still going by then is taken as ended.
    """

    decision_deadline: float = 5.0
    max_human_greeting: float = 2.0
    human_silence: float = 0.8
    min_speech: float = 0.08
    min_beep: float = 0.12
    greeting_end_silence: float = 1.5
    beep_margin: float = 0.1
    max_greeting: float = 30.0

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if value <= 0:
                raise ValueError(f"{name} must be positive, got {value}")
        if self.max_human_greeting + self.human_silence > self.decision_deadline:
            raise ValueError(
                "decision_deadline must leave room for a whole human greeting and its silence"
            )
        if self.max_greeting <= self.decision_deadline:
            raise ValueError("max_greeting must be longer than decision_deadline")


@dataclass(frozen=True)
class Decision:
    """Who answered, how sure the detector is (0-1, not calibrated), and when it knew.

    ``reason`` says which rule decided: ``beep``, ``long_greeting``,
    ``short_greeting``, ``deadline``, or ``no_audio`` when audio stopped coming.
    """

    result: AnsweredBy
    confidence: float
    after_seconds: float
    reason: str


@dataclass(frozen=True)
class GreetingEnd:
    """A machine's greeting is over: a message spoken now is recorded."""

    after_seconds: float
    cue: GreetingEndCue


class GreetingAnalyzer:
    """Feeds on ``Block``s; returns a ``Decision``, then for machines a ``GreetingEnd``.

    ``done`` turns true once nothing more will come, so the caller can stop
    analysing audio.
    """

    def __init__(self, params: MachineDetectionParams | None = None) -> None:
        self.params = params or MachineDetectionParams()
        self.now = 0.0  # audio seconds analysed
        self.decision: Decision | None = None
        self.greeting_end: GreetingEnd | None = None
        self.greeting_start: float | None = None  # when the first real speech began
        self._speech_run = 0.0  # seconds of speech in a row, up to now
        self._last_speech: float | None = None  # end of the last block of real speech
        self._last_sound: float | None = None  # end of the last speech or tone block
        self._tone_run = 0.0
        self._tone_hz: float | None = None
        self._beep_heard = False
        self._record_tone_end: float | None = None  # end of a beep that followed words

    @property
    def done(self) -> bool:
        """Whether the verdict, and for a machine the end of its greeting, are known."""
        if self.decision is None:
            return False
        return self.decision.result is not AnsweredBy.MACHINE or self.greeting_end is not None

    def feed(self, block: Block) -> Decision | GreetingEnd | None:
        """Take the next block; what it settled, if anything."""
        if self.done:
            return None
        self.now += BLOCK_SECONDS
        self._hear(block)
        if self.decision is None:
            self.decision = self._decide()
            return self.decision
        self.greeting_end = self._find_greeting_end()
        return self.greeting_end

    def expire(self) -> Decision | GreetingEnd | None:
        """Settle the next pending thing now, as if its time were up (audio stopped coming)."""
        if self.decision is None:
            self.decision = Decision(AnsweredBy.UNKNOWN, 0.0, self.now, "no_audio")
            return self.decision
        if not self.done:
            self.greeting_end = GreetingEnd(self.now, "timeout")
            return self.greeting_end
        return None

    def _hear(self, block: Block) -> None:
        self._hear_tone(block)  # first: whether a beep followed words depends on earlier words
        if block.kind is BlockKind.SPEECH:
            self._speech_run += BLOCK_SECONDS
            if self._speech_run + EPSILON >= self.params.min_speech:
                if self.greeting_start is None:
                    self.greeting_start = self.now - self._speech_run
                self._last_speech = self._last_sound = self.now
        else:
            self._speech_run = 0.0

    def _hear_tone(self, block: Block) -> None:
        steady = (
            block.kind is BlockKind.TONE
            and block.tone_hz is not None
            and (self._tone_hz is None or abs(block.tone_hz - self._tone_hz) <= SAME_TONE_HZ)
        )
        if steady:
            self._tone_run += BLOCK_SECONDS
            self._tone_hz = block.tone_hz
            if self._tone_run + EPSILON >= self.params.min_beep:
                self._beep_heard = True
                self._record_tone_end = None
                self._last_sound = self.now
            return
        if self._tone_run + EPSILON >= self.params.min_beep and self._last_speech is not None:
            # A beep after words is the record tone; one before them is a carrier's
            # intercept tone (the words that follow are the message).
            self._record_tone_end = self.now - BLOCK_SECONDS  # where this block began
        self._tone_run = 0.0
        self._tone_hz = block.tone_hz if block.kind is BlockKind.TONE else None
        if self._tone_hz is not None:
            self._tone_run = BLOCK_SECONDS

    def _decide(self) -> Decision | None:
        p = self.params
        if self._beep_heard:
            return Decision(AnsweredBy.MACHINE, 0.95, self.now, "beep")
        if self.greeting_start is not None and self._last_speech is not None:
            greeting = self._last_speech - self.greeting_start
            if greeting > p.max_human_greeting + EPSILON:
                return Decision(AnsweredBy.MACHINE, 0.8, self.now, "long_greeting")
            if self.now - self._last_speech + EPSILON >= p.human_silence:
                # The shorter the greeting, the more it sounds like "Hello?".
                confidence = 0.6 + 0.3 * (1 - greeting / p.max_human_greeting)
                return Decision(AnsweredBy.HUMAN, round(confidence, 2), self.now, "short_greeting")
        if self.now + EPSILON >= p.decision_deadline:
            return Decision(AnsweredBy.UNKNOWN, 0.0, self.now, "deadline")
        return None

    def _find_greeting_end(self) -> GreetingEnd | None:
        p = self.params
        if self._record_tone_end is not None and self._tone_run == 0.0:
            if self.now - self._record_tone_end + EPSILON >= p.beep_margin:
                return GreetingEnd(self.now, "beep")
            return None
        quiet_since = self._last_sound if self._tone_run == 0.0 else None
        if quiet_since is not None and self.now - quiet_since + EPSILON >= p.greeting_end_silence:
            return GreetingEnd(self.now, "silence")
        if self.now + EPSILON >= p.max_greeting:
            return GreetingEnd(self.now, "timeout")
        return None
