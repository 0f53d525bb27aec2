"""Reading and writing call records. Every function is scoped to one workspace or one call."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard.calls.states import FINAL, can_move
from switchboard.db.base import new_id, utcnow
from switchboard.db.models import Call, CallDirection, CallEvent, CallStatus, TranscriptTurn
from switchboard.db.owned import get_owned

log = logging.getLogger(__name__)


async def create_call(
    session: AsyncSession,
    *,
    workspace_id: str,
    agent_id: str | None,
    agent_version: int | None,
    direction: CallDirection,
    carrier: str,
    from_number: str,
    to_number: str,
    carrier_call_id: str | None = None,
    status: CallStatus = CallStatus.RINGING,
    end_reason: str | None = None,
    variables: dict[str, Any] | None = None,
    dial: dict[str, Any] | None = None,
    call_id: str | None = None,
    campaign_id: str | None = None,
    commit: bool = True,
) -> Call:
    """Record a call; ``commit=False`` leaves it in the caller's transaction (a dialer
    records a tick's calls in one)."""
    now = utcnow()
    call = Call(
        id=call_id or new_id("call"),
        workspace_id=workspace_id,
        agent_id=agent_id,
        agent_version=agent_version,
        direction=direction,
        carrier=carrier,
        carrier_call_id=carrier_call_id,
        from_number=from_number,
        to_number=to_number,
        status=status,
        end_reason=end_reason,
        ended_at=now if status in FINAL else None,
        variables=variables or {},
        dial=dial,
        campaign_id=campaign_id,
    )
    session.add(call)
    if commit:
        await session.commit()
    return call


async def get_call(session: AsyncSession, workspace_id: str, call_id: str) -> Call:
    return await get_owned(session, Call, workspace_id, call_id, "call")


async def get_call_any_workspace(session: AsyncSession, call_id: str) -> Call | None:
    """For the media socket, which is addressed by call id alone (the id is unguessable)."""
    return await session.get(Call, call_id)


async def list_calls(
    session: AsyncSession,
    workspace_id: str,
    *,
    limit: int,
    after: str | None,
    status: CallStatus | None = None,
    agent_id: str | None = None,
) -> list[Call]:
    query = select(Call).where(Call.workspace_id == workspace_id)
    if after:
        query = query.where(Call.id < after)
    if status:
        query = query.where(Call.status == status)
    if agent_id:
        query = query.where(Call.agent_id == agent_id)
    return list(await session.scalars(query.order_by(Call.id.desc()).limit(limit)))


async def move(
    session: AsyncSession,
    call_id: str,
    new: CallStatus,
    *,
    end_reason: str | None = None,
    fields: dict[str, Any] | None = None,
    only_from: CallStatus | None = None,
) -> bool:
    """Move a call to ``new`` if the state machine allows it; False (and nothing written) if not.

    ``only_from`` narrows the move to calls currently in that state.

    The transition is one conditional UPDATE, so two processes finishing the
    same call (a hang-up racing the sweeper) cannot both win.
    """
    current = await session.scalar(select(Call.status).where(Call.id == call_id))
    if current is None or not can_move(current, new):
        return False
    if only_from is not None and current is not only_from:
        return False
    values: dict[str, Any] = {"status": new, **(fields or {})}
    now = utcnow()
    if new is CallStatus.IN_PROGRESS:
        values["answered_at"] = now
    if new in FINAL:
        values["ended_at"] = now
        values["end_reason"] = end_reason
    result = await session.execute(
        update(Call).where(Call.id == call_id, Call.status == current).values(**values)
    )
    await session.commit()
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def update_fields(session: AsyncSession, call_id: str, **fields: Any) -> None:
    await session.execute(update(Call).where(Call.id == call_id).values(**fields))
    await session.commit()


EVENT_WRITE_ATTEMPTS = 5


async def add_event(
    session: AsyncSession, call_id: str, type_: str, data: dict[str, Any], at: datetime
) -> None:
    """Append an event after the call's last one.

    Several writers may record events of one call (the webhook that answered it, the
    job that placed it, the session that runs it, in any process): each takes the next
    ``seq`` and, should two take the same one at once, the loser takes the one after.
    """
    for attempt in range(EVENT_WRITE_ATTEMPTS):
        last = await session.scalar(
            select(func.max(CallEvent.seq)).where(CallEvent.call_id == call_id)
        )
        session.add(CallEvent(call_id=call_id, seq=(last or 0) + 1, type=type_, data=data, at=at))
        try:
            await session.commit()
            return
        except IntegrityError:
            await session.rollback()
            if attempt == EVENT_WRITE_ATTEMPTS - 1:
                raise


async def add_turn(session: AsyncSession, turn: TranscriptTurn) -> None:
    session.add(turn)
    await session.commit()


async def events_of(session: AsyncSession, call_id: str) -> list[CallEvent]:
    rows = await session.scalars(
        select(CallEvent).where(CallEvent.call_id == call_id).order_by(CallEvent.seq)
    )
    return list(rows)


async def transcript_of(session: AsyncSession, call_id: str) -> list[TranscriptTurn]:
    rows = await session.scalars(
        select(TranscriptTurn)
        .where(TranscriptTurn.call_id == call_id)
        .order_by(TranscriptTurn.index)
    )
    return list(rows)


async def count_live_calls(session: AsyncSession, workspace_id: str) -> int:
    return int(
        await session.scalar(
            select(func.count())
            .select_from(Call)
            .where(Call.workspace_id == workspace_id, Call.status == CallStatus.IN_PROGRESS)
        )
        or 0
    )


async def stuck_calls(session: AsyncSession, started_before: datetime) -> list[str]:
    """Calls still RINGING or IN_PROGRESS that began before ``started_before``."""
    rows = await session.scalars(
        select(Call.id).where(
            Call.status.in_([CallStatus.RINGING, CallStatus.IN_PROGRESS]),
            Call.created_at < started_before,
        )
    )
    return list(rows)
