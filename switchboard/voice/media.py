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
from typing import Any

from fastapi import WebSocket
from starlette.websockets import WebSocketDisconnect, WebSocketState

from switchboard.agents.schema import RuntimeConfig
from switchboard.calls import service as calls
from switchboard.calls.recorder import CallRecorder
from switchboard.db.models import Call, CallStatus
from switchboard.errors import InvalidInput, SwitchboardError, Unauthenticated
from switchboard.providers.credentials import load_credentials as load_provider_credentials
from switchboard.providers.endpoints import check_provider_endpoints
from switchboard.services import Services
from switchboard.telephony.carrier import Carrier, StreamStart
from switchboard.telephony.credentials import CarrierName
from switchboard.telephony.inbound import carrier_for
from switchboard.telephony.registry import create_carrier
from switchboard.telephony.streams import (
    STREAM_TOKEN,
    check_stream_token,
    offered_stream_token,
)
from switchboard.tools.addresses import system_resolver
from switchboard.tools.loading import ToolPolicy, WebhookTool, load_tool_policy, load_webhook_tools
from switchboard.tools.service import get_workspace
from switchboard.voice.session import CallInputs, CallSession

log = logging.getLogger(__name__)

START_TIMEOUT_SECONDS = 10.0
MAX_OPENING_MESSAGES = 8  # Twilio sends "connected" then "start"; a browser "start" alone
POLICY_VIOLATION = 1008


async def read_stream_start(websocket: WebSocket, carrier: Carrier) -> StreamStart | None:
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
            start = carrier.parse_stream_start(decoded)
            if start is not None:
                return start
    log.warning("a media socket sent %d messages and no start", MAX_OPENING_MESSAGES)
    return None


async def provider_credentials(
    services: Services, runtime: RuntimeConfig
) -> dict[str, dict[str, str]]:
    config = runtime.config
    providers = {config.stt.provider, config.llm.provider, config.tts.provider}
    providers |= {s.provider for s in config.fallbacks.stt}
    providers |= {s.provider for s in config.fallbacks.llm}
    providers |= {s.provider for s in config.fallbacks.tts}
    result: dict[str, dict[str, str]] = {}
    async with services.sessions() as session:
        for provider in providers:
            result[provider] = await load_provider_credentials(
                session, services.box, runtime.workspace_id, provider
            )
    return result


async def call_tools(
    services: Services, runtime: RuntimeConfig
) -> tuple[dict[str, WebhookTool], ToolPolicy | None]:
    """The webhook tools the agent may use (with secrets) and the workspace's policy for them."""
    async with services.sessions() as session:
        tools = await load_webhook_tools(
            session, services.box, runtime.workspace_id, runtime.agent_id
        )
        if not tools:
            return tools, None
        return tools, await load_tool_policy(session, services.box, runtime.workspace_id)


def call_variables(call: Call, runtime: RuntimeConfig, start: StreamStart) -> dict[str, Any]:
    """Declared defaults, then carrier-supplied parameters, then the built-ins."""
    values: dict[str, Any] = {
        name: spec.default
        for name, spec in runtime.config.variables.items()
        if spec.default is not None
    }
    values.update(
        {
            k: v
            for k, v in start.custom_parameters.items()
            if k in runtime.config.variables and k != STREAM_TOKEN
        }
    )
    values.update(call.variables or {})
    values.update(
        caller_number=call.from_number,
        called_number=call.to_number,
        agent_name=runtime.config.name,
        call_id=call.id,
        direction=call.direction.value,
    )
    return values


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
        await _run_call(services, websocket, name, claimed)
    except WebSocketDisconnect:
        if claimed is not None:
            async with services.sessions() as session:
                await calls.move(session, call_id, CallStatus.FAILED, end_reason="media_dropped")
    finally:
        if claimed is not None:
            services.slots.release(call_id)
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
        start = await read_stream_start(websocket, create_carrier(name, None, services.http))
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
    if (timer := services.media_timeouts.pop(call_id, None)) is not None:
        timer.cancel()
    return Claim(call, start)


async def _run_call(
    services: Services, websocket: WebSocket, name: CarrierName, claimed: Claim
) -> None:
    """Resolve what the call needs, then run its session; a call that cannot start fails,
    with an ``error`` event saying why."""
    call, start = claimed.call, claimed.start
    recorder = CallRecorder(services.sessions, call.id)
    try:
        carrier = await carrier_for(services, name, call.workspace_id)
        carrier.check_stream_format(start)
    except SwitchboardError as exc:
        reason = "bad_stream_format" if isinstance(exc, InvalidInput) else "carrier_unavailable"
        await _fail(recorder, reason, exc)
        return
    try:
        assert call.agent_id is not None
        runtime, _ = await services.config_cache.get(call.workspace_id, call.agent_id)
        async with services.sessions() as session:
            workspace = await get_workspace(session, call.workspace_id)
        await check_provider_endpoints(
            runtime.config, workspace.allowed_private_hosts, system_resolver
        )
        tools, policy = await call_tools(services, runtime)
        inputs = CallInputs(
            call=call,
            runtime=runtime,
            carrier=carrier,
            start=start,
            websocket=websocket,
            credentials=await provider_credentials(services, runtime),
            variables=call_variables(call, runtime, start),
            recordings_dir=services.settings.recordings_dir,
            local=services.local_engines(),
            http=services.aiohttp_session(),
            webhook_tools=tools,
            tool_policy=policy,
        )
    except Exception as exc:
        await _fail(recorder, "setup_failed", exc)
        return
    await CallSession(inputs, recorder).run()


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
