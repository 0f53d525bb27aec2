"""The browser phone: calls from a web page, over our own media socket.

There is no carrier in between, so no webhooks: the page asks our API for a
call, gets the media URL and a short-lived token, opens the socket and sends
``{"type":"start","token":"..."}`` first. The token is an HMAC-SHA256 over a
compact JSON payload (workspace, agent, expiry), base64url-encoded, so the
socket can be trusted without a database lookup or a session cookie.
Audio is PCM16 16 kHz both ways (``BrowserFrameSerializer``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import time
import uuid
from collections.abc import Mapping

from switchboard.errors import ConfigurationError, InvalidInput, Unauthenticated
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

log = logging.getLogger(__name__)

NO_WEBHOOKS = "browsers start calls through the API, not through a carrier webhook"


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, payload: str) -> bytes:
    if not secret:
        raise ConfigurationError("the browser token secret is empty")
    return hmac.new(secret, payload.encode("ascii"), hashlib.sha256).digest()


def issue_browser_token(
    secret: bytes,
    workspace_id: str,
    agent_id: str,
    ttl_seconds: int = 60,
    *,
    now: float | None = None,
) -> str:
    """A token letting one browser open one call to ``agent_id`` for ``ttl_seconds``."""
    issued = time.time() if now is None else now
    claims = {"w": workspace_id, "a": agent_id, "exp": int(issued + ttl_seconds)}
    payload = _b64encode(json.dumps(claims, separators=(",", ":")).encode())
    return f"{payload}.{_b64encode(_mac(secret, payload))}"


def read_browser_token(secret: bytes, token: str, now: float) -> tuple[str, str]:
    """``(workspace_id, agent_id)`` from a token; ``Unauthenticated`` if expired or altered."""
    payload, _, signature = token.partition(".")
    try:
        offered = _b64decode(signature)
        valid = payload.isascii() and hmac.compare_digest(offered, _mac(secret, payload))
    except (binascii.Error, ValueError):
        valid = False
    if not valid:
        raise Unauthenticated("the browser call token is not valid")
    try:
        claims = json.loads(_b64decode(payload))
        workspace_id, agent_id, expires = claims["w"], claims["a"], claims["exp"]
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise Unauthenticated("the browser call token is not valid") from exc
    if not isinstance(workspace_id, str) or not isinstance(agent_id, str):
        raise Unauthenticated("the browser call token is not valid")
    if not isinstance(expires, int) or now >= expires:
        raise Unauthenticated("the browser call token has expired")
    return workspace_id, agent_id


class BrowserCarrier(Carrier):
    """A web page with a microphone: no webhooks, no REST, PCM16 16 kHz."""

    name = CarrierName.BROWSER
    sample_rate = BrowserFrameSerializer.SAMPLE_RATE

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
        """The page's opening ``{"type":"start","token":...}``; the token is checked by the
        caller with ``read_browser_token`` and travels in ``custom_parameters``."""
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
            custom_parameters={"token": token},
            sample_rate=self.sample_rate,
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
