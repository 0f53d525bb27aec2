"""Finishing calls that were left live: a crashed process, a carrier that never hung up.

Runs periodically in every server process; the conditional state change in
``service.move`` lets only one process finish a given call.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from switchboard.calls import service
from switchboard.db.base import utcnow
from switchboard.db.models import CallStatus
from switchboard.voice.slots import CallSlots

log = logging.getLogger(__name__)


async def sweep_stuck_calls(
    sessions: async_sessionmaker[AsyncSession], slots: CallSlots, older_than_seconds: float
) -> list[str]:
    """Mark calls live for longer than ``older_than_seconds`` as failed and free their slots;
    returns their ids."""
    cutoff = utcnow() - timedelta(seconds=older_than_seconds)
    finished = []
    async with sessions() as session:
        for call_id in await service.stuck_calls(session, cutoff):
            if await service.move(session, call_id, CallStatus.FAILED, end_reason="stuck"):
                finished.append(call_id)
    for call_id in finished:
        await slots.release(call_id)
    if finished:
        log.warning("finished %d stuck call(s): %s", len(finished), ", ".join(finished))
    return finished


async def run_sweeper(
    sessions: async_sessionmaker[AsyncSession],
    slots: CallSlots,
    older_than_seconds: float,
    every_seconds: float,
) -> None:
    while True:
        try:
            await sweep_stuck_calls(sessions, slots, older_than_seconds)
        except Exception:
            log.exception("stuck-call sweep failed; trying again later")
        await asyncio.sleep(every_seconds)
