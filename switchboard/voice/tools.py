"""The built-in functions every agent has: ``end_call``, ``opt_out``, (with destinations)
``transfer_call`` and, on a campaign's calls, ``set_disposition`` and ``schedule_callback``
(``switchboard.voice.campaign_tools``).

All are ordinary LLM functions: the LLM decides when to call them, and the
call records ``tool_called`` / ``tool_result``. A flow's ``end_call`` and
``transfer`` actions use the same ``end`` and ``transfer_to``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from pipecat.frames.frames import TTSSpeakFrame

from switchboard.db.models import Call, CallDirection, CallStatus
from switchboard.dialer import dnc
from switchboard.errors import SwitchboardError
from switchboard.telephony.carrier import Carrier
from switchboard.telephony.credentials import CarrierName
from switchboard.voice.campaign_tools import CampaignTools
from switchboard.voice.functions import CallFunction, Outcome, record_tool_result

if TYPE_CHECKING:
    from switchboard.voice.session import CallSession

log = logging.getLogger(__name__)

TRANSFER_NOTICE = "Please hold while I transfer you."
TRANSFER_FAILED = "I'm sorry, I could not transfer you right now."
# How long the transfer notice may take to play before the transfer goes ahead regardless.
NOTICE_TIMEOUT_SECONDS = 10.0
OPT_OUT_CONFIRMATION = "I've taken your number off our list. You won't be called again. Goodbye."
OPT_OUT_FAILED = "I'm sorry, I could not take your number off our list just now. Goodbye."


class BuiltinTools:
    def __init__(self, session: CallSession) -> None:
        self.session = session
        self.destinations = {d.name: d for d in session.config.transfer_destinations}

    def functions(self) -> list[CallFunction]:
        tools = [
            CallFunction(
                name="end_call",
                description="Hang up once the conversation is over and you have said goodbye.",
                run=self._end_call,
            )
        ]
        if self.destinations:
            tools.append(
                CallFunction(
                    name="transfer_call",
                    description="Transfer the caller to a department: "
                    + "; ".join(
                        f"{d.name}: {d.description or d.name}" for d in self.destinations.values()
                    ),
                    properties={
                        "department": {"type": "string", "enum": sorted(self.destinations)}
                    },
                    required=["department"],
                    run=self._transfer_call,
                )
            )
        tools.append(self.opt_out_function())
        campaign = self.session.inputs.campaign
        if campaign is not None:
            tools += CampaignTools(self.session, campaign).functions()
        return tools

    async def _end_call(self, arguments: dict[str, Any]) -> Outcome:
        started = time.monotonic()
        await self.session.recorder.event("tool_called", name="end_call", arguments=arguments)
        await self.end("agent_ended")
        await record_tool_result(self.session.recorder.event, "end_call", "ok", started)
        return Outcome({"status": "ending"}, respond=False)

    async def end(self, reason: str) -> None:
        """End the call once what is queued has been said."""
        await self.session.end_after_current_speech(reason)

    async def _transfer_call(self, arguments: dict[str, Any]) -> Outcome:
        started = time.monotonic()
        await self.session.recorder.event("tool_called", name="transfer_call", arguments=arguments)
        department = str(arguments.get("department", ""))
        if department not in self.destinations:
            await record_tool_result(
                self.session.recorder.event, "transfer_call", "unknown_department", started
            )
            return Outcome(
                {"error": f"unknown department; choose one of {sorted(self.destinations)}"},
                succeeded=False,
            )
        error = await self.transfer_to(department, notice=TRANSFER_NOTICE)
        await record_tool_result(
            self.session.recorder.event,
            "transfer_call",
            "failed" if error else "ok",
            started,
            error=error,
        )
        if error:
            return Outcome({"status": "failed", "error": error}, succeeded=False, respond=False)
        return Outcome({"status": "transferred"}, respond=False)

    async def transfer_to(self, department: str, *, notice: str | None) -> str | None:
        """Say ``notice`` (if any), then hand the caller to ``department``; the error, if any."""
        session = self.session
        built = session._built
        assert built is not None
        destination = self.destinations.get(department)
        call_id = session.inputs.start.carrier_call_id or session.inputs.call.carrier_call_id
        try:
            if destination is None:  # a flow saved before the destination was removed
                raise SwitchboardError(f"the agent has no transfer destination {department!r}")
            await self._let_notice_play(notice)
            if call_id is None:
                raise SwitchboardError("the carrier gave no call id to transfer")
            carrier = session.inputs.carrier
            if not isinstance(carrier, Carrier):
                raise SwitchboardError(f"a {carrier.name.value} call cannot be transferred")
            await carrier.transfer(call_id, destination.number)
        except Exception as exc:
            log.warning("call %s: transfer failed: %s", session.inputs.call.id, exc)
            await session.recorder.event("error", message=f"transfer failed: {exc}", fatal=False)
            await built.worker.queue_frame(TTSSpeakFrame(TRANSFER_FAILED))
            return str(exc)
        await session.recorder.event(
            "transferred", department=destination.name, to=destination.number
        )
        session.final_status = CallStatus.TRANSFERRED
        await session.end_after_current_speech("transferred")
        return None

    async def _let_notice_play(self, notice: str | None) -> None:
        """Say ``notice`` and wait for it, or wait for what is being said (a flow's own line)."""
        built = self.session._built
        assert built is not None
        if notice:
            await built.worker.queue_frame(TTSSpeakFrame(notice))
        try:
            async with asyncio.timeout(NOTICE_TIMEOUT_SECONDS):
                if notice:
                    await built.speech.finished_after_now()
                else:
                    await built.speech.quiet()
        except TimeoutError:
            log.warning(
                "call %s: transfer notice did not finish playing", self.session.inputs.call.id
            )

    # -- opt_out -------------------------------------------------------------------

    def opt_out_function(self) -> CallFunction:
        """``opt_out``: the other party goes on the workspace's do-not-call list, then the
        call ends after a confirmation. Offered on every call; an interruption by the
        callee does not cancel it (the listing must happen)."""
        return CallFunction(
            name="opt_out",
            description="Call this only when the person asks not to be called again (to be"
            " taken off the call list, to stop calling them). It records that and hangs up"
            " after a short confirmation; do not say goodbye yourself.",
            run=self._opt_out,
            cancel_on_interruption=False,
        )

    async def _opt_out(self, arguments: dict[str, Any]) -> Outcome:
        started = time.monotonic()
        session, call = self.session, self.session.inputs.call
        await session.recorder.event("tool_called", name="opt_out", arguments=arguments)
        number, skipped = other_party(call)
        entry_id: str | None = None
        if number is not None:
            try:
                # Kept to its end: a callee who hangs up at once must still be listed.
                entry_id = await session.keep(self._list(call, number))
            except Exception as exc:
                log.exception("call %s: could not list %s as do-not-call", call.id, number)
                await session.recorder.event(
                    "error", message=f"opt-out not recorded: {exc}", fatal=False
                )
                await record_tool_result(
                    session.recorder.event, "opt_out", "failed", started, error=str(exc)
                )
                await session.say_and_end(OPT_OUT_FAILED, "opt_out_failed")
                return Outcome({"status": "failed"}, succeeded=False, respond=False)
        # Listed before the goodbye is queued, so before the call's record is finished.
        await session.recorder.event("opted_out", number=number, dnc_id=entry_id, skipped=skipped)
        await record_tool_result(
            session.recorder.event, "opt_out", "skipped" if skipped else "ok", started
        )
        await session.say_and_end(OPT_OUT_CONFIRMATION, "opted_out")
        return Outcome({"status": "opted_out"}, respond=False)

    async def _list(self, call: Call, number: str) -> str:
        """Put ``number`` on the workspace's do-not-call list; the entry's id."""
        async with self.session.recorder.sessions() as db:
            entry, _ = await dnc.add_number(
                db,
                call.workspace_id,
                number,
                source=dnc.DncSource.OPT_OUT,
                reason="asked not to be called again",
                call_id=call.id,
            )
        return entry.id


def other_party(call: Call) -> tuple[str | None, str | None]:
    """The number of whoever the agent is talking to (the callee of an outbound call, the
    caller of an inbound one) in E.164, or None and why there is none."""
    if call.carrier == CarrierName.BROWSER.value:
        return None, "a browser call has no phone number"
    raw = call.to_number if call.direction is CallDirection.OUTBOUND else call.from_number
    try:
        return dnc.dnc_number(raw), None
    except ValueError:
        return None, "the other party's number is unknown"
