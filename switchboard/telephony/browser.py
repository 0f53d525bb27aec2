"""The browser phone: calls from a web page, over our own media socket.

There is no carrier in between, so no webhooks: the page asks our API for a
call, gets the media URL and the call's short-lived stream token
(``switchboard.telephony.streams``), opens the socket and sends
``{"type":"start","token":"..."}`` first. Audio is PCM16 16 kHz both ways
(``BrowserFrameSerializer``).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping

from switchboard.errors import InvalidInput
from switchboard.telephony.carrier import (
    Carrier,
    InboundCall,
    Markup,
    PlaceCallRequest,
    StatusUpdate,
    StreamStart,
    WebhookRequest,
)
from switchboard.telephony.credentials import CarrierName
from switchboard.telephony.serializers import BrowserFrameSerializer
from switchboard.telephony.streams import STREAM_TOKEN

log = logging.getLogger(__name__)

PCM16 = "audio/l16"  # what the page sends: 16-bit little-endian PCM, 16 kHz, mono
NO_WEBHOOKS = "browsers start calls through the API, not through a carrier webhook"


class BrowserCarrier(Carrier):
    """A web page with a microphone: no webhooks, no REST, PCM16 16 kHz."""

    name = CarrierName.BROWSER
    sample_rate = BrowserFrameSerializer.SAMPLE_RATE
    stream_formats = frozenset({(PCM16, BrowserFrameSerializer.SAMPLE_RATE)})

    def verify_webhook(self, request: WebhookRequest) -> None:
        raise InvalidInput(NO_WEBHOOKS, field="carrier")

    def parse_inbound(self, request: WebhookRequest) -> InboundCall:
        raise InvalidInput(NO_WEBHOOKS, field="carrier")

    def answer_markup(self, media_url: str, parameters: Mapping[str, str]) -> Markup:
        """What the API hands the page: where to connect, and the parameters."""
        body = {"media_url": media_url, "parameters": dict(parameters)}
        return Markup(json.dumps(body), media_type="application/json")

    def say_and_hang_up_markup(self, message: str) -> Markup:
        """The page shows (or speaks) ``message`` itself and does not connect."""
        return Markup(json.dumps({"type": "hangup", "message": message}), "application/json")

    def parse_stream_start(self, message: Mapping[str, object]) -> StreamStart | None:
        """The page's opening ``{"type":"start","token":...}``; the token travels in
        ``custom_parameters`` and is checked like every carrier's stream token."""
        if message.get("type") != "start":
            return None
        token = message.get("token")
        if not isinstance(token, str) or not token:
            log.warning("browser media: skipped a start message without a token")
            return None
        stream_id = message.get("stream_id")
        return StreamStart(
            stream_id=stream_id if isinstance(stream_id, str) and stream_id else uuid.uuid4().hex,
            carrier_call_id=None,
            custom_parameters={STREAM_TOKEN: token},
            sample_rate=self.sample_rate,
            encoding=PCM16,
        )

    def serializer(self, start: StreamStart) -> BrowserFrameSerializer:
        return BrowserFrameSerializer()

    def parse_status_callback(self, request: WebhookRequest) -> StatusUpdate:
        raise InvalidInput(NO_WEBHOOKS, field="carrier")

    async def place_call(self, request: PlaceCallRequest) -> str:
        raise InvalidInput("a browser cannot be dialled: the page calls in", field="carrier")

    async def transfer(self, carrier_call_id: str, to_number: str) -> None:
        raise InvalidInput("a browser call cannot be transferred to a number", field="carrier")

    async def hangup(self, carrier_call_id: str) -> None:
        """Nothing to ask anyone: closing the media socket ends a browser call."""
