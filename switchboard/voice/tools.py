"""The built-in tools every agent has: ``end_call`` and (with destinations) ``transfer_call``.

Both are ordinary LLM functions: the LLM decides when to call them, Pipecat
runs the handler, and the call records ``tool_called`` / ``tool_result``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from pipecat.adapters.llm.schemas.function_schema import FunctionSchema
from pipecat.frames.frames import FunctionCallResultProperties, TTSSpeakFrame
from pipecat.processors.frame_processor import FrameProcessor
from pipecat.services.llm_service import FunctionCallParams

from switchboard.db.models import CallStatus
from switchboard.errors import SwitchboardError

if TYPE_CHECKING:
    from switchboard.voice.session import CallSession

log = logging.getLogger(__name__)

TRANSFER_NOTICE = "Please hold while I transfer you."
TRANSFER_FAILED = "I'm sorry, I could not transfer you right now."
# How long the transfer notice may take to play before the transfer goes ahead regardless.
NOTICE_TIMEOUT_SECONDS = 10.0


class BuiltinTools:
    def __init__(self, session: CallSession) -> None:
        self.session = session
        self.destinations = {d.name: d for d in session.config.transfer_destinations}

    def schemas(self) -> list[FunctionSchema]:
        tools = [
            FunctionSchema(
                name="end_call",
                description="Hang up once the conversation is over and you have said goodbye.",
                properties={},
                required=[],
            )
        ]
        if self.destinations:
            tools.append(
                FunctionSchema(
                    name="transfer_call",
                    description="Transfer the caller to a department: "
                    + "; ".join(
                        f"{d.name}: {d.description or d.name}" for d in self.destinations.values()
                    ),
                    properties={
                        "department": {"type": "string", "enum": sorted(self.destinations)}
                    },
                    required=["department"],
                )
            )
        return tools

    def register(self, llm: FrameProcessor) -> None:
        services = getattr(llm, "services", None) or [llm]
        for service in services:
            service.register_function("end_call", self._end_call)
            if self.destinations:
                service.register_function("transfer_call", self._transfer_call)

    async def _end_call(self, params: FunctionCallParams) -> None:
        started = time.monotonic()
        await self.session.recorder.event(
            "tool_called", name="end_call", arguments=params.arguments
        )
        await params.result_callback(
            {"status": "ending"}, properties=FunctionCallResultProperties(run_llm=False)
        )
        await self._result("end_call", "ok", started)
        await self.session.end_after_current_speech("agent_ended")

    async def _transfer_call(self, params: FunctionCallParams) -> None:
        started = time.monotonic()
        arguments: dict[str, Any] = dict(params.arguments)
        await self.session.recorder.event("tool_called", name="transfer_call", arguments=arguments)
        destination = self.destinations.get(str(arguments.get("department", "")))
        if destination is None:
            await params.result_callback(
                {"error": f"unknown department; choose one of {sorted(self.destinations)}"}
            )
            await self._result("transfer_call", "unknown_department", started)
            return
        await params.result_callback(
            {"status": "transferring"}, properties=FunctionCallResultProperties(run_llm=False)
        )
        session = self.session
        built = session._built
        assert built is not None
        await built.worker.queue_frame(TTSSpeakFrame(TRANSFER_NOTICE))
        try:
            async with asyncio.timeout(NOTICE_TIMEOUT_SECONDS):
                await built.speech.finished_after_now()
        except TimeoutError:
            log.warning("call %s: transfer notice did not finish playing", session.inputs.call.id)
        call_id = session.inputs.start.carrier_call_id or session.inputs.call.carrier_call_id
        try:
            if call_id is None:
                raise SwitchboardError("the carrier gave no call id to transfer")
            await session.inputs.carrier.transfer(call_id, destination.number)
        except Exception as exc:
            log.warning("call %s: transfer failed: %s", session.inputs.call.id, exc)
            await self._result("transfer_call", "failed", started, error=str(exc))
            await session.recorder.event("error", message=f"transfer failed: {exc}", fatal=False)
            await built.worker.queue_frame(TTSSpeakFrame(TRANSFER_FAILED))
            return
        await self._result("transfer_call", "ok", started)
        await session.recorder.event(
            "transferred", department=destination.name, to=destination.number
        )
        session.final_status = CallStatus.TRANSFERRED
        await session.end_after_current_speech("transferred")

    async def _result(self, name: str, status: str, started: float, **extra: Any) -> None:
        latency = round((time.monotonic() - started) * 1000, 1)
        await self.session.recorder.event(
            "tool_result", name=name, status=status, latency_ms=latency, **extra
        )
