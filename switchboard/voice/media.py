"""The media socket of one call: ``/media/{carrier}/{call_id}``.

Media is routed by URL: the call id names the call the webhook created; the
carrier names the protocol. The socket must then show the call's stream token
(``switchboard.telephony.streams``), which only the answer markup held. A
socket for an unknown, finished or already streaming call, or without the
token, is closed on its own, without touching any call.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass

from fastapi import WebSocket
from starlette.websockets import WebSocketDisconnect, WebSocketState

from switchboard.calls import service as calls
from switchboard.calls.recorder import CallRecorder
from switchboard.db.models import Call, CallStatus
from switchboard.dialer.signals import call_ended
from switchboard.errors import SwitchboardError, Unauthenticated
from switchboard.services import Services
from switchboard.telephony.carrier import MediaEndpoint, StreamStart
from switchboard.telephony.credentials import CarrierName
from switchboard.telephony.registry import MEDIA_ENDPOINTS
from switchboard.telephony.ringing import stop_media_timer
from switchboard.telephony.streams import check_stream_token, offered_stream_token
from switchboard.voice.inputs import StreamRefused, resolve_call_inputs
from switchboard.voice.session import CallSession

log = logging.getLogger(__name__)

START_TIMEOUT_SECONDS = 10.0
MAX_OPENING_MESSAGES = 8  # Twilio sends "connected" then "start"; a browser "start" alone
POLICY_VIOLATION = 1008


async def read_stream_start(
    websocket: WebSocket, endpoint: type[MediaEndpoint]
) -> StreamStart | None:
    """Read the carrier's opening messages until it says which stream this is.

    Messages that are not JSON, or not the start, are logged and skipped, up to
    ``MAX_OPENING_MESSAGES``: nobody has proven who they are yet.
    """
    async with asyncio.timeout(START_TIMEOUT_SECONDS):
        for _ in range(MAX_OPENING_MESSAGES):
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return None
            text = message.get("text")
            if text is None:
                continue
            try:
                decoded = json.loads(text)
            except ValueError:
                log.warning("skipped a media message that is not JSON")
                continue
            if not isinstance(decoded, dict):
                continue
            start = endpoint.parse_stream_start(decoded)
            if start is not None:
                return start
    log.warning("a media socket sent %d messages and no start", MAX_OPENING_MESSAGES)
    return None


async def serve_media(
    services: Services, websocket: WebSocket, name: CarrierName, call_id: str
) -> None:
    """Run one call's media socket to the end.

    Until the socket has shown the call's stream token and claimed the ringing call
    it changes nothing: a refused socket neither stops the call's media timer nor
    frees its slot, and a second socket for a call already streaming is refused.
    Once claimed, the call's slot is released however the call ends.
    """
    await websocket.accept()
    claimed: Claim | None = None
    try:
        claimed = await claim_stream(services, websocket, name, call_id)
        if claimed is None:
            await websocket.close(code=POLICY_VIOLATION)
            return
        # The call runs here now: its slot counts here, and is released below however it ends.
        await services.slots.hold(call_id, claimed.call.workspace_id)
        await _run_call(services, websocket, claimed)
    except WebSocketDisconnect:
        if claimed is not None:
            async with services.sessions() as session:
                await calls.move(session, call_id, CallStatus.FAILED, end_reason="media_dropped")
    finally:
        if claimed is not None:
            await services.slots.release(call_id)
            await call_ended(services.jobs, claimed.call.dial, call_id)
        await _close(websocket)


@dataclass(frozen=True)
class Claim:
    """A ringing call this socket proved it may stream, now in progress."""

    call: Call
    start: StreamStart


async def claim_stream(
    services: Services, websocket: WebSocket, name: CarrierName, call_id: str
) -> Claim | None:
    """The call, if this socket is its carrier's: the call rings on this carrier, the start
    message (or the URL) carries the call's stream token, and no other socket claimed it."""
    async with services.sessions() as session:
        call = await calls.get_call_any_workspace(session, call_id)
    if call is None or call.status is not CallStatus.RINGING or call.carrier != name.value:
        log.warning("media socket for unknown or finished call %s refused", call_id)
        return None
    try:
        start = await read_stream_start(websocket, MEDIA_ENDPOINTS[name])
    except TimeoutError:
        start = None
    if start is None:
        log.warning("media socket for call %s refused: no start message", call_id)
        return None
    token = offered_stream_token(start.custom_parameters, websocket.query_params)
    try:
        check_stream_token(services.settings, token, call_id, name, call.workspace_id)
    except Unauthenticated as exc:
        log.warning("media socket for call %s refused: %s", call_id, exc.message)
        return None
    async with services.sessions() as session:
        if not await calls.move(
            session, call_id, CallStatus.IN_PROGRESS, only_from=CallStatus.RINGING
        ):
            log.warning("media socket for call %s refused: the call is already streaming", call_id)
            return None
    stop_media_timer(services, call_id)
    return Claim(call, start)


async def _run_call(services: Services, websocket: WebSocket, claimed: Claim) -> None:
    """Resolve everything the call needs in one pass, then run its session; a call that
    cannot start fails, with an ``error`` event saying why."""
    recorder = CallRecorder(services.sessions, claimed.call.id)
    try:
        inputs = await resolve_call_inputs(services, websocket, claimed.call, claimed.start)
    except Exception as exc:
        reason = "bad_stream_format" if isinstance(exc, StreamRefused) else "setup_failed"
        await _fail(recorder, reason, exc)
        return
    session = CallSession(inputs, recorder)
    services.live_calls[claimed.call.id] = session
    try:
        await session.run()
    finally:
        services.live_calls.pop(claimed.call.id, None)


async def _fail(recorder: CallRecorder, reason: str, exc: Exception) -> None:
    """End a call that could not start: logged, recorded as an event, the record finished."""
    message = exc.message if isinstance(exc, SwitchboardError) else type(exc).__name__
    where = f" ({exc.field})" if isinstance(exc, SwitchboardError) and exc.field else ""
    log.warning("call %s could not start (%s): %s%s", recorder.call_id, reason, message, where)
    await recorder.event("error", message=f"{message}{where}", fatal=True)
    await recorder.move(CallStatus.FAILED, reason)
    await recorder.event("call_ended", reason=reason)


async def _close(websocket: WebSocket) -> None:
    if websocket.application_state is WebSocketState.CONNECTED:
        # The other side may be gone already; closing is then moot, not an error.
        with contextlib.suppress(Exception):
            await websocket.close()
