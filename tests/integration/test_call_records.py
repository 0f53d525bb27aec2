"""The call record: state machine, events in order, transcripts, and the stuck-call sweeper."""

from __future__ import annotations

from datetime import timedelta

import pytest

from switchboard.calls import service
from switchboard.calls.recorder import CallRecorder
from switchboard.calls.states import ALLOWED, FINAL, can_move
from switchboard.calls.sweeper import sweep_stuck_calls
from switchboard.db.base import utcnow
from switchboard.db.models import Call, CallDirection, CallStatus
from switchboard.services import Services
from tests.conftest import Tenant


async def new_call(services: Services, tenant: Tenant) -> Call:
    async with services.sessions() as session:
        return await service.create_call(
            session,
            workspace_id=tenant.workspace_id,
            agent_id=None,
            agent_version=None,
            direction=CallDirection.INBOUND,
            carrier="simulator",
            from_number="+15550142",
            to_number="+15550100",
        )


def test_final_states_have_no_way_out() -> None:
    for status in FINAL:
        assert all(not can_move(status, other) for other in CallStatus)
    assert can_move(CallStatus.RINGING, CallStatus.IN_PROGRESS)
    assert not can_move(CallStatus.IN_PROGRESS, CallStatus.RINGING)
    assert not can_move(CallStatus.IN_PROGRESS, CallStatus.BUSY)
    assert set(ALLOWED) == {CallStatus.QUEUED, CallStatus.RINGING, CallStatus.IN_PROGRESS}
    # An outbound call may be answered (and streaming) before its ringing is reported.
    assert can_move(CallStatus.QUEUED, CallStatus.RINGING)
    assert can_move(CallStatus.QUEUED, CallStatus.IN_PROGRESS)
    assert not can_move(CallStatus.RINGING, CallStatus.QUEUED)


async def test_a_call_moves_once_and_records_its_times(services: Services, tenant: Tenant) -> None:
    call = await new_call(services, tenant)
    recorder = CallRecorder(services.sessions, call.id)
    assert await recorder.move(CallStatus.IN_PROGRESS)
    assert not await recorder.move(CallStatus.IN_PROGRESS)
    assert await recorder.move(CallStatus.COMPLETED, "agent_ended", usage={"tts_characters": 42})
    assert not await recorder.move(CallStatus.FAILED, "late")
    async with services.sessions() as session:
        stored = await service.get_call(session, tenant.workspace_id, call.id)
    assert stored.status is CallStatus.COMPLETED
    assert stored.end_reason == "agent_ended"
    assert stored.usage == {"tts_characters": 42}
    assert stored.answered_at is not None and stored.ended_at is not None
    assert stored.ended_at >= stored.answered_at


async def test_events_and_turns_keep_their_order(services: Services, tenant: Tenant) -> None:
    call = await new_call(services, tenant)
    recorder = CallRecorder(services.sessions, call.id)
    for name in ("call_started", "user_spoke", "agent_spoke", "call_ended"):
        await recorder.event(name, detail=name.upper())
    now = utcnow()
    await recorder.turn("user", "hello", started_at=now)
    await recorder.turn("agent", "hi there", started_at=now, interrupted=True)
    async with services.sessions() as session:
        events = await service.events_of(session, call.id)
        turns = await service.transcript_of(session, call.id)
    assert [(e.seq, e.type, e.data["detail"]) for e in events] == [
        (1, "call_started", "CALL_STARTED"),
        (2, "user_spoke", "USER_SPOKE"),
        (3, "agent_spoke", "AGENT_SPOKE"),
        (4, "call_ended", "CALL_ENDED"),
    ]
    assert [(t.index, t.role, t.text, t.interrupted) for t in turns] == [
        (1, "user", "hello", False),
        (2, "agent", "hi there", True),
    ]


@pytest.mark.parametrize("status", [CallStatus.RINGING, CallStatus.IN_PROGRESS])
async def test_the_sweeper_finishes_only_old_live_calls(
    services: Services, tenant: Tenant, status: CallStatus
) -> None:
    old, fresh, done = [await new_call(services, tenant) for _ in range(3)]
    async with services.sessions() as session:
        if status is CallStatus.IN_PROGRESS:
            for call in (old, fresh):
                await service.move(session, call.id, CallStatus.IN_PROGRESS)
        await service.move(session, done.id, CallStatus.FAILED, end_reason="test")
        await service.update_fields(session, old.id, created_at=utcnow() - timedelta(hours=7))
        await service.update_fields(session, done.id, created_at=utcnow() - timedelta(hours=7))
    finished = await sweep_stuck_calls(
        services.sessions, services.slots, older_than_seconds=6 * 3600
    )
    assert finished == [old.id]
    async with services.sessions() as session:
        swept = await service.get_call(session, tenant.workspace_id, old.id)
        untouched = await service.get_call(session, tenant.workspace_id, fresh.id)
    assert swept.status is CallStatus.FAILED
    assert swept.end_reason == "stuck"
    assert untouched.status is status
