"""A fake carrier REST API for the simulator: ``/simulator/calls``.

It plays what Twilio does when asked to place a call, with Twilio-shaped
form callbacks: it posts ``ringing`` to the call's status URL, then, by the
callee's behaviour, ``busy``, ``no-answer`` or ``failed``; or it fetches the
answer URL (keeping the markup for whoever plays the callee), posts
``in-progress``, and posts ``completed`` when the call is hung up, transferred
or (with ``hold_seconds``) after that long. A call that fails is never rung.

The behaviour is asked for explicitly (``"behaviour"``) or chosen by the
dialled number's last digits, after SIP's status codes: ``...486`` busy,
``...408`` no answer, ``...500`` fails; any other number answers.
State lives in memory in one ``CarrierSimulator``; ``GET /simulator/calls``
shows everything that was asked, for tests.

It exists only where the simulator is enabled (development), and even there it
is no open proxy: it calls back only URLs on the server's own origin (a real
carrier calls only the app that asked it), refusing any other with a 422, and
it remembers at most ``MAX_CALLS`` calls, forgetting finished ones first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import httpx
from fastapi import APIRouter, HTTPException
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from switchboard.caller.conversation import CallFailed, CallRejected, parse_twiml
from switchboard.errors import InvalidInput
from switchboard.telephony.carrier import MachineDetection
from switchboard.telephony.simulator_callee import (
    CalleeBook,
    CalleeConfig,
    CalleeResult,
    run_callee,
)
from switchboard.tools.addresses import parse_url

log = logging.getLogger(__name__)

Behaviour = Literal["answer", "busy", "no_answer", "fail", "voicemail", "reject"]
# What Twilio answers a call it refuses to place (its error 21211), for the "reject" callee.
REJECTED = {
    "code": 21211,
    "message": "The 'To' number is not a valid phone number.",
    "status": 400,
}
MAX_CALLS = 5000
BEHAVIOUR_BY_SUFFIX: dict[str, Behaviour] = {"486": "busy", "408": "no_answer", "500": "fail"}
TERMINAL_STATUS: dict[str, str] = {
    "busy": "busy",
    "no_answer": "no-answer",
    "fail": "failed",
}


def behaviour_for(number: str) -> Behaviour:
    """What the callee at ``number`` does when no behaviour is asked for."""
    return next((b for s, b in BEHAVIOUR_BY_SUFFIX.items() if number.endswith(s)), "answer")


class PlaceCallBody(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    to: str = Field(min_length=1, max_length=64)
    from_number: str = Field(alias="from", min_length=1, max_length=64)
    answer_url: str = Field(min_length=1, max_length=2000)
    status_url: str = Field(min_length=1, max_length=2000)
    behaviour: Behaviour | None = None
    machine_detection: MachineDetection = "off"
    hold_seconds: float | None = Field(default=None, ge=0, le=3600)


class TransferBody(BaseModel):
    to: str = Field(min_length=1, max_length=64)


@dataclass
class SimulatedCall:
    id: str
    request: PlaceCallBody
    behaviour: Behaviour
    status: str = "queued"
    posted: list[str] = field(default_factory=list)  # statuses sent to the status URL
    answer_markup: str | None = None
    transferred_to: str | None = None
    hung_up: bool = False
    callback_errors: int = 0
    answered_at: float | None = None
    ring_seconds: float | None = None  # None: the simulator's own default
    answered_by: str | None = None  # what its machine detection (if asked for) reported
    callee: CalleeResult | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "to": self.request.to,
            "from": self.request.from_number,
            "answer_url": self.request.answer_url,
            "status_url": self.request.status_url,
            "behaviour": self.behaviour,
            "machine_detection": self.request.machine_detection,
            "status": self.status,
            "posted": list(self.posted),
            "answer_markup": self.answer_markup,
            "transferred_to": self.transferred_to,
            "hung_up": self.hung_up,
            "callback_errors": self.callback_errors,
            "answered_by": self.answered_by,
            "callee": None if self.callee is None else asdict(self.callee),
        }


def same_origin(url: str, origin: str) -> bool:
    """Whether ``url`` is an http(s) URL on exactly ``origin``'s scheme, host and port."""
    try:
        target, ours = parse_url(url), parse_url(origin)
    except InvalidInput:
        return False
    return (target.scheme, target.host, target.port) == (ours.scheme, ours.host, ours.port)


class CarrierSimulator:
    """The calls the simulator was asked for, and the tasks that play their callees.

    ``callback_origin`` is the one origin it calls back (the server's public URL).
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        callback_origin: str,
        ring_seconds: float = 0.5,
        max_calls: int = MAX_CALLS,
        callees: CalleeBook | None = None,
    ) -> None:
        """``callees`` plays the people and machines that answer (None: nobody joins the
        media stream of an answered call)."""
        self.http = http
        self.callback_origin = callback_origin
        self.ring_seconds = ring_seconds
        self.max_calls = max_calls
        self.callees = callees
        self.calls: dict[str, SimulatedCall] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def place(self, body: PlaceCallBody) -> SimulatedCall:
        for field_name in ("answer_url", "status_url"):
            if not same_origin(getattr(body, field_name), self.callback_origin):
                raise InvalidInput(
                    f"the simulator calls back only {self.callback_origin}", field=field_name
                )
        call = SimulatedCall(
            f"SIM{uuid.uuid4().hex}", body, body.behaviour or behaviour_for(body.to)
        )
        drawn = self.callees.draw(body.to) if self.callees and not body.behaviour else None
        if drawn is not None:
            call.behaviour, call.ring_seconds = drawn.outcome, drawn.ring_seconds
        if call.behaviour == "reject":
            return call  # refused at once, as a carrier refuses a bad request: never rung
        self._remember(call)
        self._tasks[call.id] = asyncio.create_task(self._play(call), name=f"simulated-{call.id}")
        return call

    def ring_inbound(
        self, call_sid: str, from_number: str, to_number: str, status_url: str
    ) -> None:
        """Track a call the local phone placed to us, so it can be transferred or hung up."""
        body = PlaceCallBody.model_validate(
            {"to": to_number, "from": from_number, "answer_url": "-", "status_url": status_url}
        )
        self._remember(SimulatedCall(call_sid, body, "answer", status="in-progress"))

    def _remember(self, call: SimulatedCall) -> None:
        """Keep ``call``, forgetting the oldest idle calls (no callee being played: finished,
        or answered and left alone) beyond ``max_calls``; 503 if every call is busy."""
        excess = len(self.calls) - self.max_calls + 1
        if excess > 0:
            idle = [c.id for c in self.calls.values() if c.id not in self._tasks]
            for call_id in idle[:excess]:
                del self.calls[call_id]
        if len(self.calls) >= self.max_calls:
            raise HTTPException(503, f"the simulator is playing {self.max_calls} calls already")
        self.calls[call.id] = call

    async def hang_up(self, call: SimulatedCall) -> None:
        await self._stop(call)
        call.hung_up = True
        if call.status in ("queued", "ringing"):
            await self._post_status(call, "canceled")
        elif call.status == "in-progress":
            await self._post_status(call, "completed")

    async def transfer(self, call: SimulatedCall, to_number: str) -> None:
        if call.status != "in-progress":
            raise HTTPException(409, f"call {call.id} is {call.status}, not in progress")
        await self._stop(call)
        call.transferred_to = to_number
        await self._post_status(call, "completed")

    async def aclose(self) -> None:
        """Stop every callee still being played (server shutdown, end of a test)."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()

    async def _stop(self, call: SimulatedCall) -> None:
        task = self._tasks.pop(call.id, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _play(self, call: SimulatedCall) -> None:
        try:
            if call.behaviour == "fail":
                await self._post_status(call, "failed")
                return
            await self._post_status(call, "ringing")
            ring = self.ring_seconds if call.ring_seconds is None else call.ring_seconds
            await asyncio.sleep(ring)
            if call.behaviour not in ("answer", "voicemail"):
                await self._post_status(call, TERMINAL_STATUS[call.behaviour])
                return
            detecting = (
                self.callees is None or self.callees.config_for(call.request.to).carrier_detection
            )
            call.answered_by = self._detected(call) if detecting else None
            await self._fetch_answer(call)
            await self._post_status(call, "in-progress")
            if self.callees is not None and call.answer_markup is not None:
                call.callee = await self._pick_up(call, self.callees, call.answer_markup)
                await self._post_status(call, "completed")
            elif call.request.hold_seconds is not None:
                await asyncio.sleep(call.request.hold_seconds)
                await self._post_status(call, "completed")
        finally:
            if self._tasks.get(call.id) is asyncio.current_task():
                del self._tasks[call.id]

    @staticmethod
    def _detected(call: SimulatedCall) -> str | None:
        """Twilio's ``AnsweredBy`` when detection was asked for: a machine's greeting has
        already ended (the beep) when the call waits to leave a message."""
        mode = call.request.machine_detection
        if mode == "off":
            return None
        if call.behaviour != "voicemail":
            return "human"
        return "machine_end_beep" if mode == "leave_message" else "machine_start"

    async def _pick_up(self, call: SimulatedCall, callees: CalleeBook, markup: str) -> CalleeResult:
        """The person or machine at ``call.request.to`` joins the stream the app answered."""
        try:
            answer = parse_twiml(markup)
        except CallFailed as exc:  # a hang-up or <Say> answer: nobody streams
            return CalleeResult(errors=[str(exc)] if not isinstance(exc, CallRejected) else [])
        number = call.request.to
        if call.behaviour == "voicemail":
            played = call.answered_by == "machine_end_beep"
            playing = callees.machine(number, answer, call.id, greeting_played=played)
        else:
            playing = callees.person(number, answer, call.id)
        return await run_callee(asyncio.create_task(playing))

    def _form(self, call: SimulatedCall, status: str) -> dict[str, str]:
        form = {
            "CallSid": call.id,
            "CallStatus": status,
            "From": call.request.from_number,
            "To": call.request.to,
            "Direction": "outbound-api",
        }
        if call.answered_by is not None and call.answered_at is not None:
            form["AnsweredBy"] = call.answered_by
        if status == "completed" and call.answered_at is not None:
            form["CallDuration"] = str(round(time.monotonic() - call.answered_at))
        return form

    async def _fetch_answer(self, call: SimulatedCall) -> None:
        call.answered_at = time.monotonic()
        try:
            response = await self.http.post(
                call.request.answer_url, data=self._form(call, "in-progress")
            )
            call.answer_markup = response.text
        except httpx.HTTPError as exc:
            call.callback_errors += 1
            log.warning("simulator: answer URL of %s failed: %s", call.id, type(exc).__name__)

    async def _post_status(self, call: SimulatedCall, status: str) -> None:
        call.status = status
        call.posted.append(status)
        try:
            response = await self.http.post(call.request.status_url, data=self._form(call, status))
            response.raise_for_status()
        except httpx.HTTPError as exc:
            call.callback_errors += 1
            log.warning("simulator: status %s of %s failed: %s", status, call.id, exc)


def create_simulator_router(state: CarrierSimulator) -> APIRouter:
    """The ``/simulator`` routes over one ``CarrierSimulator``."""
    router = APIRouter(prefix="/simulator", tags=["simulator"])

    def find(call_id: str) -> SimulatedCall:
        call = state.calls.get(call_id)
        if call is None:
            raise HTTPException(404, f"no simulated call {call_id!r}")
        return call

    @router.put("/numbers/{number}")
    async def configure_callee(number: str, body: CalleeConfig) -> dict[str, Any]:
        """Who answers calls to ``number``: outcomes with weights and ring times, a person's
        script, a machine's greeting, and a seed that makes the draws repeat."""
        if state.callees is None:
            raise HTTPException(409, "this simulator plays no callees")
        state.callees.configure(number, body)
        return {"number": number, **body.model_dump()}

    @router.get("/numbers/{number}")
    async def get_callee(number: str) -> dict[str, Any]:
        if state.callees is None:
            raise HTTPException(409, "this simulator plays no callees")
        return {"number": number, **state.callees.config_for(number).model_dump()}

    @router.post("/calls", status_code=201, response_model=None)
    async def place_call(body: PlaceCallBody) -> dict[str, Any] | JSONResponse:
        call = state.place(body)
        if call.behaviour == "reject":
            return JSONResponse(REJECTED, status_code=400)
        return call.as_json()

    @router.get("/calls")
    async def list_calls() -> list[dict[str, Any]]:
        return [call.as_json() for call in state.calls.values()]

    @router.get("/calls/{call_id}")
    async def get_call(call_id: str) -> dict[str, Any]:
        return find(call_id).as_json()

    @router.post("/calls/{call_id}/transfer")
    async def transfer(call_id: str, body: TransferBody) -> dict[str, Any]:
        call = find(call_id)
        await state.transfer(call, body.to)
        return call.as_json()

    @router.post("/calls/{call_id}/hangup")
    async def hangup(call_id: str) -> dict[str, Any]:
        call = find(call_id)
        await state.hang_up(call)
        return call.as_json()

    return router
