"""The functions a campaign call's agent has besides the built-ins: ``set_disposition`` and
``schedule_callback``.

They record what the call came to on the prospect (``switchboard.dialer.campaign_calls``)
while the call goes on; the hopper acts on it once the call has ended. Neither is
cancelled by an interruption: what the callee decided must be kept.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from switchboard.db.base import utcnow
from switchboard.dialer import campaign_calls
from switchboard.dialer.campaign_calls import CampaignCall
from switchboard.errors import InvalidInput
from switchboard.voice.functions import CallFunction, Outcome, record_tool_result

if TYPE_CHECKING:
    from switchboard.voice.session import CallSession


class CampaignTools:
    def __init__(self, session: CallSession, context: CampaignCall) -> None:
        self.session = session
        self.context = context

    def functions(self) -> list[CallFunction]:
        choosable = self.context.choosable
        now = campaign_calls.local_text(self.context, utcnow())
        return [
            CallFunction(
                name="set_disposition",
                description="Record what this call came to, once it is clear: "
                + "; ".join(
                    f"{name}: {flags.description or name}" for name, flags in choosable.items()
                ),
                properties={"disposition": {"type": "string", "enum": sorted(choosable)}},
                required=["disposition"],
                run=self._set_disposition,
                cancel_on_interruption=False,
            ),
            CallFunction(
                name="schedule_callback",
                description="Book a call back at the time the person asks for. Give it as"
                " YYYY-MM-DDTHH:MM on the person's own clock (their time zone is"
                f" {self.context.zones[0]}; it is now {now})."
                " A time we may not call is refused with the next time that is open: offer it.",
                properties={"at": {"type": "string", "description": "YYYY-MM-DDTHH:MM"}},
                required=["at"],
                run=self._schedule_callback,
                cancel_on_interruption=False,
            ),
        ]

    async def _set_disposition(self, arguments: dict[str, Any]) -> Outcome:
        name = str(arguments.get("disposition", ""))

        async def write(db: Any) -> dict[str, Any]:
            await campaign_calls.set_disposition(db, self.context, name)
            return {"status": "recorded", "disposition": name}

        return await self._run("set_disposition", arguments, write)

    async def _schedule_callback(self, arguments: dict[str, Any]) -> Outcome:
        async def write(db: Any) -> dict[str, Any]:
            try:
                at = datetime.fromisoformat(str(arguments.get("at", "")))
            except ValueError as exc:
                raise InvalidInput("give the time as YYYY-MM-DDTHH:MM", field="at") from exc
            booked = await campaign_calls.book_callback(db, self.context, at, utcnow())
            return {"status": "booked", "at": campaign_calls.local_text(self.context, booked)}

        return await self._run("schedule_callback", arguments, write)

    async def _run(
        self,
        name: str,
        arguments: dict[str, Any],
        write: Callable[[Any], Awaitable[dict[str, Any]]],
    ) -> Outcome:
        """Record the call of ``name``, run ``write`` in a database session, record its result;
        a refusal goes back to the LLM to act on."""
        started = time.monotonic()
        recorder = self.session.recorder
        await recorder.event("tool_called", name=name, arguments=arguments)

        async def record() -> Outcome:
            try:
                async with recorder.sessions() as db:
                    result = await write(db)
            except InvalidInput as exc:
                await record_tool_result(
                    recorder.event, name, "refused", started, error=exc.message
                )
                return Outcome({"error": exc.message}, succeeded=False)
            await record_tool_result(recorder.event, name, "ok", started, result=result)
            return Outcome(result)

        # Kept to its end: an end_call in the same turn must not cancel the write.
        return await self.session.keep(record())
