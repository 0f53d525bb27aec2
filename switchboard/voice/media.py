"""The media socket of one call: ``/media/{carrier}/{call_id}``.

Media is routed by URL: the call id names the call the webhook created; the
carrier names the protocol. A socket for an unknown or finished call is closed
on its own, without touching any other call.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from fastapi import WebSocket
from starlette.websockets import WebSocketDisconnect, WebSocketState

from switchboard.agents.schema import RuntimeConfig
from switchboard.calls import service as calls
from switchboard.calls.recorder import CallRecorder
from switchboard.db.models import Call, CallStatus
from switchboard.errors import Unauthenticated
from switchboard.providers.credentials import load_credentials as load_provider_credentials
from switchboard.services import Services
from switchboard.telephony.browser_calls import check_browser_token
from switchboard.telephony.carrier import Carrier, StreamStart
from switchboard.telephony.credentials import CarrierName
from switchboard.telephony.inbound import carrier_for
from switchboard.tools.loading import ToolPolicy, WebhookTool, load_tool_policy, load_webhook_tools
from switchboard.voice.session import CallInputs, CallSession

log = logging.getLogger(__name__)

START_TIMEOUT_SECONDS = 10.0
POLICY_VIOLATION = 1008


async def read_stream_start(websocket: WebSocket, carrier: Carrier) -> StreamStart | None:
    """Read the carrier's opening messages until it says which stream this is.

    Messages that are not JSON, or not the start, are logged and skipped.
    """
    async with asyncio.timeout(START_TIMEOUT_SECONDS):
        while True:
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
        {k: v for k, v in start.custom_parameters.items() if k in runtime.config.variables}
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
    """Run one call's media socket to the end; always releases the call's slot."""
    await websocket.accept()
    if (timer := services.media_timeouts.pop(call_id, None)) is not None:
        timer.cancel()
    try:
        async with services.sessions() as session:
            call = await calls.get_call_any_workspace(session, call_id)
        if call is None or call.status is not CallStatus.RINGING or call.carrier != name.value:
            log.warning("media socket for unknown or finished call %s closed", call_id)
            await websocket.close(code=POLICY_VIOLATION)
            return
        carrier = await carrier_for(services, name, call.workspace_id)
        try:
            start = await read_stream_start(websocket, carrier)
        except TimeoutError:
            start = None
        if start is None:
            async with services.sessions() as session:
                await calls.move(session, call_id, CallStatus.FAILED, end_reason="no_stream_start")
            await _close(websocket)
            return
        assert call.agent_id is not None
        if name is CarrierName.BROWSER:
            try:
                token = start.custom_parameters.get("token", "")
                check_browser_token(services, token, call.workspace_id, call.agent_id)
            except Unauthenticated as exc:
                log.warning("browser media socket for call %s refused: %s", call_id, exc.message)
                async with services.sessions() as session:
                    await calls.move(session, call_id, CallStatus.FAILED, end_reason="bad_token")
                await websocket.close(code=POLICY_VIOLATION)
                return
        runtime, _ = await services.config_cache.get(call.workspace_id, call.agent_id)
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
        await CallSession(inputs, CallRecorder(services.sessions, call_id)).run()
    except WebSocketDisconnect:
        async with services.sessions() as session:
            await calls.move(session, call_id, CallStatus.FAILED, end_reason="media_dropped")
    finally:
        services.slots.release(call_id)
        await _close(websocket)


async def _close(websocket: WebSocket) -> None:
    if websocket.application_state is WebSocketState.CONNECTED:
        # The other side may be gone already; closing is then moot, not an error.
        with contextlib.suppress(Exception):
            await websocket.close()
