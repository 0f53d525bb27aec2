"""The call state machine.

RINGING → IN_PROGRESS → COMPLETED | FAILED | TRANSFERRED. An outbound call
starts QUEUED (created, not yet rung) and may also end BUSY, NO_ANSWER or
CANCELED before it is answered; an inbound call turned away at capacity
ends REJECTED. Final states are final.
"""

from __future__ import annotations

from switchboard.db.models import CallStatus

FINAL = frozenset(
    {
        CallStatus.COMPLETED,
        CallStatus.FAILED,
        CallStatus.TRANSFERRED,
        CallStatus.BUSY,
        CallStatus.NO_ANSWER,
        CallStatus.CANCELED,
        CallStatus.REJECTED,
    }
)

# Where a call that has not been answered yet may go.
FROM_UNANSWERED = frozenset(
    {
        CallStatus.IN_PROGRESS,
        CallStatus.FAILED,
        CallStatus.BUSY,
        CallStatus.NO_ANSWER,
        CallStatus.CANCELED,
        CallStatus.REJECTED,
    }
)
ALLOWED: dict[CallStatus, frozenset[CallStatus]] = {
    CallStatus.QUEUED: FROM_UNANSWERED | {CallStatus.RINGING},
    CallStatus.RINGING: FROM_UNANSWERED,
    # NO_ANSWER: our own detection heard an answering machine after the media connected.
    CallStatus.IN_PROGRESS: frozenset(
        {CallStatus.COMPLETED, CallStatus.FAILED, CallStatus.TRANSFERRED, CallStatus.NO_ANSWER}
    ),
}


def can_move(current: CallStatus, new: CallStatus) -> bool:
    return new in ALLOWED.get(current, frozenset())
