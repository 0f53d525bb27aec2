"""A phone rings: find the agent by the dialled number, check the carrier signed the
request, take a call slot, record the call and answer with markup pointing at our
media socket, with the call's stream token. Every refusal of a caller still answers
with speech, never silence; a request that fails its signature gets a 403.
"""

from __future__ import annotations

import dataclasses
import logging

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard.auth.service import authenticate
from switchboard.calls import service as calls
from switchboard.db.models import Agent, Call, CallDirection, CallStatus, Role, Workspace
from switchboard.errors import Conflict, Forbidden, Unauthenticated
from switchboard.services import Services
from switchboard.telephony.accounts import carrier_for
from switchboard.telephony.carrier import Carrier, InboundCall, Markup, WebhookRequest
from switchboard.telephony.credentials import CarrierName
from switchboard.telephony.dial import answer_outbound
from switchboard.telephony.numbers import find_by_number
from switchboard.telephony.registry import carrier_class
from switchboard.telephony.ringing import start_media_timer
from switchboard.telephony.streams import STREAM_TOKEN, issue_stream_token, media_url
from switchboard.voice.slots import AtCapacity

log = logging.getLogger(__name__)

UNKNOWN_NUMBER = "Sorry, this number is not in service. Goodbye."
UNAVAILABLE = "Sorry, no one can take your call right now. Please try again later. Goodbye."
BUSY = "Sorry, all our lines are busy right now. Please call again in a few minutes. Goodbye."


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
    cls = carrier_class(name)
    inbound = cls.parse_inbound(request)
    inbound = dataclasses.replace(
        inbound,
        from_number=cls.stored_number(inbound.from_number),
        to_number=cls.stored_number(inbound.to_number),
    )
    agent = await _find_agent(services, name, inbound, request)
    if agent is None:
        log.warning("inbound call to unknown number %s on %s", inbound.to_number, name.value)
        return cls.say_and_hang_up_markup(UNKNOWN_NUMBER)
    carrier = await carrier_for(services, name, agent.workspace_id)
    await verify_carrier_webhook(services, carrier, agent.workspace_id, request)
    async with services.sessions() as session:
        known = await _known_carrier_call(
            session, agent.workspace_id, name, inbound.carrier_call_id
        )
    if known is not None:
        if known.direction is CallDirection.OUTBOUND:
            # Exotel runs a placed call through its flow, whose applet asks this URL too.
            return await answer_outbound(services, carrier, known, inbound.carrier_call_id, None)
        log.warning("%s call %s rang again: refused", name.value, inbound.carrier_call_id)
        raise Conflict("this call was already answered", field="carrier_call_id")
    async with services.sessions() as session:
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
            await services.slots.acquire(
                call_id, agent.workspace_id, workspace.max_concurrent_calls
            )
        except AtCapacity as exc:
            await calls.move(
                session, call_id, CallStatus.REJECTED, end_reason=f"capacity_{exc.scope}"
            )
            return carrier.say_and_hang_up_markup(BUSY)
    start_media_timer(services, call_id)
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
) -> Call | None:
    return await session.scalar(
        select(Call).where(
            Call.workspace_id == workspace_id,
            Call.carrier == name.value,
            Call.carrier_call_id == carrier_call_id,
        )
    )
