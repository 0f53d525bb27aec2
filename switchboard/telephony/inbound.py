"""A phone rings: find the agent by the dialled number, check the carrier signed the
request, take a call slot, record the call and answer with markup pointing at our
media socket, with the call's stream token. Every refusal of a caller still answers
with speech, never silence; a request that fails its signature gets a 403.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard.auth.service import authenticate
from switchboard.calls import service as calls
from switchboard.db.models import Agent, Call, CallDirection, CallStatus, Role, Workspace
from switchboard.errors import (
    ConfigurationError,
    Conflict,
    Forbidden,
    NotFound,
    Unauthenticated,
)
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
from switchboard.telephony.streams import STREAM_TOKEN, issue_stream_token, media_url
from switchboard.voice.slots import AtCapacity

log = logging.getLogger(__name__)

UNKNOWN_NUMBER = "Sorry, this number is not in service. Goodbye."
UNAVAILABLE = "Sorry, no one can take your call right now. Please try again later. Goodbye."
BUSY = "Sorry, all our lines are busy right now. Please call again in a few minutes. Goodbye."

# Where a carrier's numbers without a country code are from: Exotel writes ``09876543210``.
NATIONAL_REGIONS = {CarrierName.EXOTEL: "IN"}


async def carrier_for(services: Services, name: CarrierName, workspace_id: str | None) -> Carrier:
    """A carrier instance with the workspace's credentials (for carriers that take any).

    Raises ``Forbidden`` (logged) when the workspace has no account for a carrier that
    needs one, and ``ConfigurationError`` (logged as such) when its stored secrets
    cannot be decrypted: a webhook is then refused, never checked against nothing.
    """
    credentials: CarrierCredentials | None = None
    if workspace_id is not None and name in CREDENTIALS:
        async with services.sessions() as session:
            try:
                credentials = await load_credentials(session, services.box, workspace_id, name)
            except NotFound as exc:
                log.warning(
                    "workspace %s has no %s account: its %s request is refused",
                    workspace_id,
                    name.value,
                    name.value,
                )
                raise Forbidden(
                    f"no {name.value} account is configured for this number's workspace"
                ) from exc
            except ConfigurationError:
                log.error(
                    "workspace %s: the stored %s credentials cannot be decrypted"
                    " (was SWITCHBOARD_SECRET_KEY changed?)",
                    workspace_id,
                    name.value,
                )
                raise
    return create_carrier(name, credentials, services.http, **carrier_options(services, name))


def carrier_options(services: Services, name: CarrierName) -> dict[str, Any]:
    """Per-carrier construction options that come from this server's settings."""
    public = services.settings.resolved_public_url
    if name is CarrierName.SIMULATOR:
        return {"api_base_url": f"{public}/simulator"}
    if name is CarrierName.VOBIZ:
        return {
            "transfer_url": f"{public}/telephony/vobiz/transfer",
            "transfer_secret": services.settings.encryption_key,
        }
    return {}


async def verify_carrier_webhook(
    services: Services, carrier: Carrier, workspace_id: str, request: WebhookRequest
) -> None:
    """The carrier signed ``request`` for this workspace, and it is not a replay of one
    already taken (for carriers whose signatures rest on a nonce)."""
    try:
        carrier.verify_webhook(request)
    except Forbidden as exc:
        log.warning("refused a %s webhook: %s", carrier.name.value, exc.message)
        raise
    nonce = carrier.replay_nonce(request)
    if nonce is not None and not await services.replays.first_use(
        f"{carrier.name.value}:{workspace_id}", nonce
    ):
        log.warning("refused a replayed %s webhook (a nonce seen before)", carrier.name.value)
        raise Forbidden("this signed request was already received once")


def e164(name: CarrierName, number: str) -> str:
    """A carrier's number as numbers are stored: Exotel's national ``0XXXXXXXXXX`` and Vobiz's
    ``14155551234`` without its ``+`` included. Test carriers' numbers stay as sent."""
    if name not in PSTN_CARRIERS:
        return number
    return reported_to_e164(number, NATIONAL_REGIONS.get(name))


def _bearer_key(request: WebhookRequest) -> str:
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    return key.strip() if scheme.lower() == "bearer" else ""


async def _agent_dialled_by_id(
    services: Services, request: WebhookRequest, agent_id: str
) -> Agent | None:
    """The local phone may dial an agent by id, with a developer key of the agent's own
    workspace; another workspace's agent is as unknown as an unused number."""
    key = _bearer_key(request)
    if not key:
        raise Unauthenticated("dialling an agent by id needs an API key (switchboard call --key)")
    async with services.sessions() as session:
        principal = await authenticate(session, key)
        principal.require(Role.DEVELOPER)
        agent = await session.get(Agent, agent_id)
    if agent is None or agent.workspace_id != principal.workspace_id:
        return None
    return agent


async def _find_agent(
    services: Services, name: CarrierName, inbound: InboundCall, request: WebhookRequest
) -> Agent | None:
    """Who answers: the agent on the dialled number, if that number is on this carrier."""
    if name is CarrierName.SIMULATOR and inbound.to_number.startswith("agt_"):
        return await _agent_dialled_by_id(services, request, inbound.to_number)
    async with services.sessions() as session:
        number = await find_by_number(session, inbound.to_number)
        if number is None:
            return None
        if number.carrier != name.value:
            # A number answers only on its own carrier: an unsigned simulator webhook must
            # never reach a Twilio number, nor one carrier's signature another's number.
            log.warning(
                "a %s webhook for %s, which is a %s number",
                name.value,
                number.number,
                number.carrier,
            )
            return None
        if number.agent_id is None:
            return Agent(id="", workspace_id=number.workspace_id, active=False)
        return await session.get(Agent, number.agent_id)


async def answer_inbound(services: Services, name: CarrierName, request: WebhookRequest) -> Markup:
    """Answer a ringing webhook.

    Raises ``Forbidden`` when the signature is wrong or replayed, ``Conflict`` when this
    carrier call already has a record (a replayed webhook opens no second media socket).
    """
    parser = create_carrier(name, None, services.http)
    inbound = parser.parse_inbound(request)
    inbound = dataclasses.replace(
        inbound,
        from_number=e164(name, inbound.from_number),
        to_number=e164(name, inbound.to_number),
    )
    agent = await _find_agent(services, name, inbound, request)
    if agent is None:
        log.warning("inbound call to unknown number %s on %s", inbound.to_number, name.value)
        return parser.say_and_hang_up_markup(UNKNOWN_NUMBER)
    carrier = await carrier_for(services, name, agent.workspace_id)
    await verify_carrier_webhook(services, carrier, agent.workspace_id, request)
    async with services.sessions() as session:
        if await _known_carrier_call(session, agent.workspace_id, name, inbound.carrier_call_id):
            log.warning("%s call %s rang again: refused", name.value, inbound.carrier_call_id)
            raise Conflict("this call was already answered", field="carrier_call_id")
        workspace = await session.get(Workspace, agent.workspace_id)
        assert workspace is not None

        async def record(status: CallStatus, reason: str | None = None) -> str:
            try:
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
            except IntegrityError as exc:  # the same webhook, twice at once
                await session.rollback()
                raise Conflict("this call was already answered", field="carrier_call_id") from exc
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
    token = issue_stream_token(services.settings, call_id, name, agent.workspace_id)
    return carrier.answer_markup(url, {STREAM_TOKEN: token})


async def _known_carrier_call(
    session: AsyncSession, workspace_id: str, name: CarrierName, carrier_call_id: str
) -> bool:
    found = await session.scalar(
        select(Call.id).where(
            Call.workspace_id == workspace_id,
            Call.carrier == name.value,
            Call.carrier_call_id == carrier_call_id,
        )
    )
    return found is not None


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
