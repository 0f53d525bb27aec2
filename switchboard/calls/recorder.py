"""What a live call writes as it happens: events and transcript turns, in order.

One ``CallRecorder`` per call. Writes go through their own short sessions,
so a slow write never holds a transaction open across audio, and a failed
write is logged without ending the call.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from switchboard.calls import service
from switchboard.db.base import utcnow
from switchboard.db.models import CallStatus, TranscriptTurn

log = logging.getLogger(__name__)


class CallRecorder:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], call_id: str) -> None:
        self.sessions = sessions
        self.call_id = call_id
        self._turn = 0
        self._lock = asyncio.Lock()  # keeps this recorder's writes in the order it makes them

    async def event(self, type_: str, at: datetime | None = None, **data: Any) -> None:
        async with self._lock:
            try:
                async with self.sessions() as session:
                    await service.add_event(session, self.call_id, type_, data, at or utcnow())
            except Exception:
                log.exception("call %s: could not record event %s", self.call_id, type_)

    async def turn(
        self,
        role: str,
        text: str,
        *,
        started_at: datetime,
        ended_at: datetime | None = None,
        interrupted: bool = False,
        language: str | None = None,
    ) -> None:
        async with self._lock:
            self._turn += 1
            row = TranscriptTurn(
                call_id=self.call_id,
                index=self._turn,
                role=role,
                text=text,
                started_at=started_at,
                ended_at=ended_at or utcnow(),
                interrupted=interrupted,
                language=language,
            )
            try:
                async with self.sessions() as session:
                    await service.add_turn(session, row)
            except Exception:
                log.exception("call %s: could not record a transcript turn", self.call_id)

    async def has_event(self, type_: str) -> bool:
        """Whether any writer (in any process) has recorded a ``type_`` event for the call."""
        async with self.sessions() as session:
            return any(e.type == type_ for e in await service.events_of(session, self.call_id))

    async def move(self, status: CallStatus, end_reason: str | None = None, **fields: Any) -> bool:
        async with self.sessions() as session:
            return await service.move(
                session, self.call_id, status, end_reason=end_reason, fields=fields
            )

    async def update(self, **fields: Any) -> None:
        async with self.sessions() as session:
            await service.update_fields(session, self.call_id, **fields)
