"""Carrier-facing endpoints: webhooks under /telephony, media sockets under /media."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, WebSocket
from sqlalchemy import select

from switchboard.api.deps import ServicesDep
from switchboard.db.models import Call, CallStatus
from switchboard.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthenticated
from switchboard.services import Services
from switchboard.telephony.accounts import carrier_for
from switchboard.telephony.carrier import Carrier, StatusUpdate, WebhookRequest
from switchboard.telephony.credentials import CarrierName
from switchboard.telephony.dial import answer_outbound, outbound_call
from switchboard.telephony.inbound import answer_inbound, verify_carrier_webhook
from switchboard.telephony.registry import CARRIERS, carrier_class
from switchboard.telephony.ringing import apply_status
from switchboard.telephony.vobiz import TRANSFER_TOKEN, VobizCarrier, check_transfer_token
from switchboard.voice.media import serve_media

log = logging.getLogger(__name__)
router = APIRouter(tags=["telephony"])


async def webhook_request(request: Request, services: Services) -> WebhookRequest:
    """The request as the carrier signed it: our public URL plus the path and query."""
    body = await request.body()
    form: dict[str, str] = {}
    if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        form = {k: str(v) for k, v in (await request.form()).items()}
    url = services.settings.resolved_public_url + request.url.path
    if request.url.query:
        url += "?" + request.url.query
    return WebhookRequest(
        url=url,
        method=request.method,
        headers={k.lower(): v for k, v in request.headers.items()},
        form=form,
        body=body,
    )


def carrier_available(services: Services, carrier: CarrierName) -> bool:
    """The simulator takes unsigned webhooks: it exists only where it is enabled."""
    return carrier is not CarrierName.SIMULATOR or services.settings.simulator_enabled


def available_carrier(carrier: CarrierName, services: ServicesDep) -> CarrierName:
    """A phone carrier this server takes webhooks for (a browser has none)."""
    if carrier not in CARRIERS or not carrier_available(services, carrier):
        raise NotFound("carrier", carrier.value, field="carrier")
    return carrier


AvailableCarrier = Annotated[CarrierName, Depends(available_carrier)]


@router.get("/telephony/{carrier}/inbound")
@router.post("/telephony/{carrier}/inbound")
async def inbound(carrier: AvailableCarrier, request: Request, services: ServicesDep) -> Response:
    """A call rings: answer with the carrier's markup (TwiML, XML, JSON).

    GET too: Exotel's applets fetch their dynamic URL that way, the call in the query string.
    """
    markup = await answer_inbound(services, carrier, await webhook_request(request, services))
    return Response(markup.body, media_type=markup.media_type)


@router.post("/telephony/{carrier}/status")
async def status_callback(
    carrier: AvailableCarrier, request: Request, services: ServicesDep
) -> Response:
    """Carrier status updates: they move outbound calls that have not been answered yet.

    The call is found by carrier and carrier call id, and changed only if the request is
    signed for that call's own workspace: one workspace's signature never moves another's.
    """
    webhook = await webhook_request(request, services)
    update = carrier_class(carrier).parse_status_callback(webhook)
    async with services.sessions() as session:
        candidates = list(
            await session.scalars(
                select(Call).where(
                    Call.carrier == carrier.value, Call.carrier_call_id == update.carrier_call_id
                )
            )
        )
    if not candidates:
        return Response(status_code=204)
    signed_for = [
        call for call in candidates if await _signed_for(services, carrier, call, webhook)
    ]
    if not signed_for:
        raise Forbidden("the status callback is not signed for the call's workspace")
    for call in signed_for:
        await apply_status(services, call, update)
    return Response(status_code=204)


@router.get("/telephony/{carrier}/answer/{call_id}")
@router.post("/telephony/{carrier}/answer/{call_id}")
async def answer_outbound_call(
    carrier: AvailableCarrier, call_id: str, request: Request, services: ServicesDep
) -> Response:
    """The callee of one of our outbound calls answered: the carrier asks what to do."""
    call, endpoint, update = await _outbound_callback(services, carrier, call_id, request)
    markup = await answer_outbound(
        services, endpoint, call, update.carrier_call_id, update.answered_by
    )
    return Response(markup.body, media_type=markup.media_type)


@router.post("/telephony/{carrier}/status/{call_id}")
async def outbound_status_callback(
    carrier: AvailableCarrier, call_id: str, request: Request, services: ServicesDep
) -> Response:
    """Status updates for one of our outbound calls, at the URL made for it when placed."""
    call, _, update = await _outbound_callback(services, carrier, call_id, request)
    await apply_status(services, call, update)
    return Response(status_code=204)


async def _outbound_callback(
    services: Services, name: CarrierName, call_id: str, request: Request
) -> tuple[Call, Carrier, StatusUpdate]:
    """A callback at the URL made for one outbound call: the call must be ours on this
    carrier, the request signed for its workspace, and about that very carrier call."""
    webhook = await webhook_request(request, services)
    call = await outbound_call(services, name, call_id)
    carrier = await carrier_for(services, name, call.workspace_id)
    await verify_carrier_webhook(services, carrier, call.workspace_id, webhook)
    update = carrier.parse_status_callback(webhook)
    if call.carrier_call_id and update.carrier_call_id != call.carrier_call_id:
        raise Conflict("the callback names another carrier call", field="CallSid")
    return call, carrier, update


async def _signed_for(
    services: Services, name: CarrierName, call: Call, webhook: WebhookRequest
) -> bool:
    try:
        carrier = await carrier_for(services, name, call.workspace_id)
        await verify_carrier_webhook(services, carrier, call.workspace_id, webhook)
    except Forbidden:
        return False
    return True


@router.post("/telephony/vobiz/transfer")
async def vobiz_transfer(request: Request, services: ServicesDep) -> Response:
    """Vobiz fetches this when a live call is transferred: answer with a <Dial> to ``?to=``.

    Only for one of our own live calls, only signed with that call's workspace's token, and
    only to the number our transfer request named (the URL carries our own token for it).
    """
    webhook = await webhook_request(request, services)
    carrier_call_id = webhook.form.get("CallUUID", "")
    async with services.sessions() as session:
        call = await session.scalar(
            select(Call).where(
                Call.carrier == CarrierName.VOBIZ.value, Call.carrier_call_id == carrier_call_id
            )
        )
    if call is None or call.status is not CallStatus.IN_PROGRESS:
        raise NotFound("call", carrier_call_id)
    carrier = await carrier_for(services, CarrierName.VOBIZ, call.workspace_id)
    await verify_carrier_webhook(services, carrier, call.workspace_id, webhook)
    to = request.query_params.get("to", "")
    if not to:
        raise InvalidInput("no number to transfer to", field="to")
    token = request.query_params.get(TRANSFER_TOKEN, "")
    try:
        check_transfer_token(services.settings.encryption_key, token, carrier_call_id, to)
    except Unauthenticated as exc:
        log.warning("refused a vobiz transfer of %s: %s", call.id, exc.message)
        raise Forbidden(f"the transfer URL is not ours: {exc.message}", field="to") from exc
    assert isinstance(carrier, VobizCarrier)
    markup = carrier.transfer_markup(to)
    return Response(markup.body, media_type=markup.media_type)


@router.websocket("/media/{carrier}/{call_id}")
async def media(websocket: WebSocket, carrier: CarrierName, call_id: str) -> None:
    services: Services = websocket.app.state.services
    if not carrier_available(services, carrier):
        await websocket.send_denial_response(Response(status_code=404))
        return
    await serve_media(services, websocket, carrier, call_id)
