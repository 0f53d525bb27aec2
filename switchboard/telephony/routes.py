"""Carrier-facing endpoints: webhooks under /telephony, media sockets under /media."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, WebSocket
from sqlalchemy import select

from switchboard.api.deps import ServicesDep
from switchboard.calls import service as calls
from switchboard.db.models import Call, CallStatus
from switchboard.errors import Forbidden, InvalidInput, NotFound, Unauthenticated
from switchboard.services import Services
from switchboard.telephony.carrier import CallOutcome, WebhookRequest
from switchboard.telephony.credentials import CarrierName
from switchboard.telephony.inbound import answer_inbound, carrier_for, verify_carrier_webhook
from switchboard.telephony.registry import create_carrier
from switchboard.telephony.vobiz import TRANSFER_TOKEN, VobizCarrier, check_transfer_token
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


def carrier_available(services: Services, carrier: CarrierName) -> bool:
    """The simulator takes unsigned webhooks: it exists only where it is enabled."""
    return carrier is not CarrierName.SIMULATOR or services.settings.simulator_enabled


def available_carrier(carrier: CarrierName, services: ServicesDep) -> CarrierName:
    if not carrier_available(services, carrier):
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
    update = create_carrier(carrier, None, services.http).parse_status_callback(webhook)
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
    new = OUTCOME_STATUS.get(update.outcome)
    if new is not None and new is not CallStatus.IN_PROGRESS:
        async with services.sessions() as session:
            for call in signed_for:
                await calls.move(session, call.id, new, end_reason=update.outcome.value)
    return Response(status_code=204)


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
