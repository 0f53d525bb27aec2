"""Placing an outbound call through its carrier, and the carrier's answers about it.

A queued call (``switchboard.calls.outbound``) is placed by a job: the
do-not-call list is asked again (a number listed since the call was queued
ends it ``failed``, ``end_reason: dnc``, never dialled), a slot is taken under
the workspace's limit, the carrier's REST API is asked to ring the
callee with two URLs of ours made for this call alone, its answer webhook
``/telephony/{carrier}/answer/{call_id}`` and its status callback
``/telephony/{carrier}/status/{call_id}``. A carrier API error is recorded on
the call (failed, with the carrier's code and message) and frees the slot.

When the callee answers, the carrier fetches the answer URL: an answering
machine on a call that asked to hang up on one ends there (the outcome and
who answered are on the call and in its events); otherwise the answer is the
same stream markup, with its stream token, an inbound call gets, and the
media socket takes it from there. Status callbacks move the call until it is
answered, and free its slot when it ends unanswered.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import InstrumentedAttribute

from switchboard.calls import service as calls
from switchboard.calls.recorder import CallRecorder
from switchboard.calls.states import FINAL
from switchboard.db.base import utcnow
from switchboard.db.models import Call, CallDirection, CallStatus, DncEntry, Workspace
from switchboard.dialer.dnc import END_REASON as DNC_END_REASON
from switchboard.dialer.dnc import blocked
from switchboard.errors import Conflict, ExternalError, ExternalStatusError, NotFound
from switchboard.services import Services
from switchboard.telephony.accounts import carrier_for
from switchboard.telephony.carrier import Carrier, Markup, PlaceCallRequest, is_machine
from switchboard.telephony.credentials import CarrierName
from switchboard.telephony.ringing import UNANSWERED, finish_unanswered, start_media_timer
from switchboard.telephony.streams import STREAM_TOKEN, issue_stream_token, media_url
from switchboard.voice.slots import AtCapacity

log = logging.getLogger(__name__)


class NoFreeSlot(Exception):
    """The workspace (or this server) is at its call limit: try placing the call later."""


@dataclass(frozen=True)
class Placed:
    """What became of a queued call when we asked its carrier to ring it."""

    call_id: str
    carrier_call_id: str | None
    error: dict[str, str] | None = None


def call_urls(public_url: str, carrier: CarrierName, call_id: str) -> tuple[str, str]:
    """The answer webhook and status callback made for one outbound call."""
    base = f"{public_url}/telephony/{carrier.value}"
    return f"{base}/answer/{call_id}", f"{base}/status/{call_id}"


async def place_call(services: Services, call_id: str) -> Placed | None:
    """Ring a queued call's callee; None if the call is no longer queued (placed already,
    or cancelled). Raises ``NoFreeSlot`` when at the call limit, leaving it queued."""
    async with services.sessions() as session:
        call = await session.get(Call, call_id)
        if call is None or call.status is not CallStatus.QUEUED or call.placed_at is not None:
            return None
        workspace = await session.get(Workspace, call.workspace_id)
        assert workspace is not None
        listed = await blocked(session, call.workspace_id, call.to_number, call.campaign_id)
    if listed is not None:
        await _refuse_listed(services, call, listed)
        return None
    try:
        await services.slots.acquire(call.id, call.workspace_id, workspace.max_concurrent_calls)
    except AtCapacity as exc:
        raise NoFreeSlot(f"no free call slot ({exc.scope})") from exc
    if not await _claim_placement(services, call.id):  # another job got there first
        return None
    recorder = CallRecorder(services.sessions, call.id)
    try:
        carrier = await carrier_for(services, CarrierName(call.carrier), call.workspace_id)
        dial = call.dial or {}
        answer_url, status_url = call_urls(
            services.settings.resolved_public_url, carrier.name, call.id
        )
        carrier_call_id = await carrier.place_call(
            PlaceCallRequest(
                to_number=call.to_number,
                from_number=call.from_number,
                answer_url=answer_url,
                status_url=status_url,
                machine_detection=dial.get("machine_detection", "off"),  # checked when queued
                timeout_seconds=int(dial.get("ring_timeout_seconds", 30)),
            )
        )
    except Exception as exc:
        error = carrier_error(exc)
        log.warning("call %s could not be placed: %s", call.id, error["message"])
        await recorder.event("error", message=error["message"], code=error["code"], fatal=True)
        await finish_unanswered(services, call.id, CallStatus.FAILED, "carrier_error", error=error)
        return Placed(call.id, None, error)
    async with services.sessions() as session:
        await calls.update_fields(session, call.id, carrier_call_id=carrier_call_id)
    await recorder.event("dialled", carrier=carrier.name.value, to_number=call.to_number)
    return Placed(call.id, carrier_call_id)


async def _refuse_listed(services: Services, call: Call, entry: DncEntry) -> None:
    """The callee went on the do-not-call list after the call was queued: end it unplaced."""
    log.info("call %s not placed: %s is on the do-not-call list", call.id, call.to_number)
    await CallRecorder(services.sessions, call.id).event(
        "dnc_blocked", number=entry.number, scope=entry.scope, dnc_id=entry.id
    )
    await finish_unanswered(services, call.id, CallStatus.FAILED, DNC_END_REASON)


async def _claim_placement(services: Services, call_id: str) -> bool:
    """Mark the call as being placed, if nobody has."""
    return await _mark_once(services, call_id, Call.placed_at, (CallStatus.QUEUED,))


async def _offer_media_once(services: Services, call_id: str) -> bool:
    """Mark the call's media as offered, if no answer did."""
    return await _mark_once(services, call_id, Call.media_offered_at, UNANSWERED)


async def _mark_once(
    services: Services,
    call_id: str,
    column: InstrumentedAttribute[datetime | None],
    statuses: tuple[CallStatus, ...],
) -> bool:
    """Set ``column`` to now while it is unset and the call in ``statuses``: one conditional
    UPDATE decides, so of racing processes exactly one gets True."""
    async with services.sessions() as session:
        result = await session.execute(
            update(Call)
            .where(Call.id == call_id, Call.status.in_(statuses), column.is_(None))
            .values({column: utcnow()})
        )
        await session.commit()
    return bool(result.rowcount)  # type: ignore[attr-defined]


def carrier_error(exc: Exception) -> dict[str, str]:
    """A failure to place a call, as recorded on it: the carrier's status and message."""
    if isinstance(exc, ExternalStatusError):
        return {"code": exc.code or str(exc.status), "message": exc.message}
    if isinstance(exc, ExternalError):
        return {"code": "unreachable", "message": exc.message}
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return {"code": type(exc).__name__, "message": str(message)}


async def outbound_call(services: Services, carrier: CarrierName, call_id: str) -> Call:
    """One of our outbound calls on ``carrier``; ``NotFound`` for anything else."""
    async with services.sessions() as session:
        call = await session.get(Call, call_id)
    if call is None or call.direction is not CallDirection.OUTBOUND or call.carrier != carrier:
        raise NotFound("call", call_id)
    return call


async def answer_outbound(
    services: Services,
    carrier: Carrier,
    call: Call,
    carrier_call_id: str | None,
    answered_by: str | None,
) -> Markup:
    """The callee answered (the carrier asks what to do): stream to the agent, or, for an
    answering machine on a call that hangs up on them, end it here."""
    if call.status not in UNANSWERED or not await _offer_media_once(services, call.id):
        raise Conflict("this call was already answered", field="call_id")
    recorder = CallRecorder(services.sessions, call.id)
    fields: dict[str, object] = {}
    if carrier_call_id and not call.carrier_call_id:
        fields["carrier_call_id"] = carrier_call_id
    if answered_by:
        fields["answered_by"] = answered_by
        await recorder.event("answered_by", answered_by=answered_by)
    if fields:
        async with services.sessions() as session:
            await calls.update_fields(session, call.id, **fields)
    policy = (call.dial or {}).get("machine_detection", "off")
    if is_machine(answered_by) and policy == "detect":
        await recorder.event("machine_detected", answered_by=answered_by, action="hang_up")
        await finish_unanswered(
            services, call.id, CallStatus.NO_ANSWER, "answering_machine", answered_by=answered_by
        )
        return carrier.say_and_hang_up_markup("")
    async with services.sessions() as session:
        await calls.move(session, call.id, CallStatus.RINGING, only_from=CallStatus.QUEUED)
    start_media_timer(services, call.id)
    url = media_url(services.settings.resolved_public_url, carrier.name, call.id)
    token = issue_stream_token(services.settings, call.id, carrier.name, call.workspace_id)
    return carrier.answer_markup(url, {STREAM_TOKEN: token})


async def hang_up(services: Services, call: Call) -> None:
    """End a live call from the API: unplaced, it is cancelled; placed, its carrier hangs up
    (and its media socket, once closed, finishes the record)."""
    if call.status in FINAL:
        raise Conflict(f"the call has ended ({call.status.value})", field="call_id")
    await CallRecorder(services.sessions, call.id).event("hangup_requested")
    if call.status is CallStatus.QUEUED and call.placed_at is None:
        await finish_unanswered(services, call.id, CallStatus.CANCELED, "hung_up_by_api")
        return
    live = services.live_calls.get(call.id)
    if live is not None:  # its session runs here: end it as the agent would
        await live.say_and_end(None, "hung_up_by_api")
    if call.carrier == CarrierName.BROWSER.value or not call.carrier_call_id:
        if live is None:
            raise Conflict("this call runs elsewhere and has no carrier to ask", field="call_id")
        return
    carrier = await carrier_for(services, CarrierName(call.carrier), call.workspace_id)
    await carrier.hangup(call.carrier_call_id)  # some keep the line up after the stream ends
    if call.status in UNANSWERED:
        await finish_unanswered(services, call.id, CallStatus.CANCELED, "hung_up_by_api")
