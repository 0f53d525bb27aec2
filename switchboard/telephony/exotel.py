"""Exotel: AgentStream (the Voicebot applet) and the v1 Calls API.

Calls reach us through a flow built in Exotel's dashboard (App Bazaar):
its Voicebot applet is given our inbound webhook as an "HTTPS endpoint that
dynamically returns the WSS URL" (developer.exotel.com/docs/agentstream/
stream-voicebot-applet). Exotel requests it with the call's ``CallSid``,
``From``/``CallFrom`` and ``To``/``CallTo``, and we answer JSON
``{"url": "wss://..."}``; custom parameters ride in the URL's query string
(at most 3, 256 characters), and come back in the start message's
``custom_parameters``.

Exotel does not sign its requests. Every URL we give it (the applet's
endpoint, status callbacks) carries a per-workspace secret, ``?token=...``,
the one thing every Exotel callback preserves; HTTP basic auth with the
secret as the password is accepted too, for endpoints configured with
Exotel's Basic Auth option. Both are compared in constant time.

Exotel's v1 API has no transfer or hang-up for a Voicebot call: the call
leaves the applet when our media socket closes, and the flow's next applet
(a Hangup, or a Connect to a person) decides what happens next.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
from collections.abc import Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
from pydantic import Field, SecretStr

from switchboard.errors import ConfigurationError, ExternalError, Forbidden, InvalidInput
from switchboard.telephony.carrier import (
    CallOutcome,
    Carrier,
    InboundCall,
    Markup,
    PlaceCallRequest,
    StartFields,
    StatusUpdate,
    StreamStart,
    WebhookRequest,
    stream_start_from,
)
from switchboard.telephony.carrier_http import (
    call_carrier_api,
    path_segment,
    required_field,
    response_json,
    webhook_fields,
    with_query,
)
from switchboard.telephony.credentials import CarrierCredentials, CarrierName
from switchboard.telephony.serializers import RobustExotelSerializer

log = logging.getLogger(__name__)

TOKEN_PARAMETER = "token"
EXOTEL_START = StartFields(
    "stream_sid", "call_sid", "custom_parameters", "media_format", "sample_rate", "encoding"
)
PCM16 = "audio/x-raw"
# AgentStream's rates (the Voicebot applet's setting): raw 16-bit PCM at 8, 16 or 24 kHz.
EXOTEL_FORMATS = frozenset({(PCM16, 8000), (PCM16, 16000), (PCM16, 24000)})
MAX_STREAM_PARAMETERS = 3
MAX_STREAM_PARAMETER_CHARS = 256

CALL_STATUSES: dict[str, CallOutcome] = {
    "queued": CallOutcome.RINGING,
    "ringing": CallOutcome.RINGING,
    "in-progress": CallOutcome.ANSWERED,
    "completed": CallOutcome.COMPLETED,
    "busy": CallOutcome.BUSY,
    "failed": CallOutcome.FAILED,
    "no-answer": CallOutcome.NO_ANSWER,
    "canceled": CallOutcome.CANCELED,
}


class ExotelCredentials(CarrierCredentials):
    account_sid: str = Field(min_length=1, max_length=64)
    api_key: str = Field(min_length=1, max_length=128)
    api_token: SecretStr = Field(min_length=1, max_length=128)
    subdomain: str = Field(default="api.exotel.com", pattern=r"^[a-z0-9.-]+\.exotel\.(com|in)$")
    # Exotel does not sign webhooks: our URLs carry this secret as ?token= instead. Without it
    # every Exotel webhook is refused.
    webhook_secret: SecretStr | None = Field(default=None, min_length=16, max_length=128)
    flow_url: str | None = Field(
        default=None, max_length=500, description="flow for outbound calls"
    )


def _basic_password(authorization: str | None) -> str | None:
    if not authorization or not authorization.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    _, separator, password = decoded.partition(":")
    return password if separator else None


class ExotelCarrier(Carrier):
    """Exotel's Voicebot applet: PCM16 8 kHz over AgentStream."""

    name = CarrierName.EXOTEL
    stream_formats = EXOTEL_FORMATS
    buffers_audio = True  # AgentStream plays only whole chunks of at least 100 ms
    credentials_model = ExotelCredentials
    national_region = "IN"

    def __init__(
        self,
        credentials: CarrierCredentials | None,
        http: httpx.AsyncClient,
        *,
        webhook_secret: str | None = None,
        flow_url: str | None = None,
        api_base_url: str | None = None,
    ) -> None:
        """``flow_url`` is the flow (``http://my.exotel.com/{sid}/exoml/start_voice/{app}``)
        an outbound call runs. Both it and ``webhook_secret`` default to fields of the
        same names on the account, once ``ExotelCredentials`` has them."""
        if credentials is not None and not isinstance(credentials, ExotelCredentials):
            raise ConfigurationError("the exotel carrier takes Exotel credentials")
        super().__init__(credentials, http)
        stored = getattr(credentials, "webhook_secret", None)
        if stored is not None and hasattr(stored, "get_secret_value"):
            stored = stored.get_secret_value()
        self.webhook_secret: str | None = webhook_secret or stored or None
        self.flow_url: str | None = flow_url or getattr(credentials, "flow_url", None)
        self.api_base_url = api_base_url.rstrip("/") if api_base_url else None

    @property
    def _exotel(self) -> ExotelCredentials:
        if not isinstance(self.credentials, ExotelCredentials):
            raise ConfigurationError("no Exotel account is configured for this workspace")
        return self.credentials

    def webhook_url(self, url: str) -> str:
        """``url`` carrying the webhook secret, as every URL given to Exotel must."""
        if not self.webhook_secret:
            raise ConfigurationError("no Exotel webhook secret is configured")
        return with_query(url, {TOKEN_PARAMETER: self.webhook_secret})

    def verify_webhook(self, request: WebhookRequest) -> None:
        if not self.webhook_secret:
            raise Forbidden("no Exotel webhook secret is configured, so nothing can be verified")
        query = dict(parse_qsl(urlsplit(request.url).query))
        authorization = request.headers.get("authorization")
        offered = query.get(TOKEN_PARAMETER) or _basic_password(authorization)
        if offered is None:
            raise Forbidden("the request carries no ?token= and no basic auth")
        if not hmac.compare_digest(offered.encode(), self.webhook_secret.encode()):
            raise Forbidden("the request's token is not this workspace's Exotel webhook secret")

    @classmethod
    def parse_inbound(cls, request: WebhookRequest) -> InboundCall:
        fields = webhook_fields(request)
        parameters = {
            name: fields[name]
            for name in ("Direction", "CustomField", "DialWhomNumber", "flow_id")
            if fields.get(name)
        }
        return InboundCall(
            carrier_call_id=required_field(fields, "CallSid"),
            from_number=required_field(fields, "From", "CallFrom"),
            to_number=required_field(fields, "To", "CallTo"),
            parameters=parameters,
        )

    def answer_markup(self, media_url: str, parameters: Mapping[str, str]) -> Markup:
        """The Voicebot applet's dynamic-endpoint answer: ``{"url": "wss://...?k=v"}``."""
        if urlsplit(media_url).scheme not in ("ws", "wss"):
            raise InvalidInput("a media stream URL must be ws:// or wss://", field="media_url")
        if len(parameters) > MAX_STREAM_PARAMETERS:
            raise InvalidInput("Exotel passes at most 3 stream parameters", field="parameters")
        if len(urlencode(dict(parameters))) > MAX_STREAM_PARAMETER_CHARS:
            raise InvalidInput("Exotel's stream parameters are too long", field="parameters")
        url = with_query(media_url, parameters) if parameters else media_url
        return Markup(json.dumps({"url": url}), media_type="application/json")

    @classmethod
    def say_and_hang_up_markup(cls, message: str) -> Markup:
        """Plain text, as Exotel's Greeting applet reads a dynamic URL.

        The Voicebot applet cannot speak: given this instead of a URL it fails,
        and the flow moves on to its next applet (a Hangup).
        """
        return Markup(message, media_type="text/plain")

    @classmethod
    def parse_stream_start(cls, message: Mapping[str, object]) -> StreamStart | None:
        return stream_start_from(message, EXOTEL_START, "exotel", (PCM16, 8000))

    def serializer(self, start: StreamStart) -> RobustExotelSerializer:
        return RobustExotelSerializer(
            start.stream_id, start.carrier_call_id, sample_rate=start.sample_rate
        )

    @classmethod
    def parse_status_callback(cls, request: WebhookRequest) -> StatusUpdate:
        fields = webhook_fields(request)
        event = fields.get("EventType", "").lower()
        status = required_field(fields, "Status", "CallStatus")
        outcome = CallOutcome.ANSWERED if event == "answered" else CALL_STATUSES.get(status)
        if outcome is None:
            raise InvalidInput(f"unknown Exotel Status {status[:32]!r}", field="Status")
        duration = fields.get("ConversationDuration") or fields.get("Duration")
        return StatusUpdate(
            carrier_call_id=required_field(fields, "CallSid"),
            outcome=outcome,
            answered_by=fields.get("AnsweredBy") or None,
            duration_seconds=float(duration) if duration and duration.isdigit() else None,
        )

    async def place_call(self, request: PlaceCallRequest) -> str:
        """Ring ``to_number`` and run the configured flow when it answers.

        Exotel calls ``From`` first, so the callee goes there and our number is
        the ``CallerId``. The flow's Voicebot applet then asks our inbound URL
        for the socket, with the ``CallSid`` returned here. Exotel offers no
        machine detection on this API; ``answer_url`` is not used (the flow is).
        """
        if not self.flow_url:
            raise ConfigurationError("Exotel outbound calls need the flow URL of a Voicebot flow")
        form = {
            "From": request.to_number,
            "CallerId": request.from_number,
            "Url": self.flow_url,
            "CallType": "trans",
            "TimeOut": str(request.timeout_seconds),
            "StatusCallback": self.webhook_url(request.status_url),
            "StatusCallbackEvents[0]": "terminal",
            "StatusCallbackEvents[1]": "answered",
        }
        url = self._calls_url("connect.json")
        response = await call_carrier_api(
            self.http, "exotel", "POST", url, auth=self._auth(), data=form
        )
        call = response_json(response, "exotel").get("Call")
        call_sid = call.get("Sid") if isinstance(call, dict) else None
        if not isinstance(call_sid, str) or not call_sid:
            raise ExternalError("exotel API answered without the new call's Sid")
        return call_sid

    async def transfer(self, carrier_call_id: str, to_number: str) -> None:
        raise InvalidInput(
            "Exotel cannot transfer a Voicebot call over its API: end the stream and let"
            " the flow's next applet (a Connect) reach the person",
            field="carrier",
        )

    async def hangup(self, carrier_call_id: str) -> None:
        """Nothing to ask Exotel: the call leaves the Voicebot applet when our socket closes."""
        log.debug("exotel call %s ends when its media socket closes", carrier_call_id)

    def _calls_url(self, action: str) -> str:
        base = self.api_base_url or f"https://{self._exotel.subdomain}"
        return f"{base}/v1/Accounts/{path_segment(self._exotel.account_sid)}/Calls/{action}"

    def _auth(self) -> tuple[str, str]:
        return self._exotel.api_key, self._exotel.api_token.get_secret_value()
