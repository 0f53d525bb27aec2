"""The call state machine.

RINGING → IN_PROGRESS → COMPLETED | FAILED | TRANSFERRED; an outbound call
may also end BUSY, NO_ANSWER or CANCELED before it is answered, and an
inbound call turned away at capacity ends REJECTED. Final states are final.
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

ALLOWED: dict[CallStatus, frozenset[CallStatus]] = {
    CallStatus.RINGING: frozenset(
        {
            CallStatus.IN_PROGRESS,
            CallStatus.FAILED,
            CallStatus.BUSY,
            CallStatus.NO_ANSWER,
            CallStatus.CANCELED,
            CallStatus.REJECTED,
        }
    ),
    CallStatus.IN_PROGRESS: frozenset(
        {CallStatus.COMPLETED, CallStatus.FAILED, CallStatus.TRANSFERRED}
    ),
}


def can_move(current: CallStatus, new: CallStatus) -> bool:
    return new in ALLOWED.get(current, frozenset())
