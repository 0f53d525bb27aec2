"""Everything a call needs, resolved once when its media socket has been claimed.

One pass in one place (DESIGN §1): the carrier instance with the workspace's
credentials decrypted once, the agent's runtime config, its provider
endpoints checked against the workspace's address policy, its webhook tools
and their policy, its providers' keys and its variables. The session then
runs from ``CallInputs`` alone and never reaches back for any of it.
"""

from __future__ import annotations

from typing import Any

from fastapi import WebSocket

from switchboard.agents.schema import RuntimeConfig
from switchboard.db.models import Call
from switchboard.dialer.campaign_calls import campaign_call
from switchboard.errors import InvalidInput
from switchboard.providers.credentials import load_credentials as load_provider_credentials
from switchboard.providers.endpoints import check_provider_endpoints, provider_settings
from switchboard.services import Services
from switchboard.telephony.accounts import carrier_for
from switchboard.telephony.carrier import MediaEndpoint, StreamStart
from switchboard.telephony.credentials import CarrierName
from switchboard.telephony.registry import CARRIERS, MEDIA_ENDPOINTS
from switchboard.telephony.streams import STREAM_TOKEN
from switchboard.tools.addresses import system_resolver
from switchboard.tools.loading import ToolPolicy, WebhookTool, load_tool_policy, load_webhook_tools
from switchboard.tools.service import get_workspace
from switchboard.voice.session import CallInputs


class StreamRefused(InvalidInput):
    """The stream's encoding or sample rate is not one its carrier sends."""


async def resolve_call_inputs(
    services: Services, websocket: WebSocket, call: Call, start: StreamStart
) -> CallInputs:
    """What ``CallSession`` runs with; raises ``StreamRefused`` for a format the carrier never
    sends and the carrier's, config's or policy's own errors for the rest."""
    name = CarrierName(call.carrier)
    try:
        MEDIA_ENDPOINTS[name].check_stream_format(start)
    except InvalidInput as exc:
        raise StreamRefused(exc.message, field=exc.field) from exc
    endpoint = await media_endpoint(services, name, call.workspace_id)
    assert call.agent_id is not None
    runtime, _ = await services.config_cache.get(call.workspace_id, call.agent_id)
    async with services.sessions() as session:
        workspace = await get_workspace(session, call.workspace_id)
        campaign = await campaign_call(session, call)
    await check_provider_endpoints(runtime.config, workspace.allowed_private_hosts, system_resolver)
    tools, policy = await call_tools(services, runtime)
    return CallInputs(
        call=call,
        runtime=runtime,
        carrier=endpoint,
        start=start,
        websocket=websocket,
        credentials=await provider_credentials(services, runtime),
        variables=call_variables(call, runtime, start),
        recordings_dir=services.settings.recordings_dir,
        local=services.local_engines(),
        http=services.aiohttp_session(),
        webhook_tools=tools,
        campaign=campaign,
        tool_policy=policy,
    )


async def media_endpoint(services: Services, name: CarrierName, workspace_id: str) -> MediaEndpoint:
    """The call's one endpoint instance: its workspace's carrier, or a browser page."""
    if name in CARRIERS:
        return await carrier_for(services, name, workspace_id)
    return MEDIA_ENDPOINTS[name]()


async def provider_credentials(
    services: Services, runtime: RuntimeConfig
) -> dict[str, dict[str, str]]:
    """Each provider's decrypted keys (primaries and fallbacks), by provider id."""
    providers = {settings.provider for _, settings in provider_settings(runtime.config)}
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
