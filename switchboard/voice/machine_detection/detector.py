"""Answering-machine detection on our side, for carriers that do not detect for us.

``MachineDetector`` sits right after the transport input and listens to the
callee's first seconds (``greeting``): it decides ``human``, ``machine`` or
``unknown`` by ``decision_deadline``, and for a machine finds the end of its
greeting so a message can be left. It passes every frame through unchanged
and stops analysing once it has nothing left to find, so after the first
seconds of a call it costs one hop and nothing more.

Pipecat's own ``VoicemailDetector`` decides from transcripts with an LLM
classifier; ``bench/machine_detection.py`` measures both on the same greetings.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np
from pipecat.extensions.voicemail.voicemail_detector import TTSGate
from pipecat.frames.frames import Frame, InputAudioRawFrame
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.turns.user_mute.base_user_mute_strategy import BaseUserMuteStrategy
from pipecat.utils.sync.event_notifier import EventNotifier

from switchboard.voice.machine_detection.block_features import (
    BlockAnalyzer,
    BlockThresholds,
)
from switchboard.voice.machine_detection.greeting import (
    AnsweredBy,
    Decision,
    GreetingAnalyzer,
    GreetingEnd,
    MachineDetectionParams,
)

SAMPLE_WIDTH = 2  # bytes: 16-bit PCM
STALLED_AUDIO_SLACK_SECS = 2.0


class MachineDetector(FrameProcessor):
    """Tells a person from an answering machine by how the callee's audio sounds.

    Place it right after ``transport.input()``; it reads ``InputAudioRawFrame``
    (16-bit PCM at any rate) and needs nothing else. Time is audio time:
    ``after_seconds`` counts the callee's audio since the first frame, which
    on a live call (carriers send 20 ms packets, silence included) is the time
    since the call was answered.

    A ``machine`` verdict also interrupts the pipeline, as Pipecat's
    ``VoicemailDetector`` does, so a reply the agent was already preparing for
    the greeting's first words is dropped rather than spoken over the greeting.

    Event handlers (run as tasks, so a slow handler never holds audio back):

    - ``on_decision(detector, result: AnsweredBy, confidence: float, after_seconds: float)``:
      once per call, by ``decision_deadline``; ``detector.decision.reason`` says which rule.
    - ``on_greeting_end(detector, after_seconds: float, cue: str)``: after a
      ``machine`` decision, when its greeting is over (``cue``: ``beep``, ``silence``
      or ``timeout``): the moment to leave a message.

    Should the carrier stop sending audio, a wall-clock guard decides
    ``unknown`` (or ends the greeting) ``STALLED_AUDIO_SLACK_SECS`` after the
    audio-time limit would have been reached, so a policy never waits forever.

    Example::

        detector = MachineDetector()

        @detector.event_handler("on_decision")
        async def on_decision(detector, result, confidence, after_seconds): ...

        Pipeline([transport.input(), detector, stt, user_aggregator, llm, tts,
                  detector.gate(), transport.output(), assistant_aggregator])
    """

    def __init__(
        self,
        *,
        params: MachineDetectionParams | None = None,
        thresholds: BlockThresholds | None = None,
        stalled_audio_slack: float = STALLED_AUDIO_SLACK_SECS,
        **kwargs: Any,
    ) -> None:
        """Initialize the detector.

        Args:
            params: The timings of the decision and of the greeting's end.
            thresholds: What counts as silence, speech and a tone.
            stalled_audio_slack: Wall-clock seconds past an audio-time limit after
                which the guard acts when audio has stopped arriving.
            **kwargs: Passed to ``FrameProcessor``.
        """
        super().__init__(**kwargs)
        self.params = params or MachineDetectionParams()
        self._thresholds = thresholds
        self._stalled_audio_slack = stalled_audio_slack
        self._greeting = GreetingAnalyzer(self.params)
        self._blocks: BlockAnalyzer | None = None
        self._pending = bytearray()
        self._guard: asyncio.Task[None] | None = None
        self._human_notifier = EventNotifier()  # type: ignore[no-untyped-call]
        self._machine_notifier = EventNotifier()  # type: ignore[no-untyped-call]
        self._tts_gate: TTSGate | None = None
        self._register_event_handler("on_decision")
        self._register_event_handler("on_greeting_end")

    @property
    def decision(self) -> Decision | None:
        """The verdict, once there is one."""
        return self._greeting.decision

    @property
    def greeting_end(self) -> GreetingEnd | None:
        """When a machine's greeting ended, once it has."""
        return self._greeting.greeting_end

    @property
    def listening(self) -> bool:
        """Whether audio is still analysed (false once the decision, and for a machine the
        greeting's end, are known)."""
        return not self._greeting.done

    def gate(self) -> TTSGate:
        """A processor to place after the TTS: it holds the agent's speech until the verdict,
        then plays it (human, unknown) or drops it (machine; later speech, such as the
        voicemail message, passes). It is Pipecat's own ``VoicemailDetector`` gate."""
        if self._tts_gate is None:
            self._tts_gate = TTSGate(self._human_notifier, self._machine_notifier)
        return self._tts_gate

    async def cleanup(self) -> None:
        """Stop the stalled-audio guard with the pipeline."""
        await super().cleanup()  # type: ignore[no-untyped-call]
        await self._stop_guard()

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Pass every frame on; analyse the callee's audio until there is nothing left to find."""
        await super().process_frame(frame, direction)
        await self.push_frame(frame, direction)
        if isinstance(frame, InputAudioRawFrame) and not self._greeting.done:
            await self._hear(frame)

    async def _hear(self, frame: InputAudioRawFrame) -> None:
        if self._blocks is None or self._blocks.sample_rate != frame.sample_rate:
            self._blocks = BlockAnalyzer(frame.sample_rate, self._thresholds)
            self._pending.clear()
        if self._guard is None:
            self._guard = self.create_task(self._guard_stalled_audio(), "machine_detection_guard")
        audio = frame.audio
        if frame.num_channels > 1:  # phone lines are mono; analyse the first channel
            channels = np.frombuffer(audio, "<i2").reshape(-1, frame.num_channels)
            audio = channels[:, 0].tobytes()
        self._pending += audio
        size = self._blocks.block_samples * SAMPLE_WIDTH
        while len(self._pending) >= size and not self._greeting.done:
            block = self._blocks.analyze(bytes(self._pending[:size]))
            del self._pending[:size]
            await self._announce(self._greeting.feed(block))
        if self._greeting.done:
            self._pending.clear()
            await self._stop_guard()

    async def _announce(self, found: Decision | GreetingEnd | None) -> None:
        if isinstance(found, Decision):
            machine = found.result is AnsweredBy.MACHINE
            notifier = self._machine_notifier if machine else self._human_notifier
            await notifier.notify()  # type: ignore[no-untyped-call]
            if machine:
                # A reply already under way to the greeting's first words stops here.
                await self.broadcast_interruption()  # type: ignore[no-untyped-call]
            await self._call_event_handler(
                "on_decision", found.result, found.confidence, found.after_seconds
            )
        elif isinstance(found, GreetingEnd):
            await self._call_event_handler("on_greeting_end", found.after_seconds, found.cue)

    async def _guard_stalled_audio(self) -> None:
        """Act on the audio-time limits by the wall clock when audio stops arriving."""
        started = time.monotonic()
        await asyncio.sleep(self.params.decision_deadline + self._stalled_audio_slack)
        if self._greeting.decision is None:
            await self._announce(self._greeting.expire())
        if self._greeting.done:
            return
        wake = started + self.params.max_greeting + self._stalled_audio_slack
        await asyncio.sleep(max(0.0, wake - time.monotonic()))
        await self._announce(self._greeting.expire())

    async def _stop_guard(self) -> None:
        if self._guard is not None:
            guard, self._guard = self._guard, None
            if guard is not asyncio.current_task():
                await self.cancel_task(guard)


class MachineMuteStrategy(BaseUserMuteStrategy):
    """Mutes the callee for the conversation once the detector hears a machine.

    For the user aggregator's ``user_mute_strategies``: the greeting then never
    reaches the LLM, while the recorder (after the transport output) still hears it.
    """

    def __init__(self, detector: MachineDetector) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._detector = detector

    async def process_frame(self, frame: Frame) -> bool:
        """Whether the callee is muted: from a ``machine`` verdict on."""
        await super().process_frame(frame)
        decision = self._detector.decision
        return decision is not None and decision.result is AnsweredBy.MACHINE


def answered_by(decision: Decision | None, greeting_end: GreetingEnd | None = None) -> str:
    """The verdict in Twilio's ``AnsweredBy`` words, so every carrier's calls read alike:
    ``human``, ``unknown``, ``machine_start``, ``machine_end_beep``,
    ``machine_end_silence`` or ``machine_end_other``."""
    if decision is None or decision.result is AnsweredBy.UNKNOWN:
        return "unknown"
    if decision.result is AnsweredBy.HUMAN:
        return "human"
    if greeting_end is None:
        return "machine_start"
    return {"beep": "machine_end_beep", "silence": "machine_end_silence"}.get(
        greeting_end.cue, "machine_end_other"
    )
