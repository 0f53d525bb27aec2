"""A phone rings: find the agent by the dialled number, check the carrier signed the
request, take a call slot, record the call and answer with markup pointing at our
media socket. Every refusal still answers the caller with speech, never silence.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from urllib.parse import urlsplit

from sqlalchemy import select

from switchboard.calls import service as calls
from switchboard.db.models import Agent, CallDirection, CallStatus, Workspace
from switchboard.errors import Forbidden
from switchboard.phone import reported_to_e164
from switchboard.services import Services
from switchboard.telephony.accounts import load_credentials
from switchboard.telephony.carrier import Carrier, InboundCall, Markup, WebhookRequest
from switchboard.telephony.credentials import (
    CREDENTIALS,
    PSTN_CARRIERS,
    CarrierCredentials,
    CarrierName,
)
from switchboard.telephony.numbers import find_by_number
from switchboard.telephony.registry import create_carrier
from switchboard.voice.slots import AtCapacity

log = logging.getLogger(__name__)

UNKNOWN_NUMBER = "Sorry, this number is not in service. Goodbye."
UNAVAILABLE = "Sorry, no one can take your call right now. Please try again later. Goodbye."
BUSY = "Sorry, all our lines are busy right now. Please call again in a few minutes. Goodbye."

# Where a carrier's numbers without a country code are from: Exotel writes ``09876543210``.
NATIONAL_REGIONS = {CarrierName.EXOTEL: "IN"}


def media_url(public_url: str, carrier: CarrierName, call_id: str) -> str:
    """``wss://`` for https public URLs, ``ws://`` for plain http (local development)."""
    parts = urlsplit(public_url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return f"{scheme}://{parts.netloc}{parts.path.rstrip('/')}/media/{carrier.value}/{call_id}"


async def carrier_for(services: Services, name: CarrierName, workspace_id: str | None) -> Carrier:
    """A carrier instance with the workspace's credentials (when it has any)."""
    credentials: CarrierCredentials | None = None
    if workspace_id is not None and name in CREDENTIALS:
        async with services.sessions() as session:
            try:
                credentials = await load_credentials(session, services.box, workspace_id, name)
            except Exception:
                credentials = None
    return create_carrier(name, credentials, services.http, **carrier_options(services, name))


def carrier_options(services: Services, name: CarrierName) -> dict[str, str]:
    """Per-carrier construction options that come from this server's settings."""
    public = services.settings.resolved_public_url
    if name is CarrierName.SIMULATOR:
        return {"api_base_url": f"{public}/simulator"}
    if name is CarrierName.VOBIZ:
        return {"transfer_url": f"{public}/telephony/vobiz/transfer"}
    return {}


def e164(name: CarrierName, number: str) -> str:
    """A carrier's number as numbers are stored: Exotel's national ``0XXXXXXXXXX`` and Vobiz's
    ``14155551234`` without its ``+`` included. Test carriers' numbers stay as sent."""
    if name not in PSTN_CARRIERS:
        return number
    return reported_to_e164(number, NATIONAL_REGIONS.get(name))


async def _find_agent(services: Services, name: CarrierName, inbound: InboundCall) -> Agent | None:
    async with services.sessions() as session:
        if name is CarrierName.SIMULATOR and inbound.to_number.startswith("agt_"):
            return await session.get(Agent, inbound.to_number)  # the local phone may dial an agent
        number = await find_by_number(session, inbound.to_number)
        if number is None:
            return None
        if number.agent_id is None:
            return Agent(id="", workspace_id=number.workspace_id, active=False)
        return await session.get(Agent, number.agent_id)


async def answer_inbound(services: Services, name: CarrierName, request: WebhookRequest) -> Markup:
    """Answer a ringing webhook. Raises ``Forbidden`` when the signature is wrong."""
    parser = create_carrier(name, None, services.http)
    inbound = parser.parse_inbound(request)
    inbound = dataclasses.replace(
        inbound,
        from_number=e164(name, inbound.from_number),
        to_number=e164(name, inbound.to_number),
    )
    agent = await _find_agent(services, name, inbound)
    if agent is None:
        log.warning("inbound call to unknown number %s on %s", inbound.to_number, name.value)
        return parser.say_and_hang_up_markup(UNKNOWN_NUMBER)
    carrier = await carrier_for(services, name, agent.workspace_id)
    try:
        carrier.verify_webhook(request)
    except Forbidden as exc:
        log.warning("rejected %s webhook for %s: %s", name.value, inbound.to_number, exc.message)
        raise
    async with services.sessions() as session:
        workspace = await session.get(Workspace, agent.workspace_id)
        assert workspace is not None

        async def record(status: CallStatus, reason: str | None = None) -> str:
            call = await calls.create_call(
                session,
                workspace_id=agent.workspace_id,
                agent_id=agent.id or None,
                agent_version=agent.version if agent.id else None,
                direction=CallDirection.INBOUND,
                carrier=name.value,
                carrier_call_id=inbound.carrier_call_id,
                from_number=inbound.from_number,
                to_number=inbound.to_number,
                status=status,
                end_reason=reason,
            )
            return call.id

        if not agent.id or not agent.active:
            await record(CallStatus.FAILED, "no_active_agent")
            return carrier.say_and_hang_up_markup(UNAVAILABLE)
        call_id = await record(CallStatus.RINGING)
        try:
            services.slots.acquire(call_id, agent.workspace_id, workspace.max_concurrent_calls)
        except AtCapacity as exc:
            await calls.move(
                session, call_id, CallStatus.REJECTED, end_reason=f"capacity_{exc.scope}"
            )
            return carrier.say_and_hang_up_markup(BUSY)
    services.media_timeouts[call_id] = services.spawn(
        expire_if_unconnected(services, call_id), name=f"media-timeout-{call_id}"
    )
    if name is CarrierName.SIMULATOR and services.simulator is not None:
        status_url = f"{services.settings.resolved_public_url}/telephony/simulator/status"
        services.simulator.ring_inbound(
            inbound.carrier_call_id, inbound.from_number, inbound.to_number, status_url
        )
    url = media_url(services.settings.resolved_public_url, name, call_id)
    return carrier.answer_markup(url, {"call_id": call_id})


async def expire_if_unconnected(services: Services, call_id: str) -> None:
    """A carrier that answered but never opened the media socket must not hold a slot."""
    await asyncio.sleep(services.settings.media_connect_timeout_seconds)
    services.media_timeouts.pop(call_id, None)
    async with services.sessions() as session:
        moved = await calls.move(
            session, call_id, CallStatus.FAILED, end_reason="no_media", only_from=CallStatus.RINGING
        )
    if moved:
        services.slots.release(call_id)
        log.warning("call %s: media never connected", call_id)


async def workspace_of_agent(services: Services, agent_id: str) -> str | None:
    async with services.sessions() as session:
        return await session.scalar(select(Agent.workspace_id).where(Agent.id == agent_id))
