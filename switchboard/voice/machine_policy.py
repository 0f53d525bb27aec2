"""What an outbound call does when an answering machine picks up, heard on our side.

Where the carrier said who answered (Twilio's ``AnsweredBy``), the answer
webhook and the session's opening already act on it. Where it did not (Exotel,
Vobiz, a simulator number that plays such a carrier), the call runs our own
``MachineDetector`` for its first seconds: the agent's first words wait for
its verdict; a person (or "unknown") then hears them; a machine is hung up on
(``detect``: the call ends ``no_answer``, ``answering_machine``) or, once its
greeting and beep are over, hears the voicemail message (``leave_message``).
Who answered is stored on the call and every step is an event.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from switchboard.db.models import CallDirection, CallStatus
from switchboard.voice.machine_detection.detector import MachineDetector, answered_by
from switchboard.voice.machine_detection.greeting import AnsweredBy

if TYPE_CHECKING:
    from switchboard.voice.session import CallSession


def needs_detector(session: CallSession) -> bool:
    """An outbound call asked for detection and its carrier did not say who answered."""
    call = session.inputs.call
    policy = (call.dial or {}).get("machine_detection", "off")
    return call.direction is CallDirection.OUTBOUND and policy != "off" and not call.answered_by


class MachinePolicy:
    """Runs a call's detector and carries out the call's policy on its verdicts."""

    def __init__(self, session: CallSession) -> None:
        self.session = session
        self.policy = str((session.inputs.call.dial or {}).get("machine_detection", "off"))
        self.detector = MachineDetector()
        self.detector.add_event_handler("on_decision", self._decided)
        self.detector.add_event_handler("on_greeting_end", self._greeting_ended)

    async def _decided(
        self, detector: MachineDetector, result: str, confidence: float, after: float
    ) -> None:
        session = self.session
        who = answered_by(detector.decision)
        await session.recorder.update(answered_by=who)
        reason = detector.decision.reason if detector.decision else None
        await session.recorder.event(
            "answered_by",
            answered_by=who,
            confidence=round(confidence, 2),
            after_seconds=round(after, 2),
            reason=reason,
            detected_by="switchboard",
        )
        if result != AnsweredBy.MACHINE:
            return
        action = "hang_up" if self.policy == "detect" else "leave_message"
        await session.recorder.event("machine_detected", answered_by=who, action=action)
        if self.policy == "detect":
            session.final_status = CallStatus.NO_ANSWER
            await session.say_and_end(None, "answering_machine")

    async def _greeting_ended(self, detector: MachineDetector, after: float, cue: str) -> None:
        if self.policy != "leave_message":
            return
        session = self.session
        await session.recorder.update(
            answered_by=answered_by(detector.decision, detector.greeting_end)
        )
        await session.recorder.event("greeting_ended", after_seconds=round(after, 2), cue=cue)
        message = str((session.inputs.call.dial or {}).get("voicemail_message", ""))
        await session.leave_voicemail(message)
