"""Calls answered (or dialled) but not streaming yet: their media timer, and ending them.

A call holds a slot from the moment it is admitted. Until its media socket
claims it, two things can end it: the carrier (busy, no answer, a caller who
hung up while it rang, an answering machine) or the media timer, which fails
a call whose carrier never opened the socket. Either way ``finish_unanswered``
moves it once (a conditional UPDATE, so racing processes agree) and frees its
slot.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import select

from switchboard.calls import service as calls
from switchboard.calls.recorder import CallRecorder
from switchboard.db.models import Call, CallStatus
from switchboard.dialer.signals import call_ended
from switchboard.services import Services
from switchboard.telephony.carrier import CallOutcome, StatusUpdate

log = logging.getLogger(__name__)

UNANSWERED = (CallStatus.QUEUED, CallStatus.RINGING)
OUTCOME_STATUS = {
    CallOutcome.BUSY: CallStatus.BUSY,
    CallOutcome.NO_ANSWER: CallStatus.NO_ANSWER,
    CallOutcome.FAILED: CallStatus.FAILED,
    CallOutcome.CANCELED: CallStatus.CANCELED,
}


async def finish_unanswered(
    services: Services,
    call_id: str,
    status: CallStatus,
    reason: str,
    *,
    error: dict[str, str] | None = None,
    answered_by: str | None = None,
) -> bool:
    """End a call that never streamed, and free its slot; False if it had moved on already."""
    fields: dict[str, object] = {}
    if error is not None:
        fields["error"] = error
    if answered_by is not None:
        fields["answered_by"] = answered_by
    moved = False
    async with services.sessions() as session:
        for current in UNANSWERED:
            moved = moved or await calls.move(
                session, call_id, status, end_reason=reason, fields=fields, only_from=current
            )
    if moved:
        if (timer := services.media_timeouts.pop(call_id, None)) is not None:
            timer.cancel()
        await services.slots.release(call_id)
        await CallRecorder(services.sessions, call_id).event("call_ended", reason=reason)
        async with services.sessions() as session:
            dial = await session.scalar(select(Call.dial).where(Call.id == call_id))
        await call_ended(services.jobs, dial, call_id)
    return moved


def start_media_timer(services: Services, call_id: str) -> None:
    """Fail the call if its media socket has not claimed it within the connect timeout."""
    services.media_timeouts[call_id] = services.spawn(
        _expire_if_unconnected(services, call_id), name=f"media-timeout-{call_id}"
    )


def stop_media_timer(services: Services, call_id: str) -> None:
    """The media socket claimed the call (in this process): its timer has nothing to do."""
    if (timer := services.media_timeouts.pop(call_id, None)) is not None:
        timer.cancel()


async def _expire_if_unconnected(services: Services, call_id: str) -> None:
    """A carrier that answered but never opened the media socket must not hold a slot."""
    await asyncio.sleep(services.settings.media_connect_timeout_seconds)
    services.media_timeouts.pop(call_id, None)
    if await finish_unanswered(services, call_id, CallStatus.FAILED, "no_media"):
        log.warning("call %s: media never connected", call_id)


async def apply_status(services: Services, call: Call, update: StatusUpdate) -> None:
    """A carrier's status callback for ``call``, already verified as signed for its workspace.

    Until the media socket claims a call, the carrier's word moves it: ringing, or an
    end (busy, no answer, failed, cancelled; completed before any media connected). Once
    the call streams, its session decides how it ended, and these only add what the
    carrier knows (its call id, who answered).
    """
    recorder = CallRecorder(services.sessions, call.id)
    async with services.sessions() as session:
        if update.carrier_call_id and not call.carrier_call_id:
            await calls.update_fields(session, call.id, carrier_call_id=update.carrier_call_id)
        if update.answered_by and not call.answered_by:
            await calls.update_fields(session, call.id, answered_by=update.answered_by)
            await recorder.event("answered_by", answered_by=update.answered_by)
        if update.outcome is CallOutcome.RINGING:
            if await calls.move(session, call.id, CallStatus.RINGING, only_from=CallStatus.QUEUED):
                await recorder.event("ringing")
            return
    new = OUTCOME_STATUS.get(update.outcome)
    if new is not None:
        await finish_unanswered(services, call.id, new, update.outcome.value)
    elif update.outcome is CallOutcome.COMPLETED and call.status in UNANSWERED:
        # It ended before its media ever connected: nobody spoke to it.
        await finish_unanswered(services, call.id, CallStatus.FAILED, "no_media")
