"""Carrier-facing endpoints: webhooks under /telephony, media sockets under /media."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request, Response, WebSocket
from sqlalchemy import select

from switchboard.api.deps import ServicesDep
from switchboard.calls import service as calls
from switchboard.db.models import Call, CallStatus
from switchboard.errors import InvalidInput, NotFound
from switchboard.services import Services
from switchboard.telephony.carrier import CallOutcome, WebhookRequest
from switchboard.telephony.credentials import CarrierName
from switchboard.telephony.inbound import answer_inbound, carrier_for
from switchboard.telephony.registry import create_carrier
from switchboard.telephony.vobiz import VobizCarrier
from switchboard.voice.media import serve_media

log = logging.getLogger(__name__)
router = APIRouter(tags=["telephony"])

OUTCOME_STATUS = {
    CallOutcome.ANSWERED: CallStatus.IN_PROGRESS,
    CallOutcome.BUSY: CallStatus.BUSY,
    CallOutcome.NO_ANSWER: CallStatus.NO_ANSWER,
    CallOutcome.FAILED: CallStatus.FAILED,
    CallOutcome.CANCELED: CallStatus.CANCELED,
}


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


@router.get("/telephony/{carrier}/inbound")
@router.post("/telephony/{carrier}/inbound")
async def inbound(carrier: CarrierName, request: Request, services: ServicesDep) -> Response:
    """A call rings: answer with the carrier's markup (TwiML, XML, JSON).

    GET too: Exotel's applets fetch their dynamic URL that way, the call in the query string.
    """
    markup = await answer_inbound(services, carrier, await webhook_request(request, services))
    return Response(markup.body, media_type=markup.media_type)


@router.post("/telephony/{carrier}/status")
async def status_callback(
    carrier: CarrierName, request: Request, services: ServicesDep
) -> Response:
    """Carrier status updates: they move outbound calls that have not been answered yet."""
    webhook = await webhook_request(request, services)
    update = create_carrier(carrier, None, services.http).parse_status_callback(webhook)
    async with services.sessions() as session:
        call = await session.scalar(
            select(Call).where(Call.carrier_call_id == update.carrier_call_id)
        )
    if call is not None:
        (await carrier_for(services, carrier, call.workspace_id)).verify_webhook(webhook)
        new = OUTCOME_STATUS.get(update.outcome)
        if new is not None and new is not CallStatus.IN_PROGRESS:
            async with services.sessions() as session:
                await calls.move(session, call.id, new, end_reason=update.outcome.value)
    return Response(status_code=204)


@router.post("/telephony/vobiz/transfer")
async def vobiz_transfer(request: Request, services: ServicesDep) -> Response:
    """Vobiz fetches this when a live call is transferred: answer with a <Dial> to ``?to=``.

    Only for one of our own calls, and only signed with that call's workspace's token.
    """
    webhook = await webhook_request(request, services)
    carrier_call_id = webhook.form.get("CallUUID", "")
    async with services.sessions() as session:
        call = await session.scalar(select(Call).where(Call.carrier_call_id == carrier_call_id))
    if call is None or call.carrier != CarrierName.VOBIZ.value:
        raise NotFound("call", carrier_call_id)
    carrier = await carrier_for(services, CarrierName.VOBIZ, call.workspace_id)
    carrier.verify_webhook(webhook)
    to = request.query_params.get("to", "")
    if not to:
        raise InvalidInput("no number to transfer to", field="to")
    assert isinstance(carrier, VobizCarrier)
    markup = carrier.transfer_markup(to)
    return Response(markup.body, media_type=markup.media_type)


@router.websocket("/media/{carrier}/{call_id}")
async def media(websocket: WebSocket, carrier: CarrierName, call_id: str) -> None:
    services: Services = websocket.app.state.services
    await serve_media(services, websocket, carrier, call_id)
