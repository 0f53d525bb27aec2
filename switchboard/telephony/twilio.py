"""Twilio: signed webhooks, TwiML, Media Streams and the Calls REST API.

Webhooks are checked with the ``twilio`` package's ``RequestValidator``
against the public URL Twilio called (``X-Twilio-Signature``; JSON bodies are
covered by the ``bodySHA256`` query parameter). TwiML is built with its
``VoiceResponse`` so every value is escaped. REST calls use our own
``httpx`` client, with HTTP basic auth (account SID, auth token).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import ClassVar
from urllib.parse import parse_qs, urlsplit

import httpx
from pydantic import Field, SecretStr
from twilio.request_validator import (  # type: ignore[import-untyped]
    RequestValidator,
    get_signature_algorithm,
)
from twilio.twiml.voice_response import VoiceResponse  # type: ignore[import-untyped]

from switchboard.errors import (
    ConfigurationError,
    ExternalError,
    ExternalStatusError,
    Forbidden,
    InvalidInput,
)
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
)
from switchboard.telephony.credentials import CarrierCredentials, CarrierName
from switchboard.telephony.serializers import RobustTwilioSerializer

log = logging.getLogger(__name__)

TWILIO_API = "https://api.twilio.com"


class TwilioCredentials(CarrierCredentials):
    account_sid: str = Field(pattern=r"^AC[0-9a-fA-F]{32}$")
    auth_token: SecretStr = Field(min_length=16, max_length=128)


CALL_STATUSES: dict[str, CallOutcome] = {
    # Twilio has no "not answered yet" state of ours for queued or initiated: both are ringing.
    "queued": CallOutcome.RINGING,
    "initiated": CallOutcome.RINGING,
    "ringing": CallOutcome.RINGING,
    "in-progress": CallOutcome.ANSWERED,
    "completed": CallOutcome.COMPLETED,
    "busy": CallOutcome.BUSY,
    "failed": CallOutcome.FAILED,
    "no-answer": CallOutcome.NO_ANSWER,
    "canceled": CallOutcome.CANCELED,
}
_CALL_FIELDS = ("CallSid", "From", "To")


def stream_twiml(media_url: str, parameters: Mapping[str, str]) -> str:
    """``<Connect><Stream>``: a bidirectional media stream to ``media_url``."""
    if urlsplit(media_url).scheme not in ("ws", "wss"):
        # Twilio itself rejects anything but wss:// (error 31922); ws:// is for the simulator.
        raise InvalidInput("a media stream URL must be ws:// or wss://", field="media_url")
    response = VoiceResponse()
    stream = response.connect().stream(url=media_url)
    for name, value in parameters.items():
        stream.parameter(name=name, value=value)
    return str(response.to_xml())


def say_and_hang_up_twiml(message: str) -> str:
    response = VoiceResponse()
    response.say(message)
    response.hangup()
    return str(response.to_xml())


def dial_twiml(number: str) -> str:
    response = VoiceResponse()
    response.dial(number)
    return str(response.to_xml(xml_declaration=False))


TWILIO_START = StartFields(
    "streamSid", "callSid", "customParameters", "mediaFormat", "sampleRate", "encoding"
)
MULAW_8K = ("audio/x-mulaw", 8000)


def parse_media_stream_start(message: Mapping[str, object]) -> StreamStart | None:
    """A Media Streams ``start`` message in our terms (None for ``connected`` and the rest)."""
    return stream_start_from(message, TWILIO_START, "twilio", MULAW_8K)


def signed_fields(request: WebhookRequest) -> dict[str, str]:
    """The fields Twilio signed: a POST's form, or a GET's query string (part of the signed
    URL). Never a JSON body or a POST's query string merged over the form: what we act on
    must be what the signature covers."""
    if request.method.upper() == "GET":
        return {k: v[-1] for k, v in parse_qs(urlsplit(request.url).query).items()}
    return dict(request.form)


def parse_twilio_inbound(request: WebhookRequest) -> InboundCall:
    fields = signed_fields(request)
    call_sid, from_number, to_number = (required_field(fields, name) for name in _CALL_FIELDS)
    extra = {k: v for k, v in fields.items() if k not in _CALL_FIELDS}
    return InboundCall(call_sid, from_number, to_number, extra)


def parse_twilio_status(request: WebhookRequest) -> StatusUpdate:
    fields = signed_fields(request)
    status = required_field(fields, "CallStatus")
    outcome = CALL_STATUSES.get(status)
    if outcome is None:
        raise InvalidInput(f"unknown CallStatus {status[:32]!r}", field="CallStatus")
    duration = fields.get("CallDuration")
    return StatusUpdate(
        carrier_call_id=required_field(fields, "CallSid"),
        outcome=outcome,
        answered_by=fields.get("AnsweredBy") or None,
        duration_seconds=float(duration) if duration and duration.isdigit() else None,
    )


class TwilioCarrier(Carrier):
    """Twilio Programmable Voice with Media Streams (µ-law 8 kHz)."""

    name = CarrierName.TWILIO
    credentials_model: ClassVar[type[CarrierCredentials] | None] = TwilioCredentials

    def __init__(
        self,
        credentials: CarrierCredentials | None,
        http: httpx.AsyncClient,
        *,
        api_base_url: str = TWILIO_API,
    ) -> None:
        if credentials is not None and not isinstance(credentials, TwilioCredentials):
            raise ConfigurationError(f"the {self.name} carrier takes Twilio credentials")
        super().__init__(credentials, http)
        self.api_base_url = api_base_url.rstrip("/")

    @property
    def _twilio(self) -> TwilioCredentials:
        """The account, for the REST API; parsing webhooks needs none."""
        if not isinstance(self.credentials, TwilioCredentials):
            raise ConfigurationError("no Twilio account is configured for this workspace")
        return self.credentials

    def verify_webhook(self, request: WebhookRequest) -> None:
        if self.credentials is None:
            raise Forbidden("no Twilio account is configured, so the request cannot be verified")
        signature = request.headers.get("x-twilio-signature")
        if not signature:
            raise Forbidden("the request has no X-Twilio-Signature header")
        params: dict[str, str] | str = dict(request.form)
        if "bodySHA256" in parse_qs(urlsplit(request.url).query):
            try:
                params = request.body.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise Forbidden("the signed JSON body is not UTF-8") from exc
        algorithm = get_signature_algorithm(
            request.headers.get("x-twilio-webhooks-signature-settings")
        )
        validator = RequestValidator(self._twilio.auth_token.get_secret_value())
        if not validator.validate(request.url, params, signature, algorithm):
            raise Forbidden(
                "X-Twilio-Signature does not match this request: check that the public URL"
                " the webhook was configured with is the one the server checks against"
            )

    @classmethod
    def parse_inbound(cls, request: WebhookRequest) -> InboundCall:
        return parse_twilio_inbound(request)

    def answer_markup(self, media_url: str, parameters: Mapping[str, str]) -> Markup:
        return Markup(stream_twiml(media_url, parameters))

    @classmethod
    def say_and_hang_up_markup(cls, message: str) -> Markup:
        return Markup(say_and_hang_up_twiml(message))

    @classmethod
    def parse_stream_start(cls, message: Mapping[str, object]) -> StreamStart | None:
        return parse_media_stream_start(message)

    def serializer(self, start: StreamStart) -> RobustTwilioSerializer:
        return RobustTwilioSerializer(start.stream_id, start.carrier_call_id)

    @classmethod
    def parse_status_callback(cls, request: WebhookRequest) -> StatusUpdate:
        return parse_twilio_status(request)

    async def place_call(self, request: PlaceCallRequest) -> str:
        form: dict[str, str | list[str]] = {
            "To": request.to_number,
            "From": request.from_number,
            "Url": request.answer_url,
            "Method": "POST",
            "StatusCallback": request.status_url,
            "StatusCallbackMethod": "POST",
            "StatusCallbackEvent": ["initiated", "ringing", "answered", "completed"],
            "Timeout": str(request.timeout_seconds),
        }
        if request.machine_detection != "off":
            # Leaving a message needs the greeting's end (the beep), not just who answered.
            detect = (
                "DetectMessageEnd" if request.machine_detection == "leave_message" else "Enable"
            )
            form["MachineDetection"] = detect
        response = await self._post(f"{self._calls_url()}.json", form)
        call_sid = response_json(response, "twilio").get("sid")
        if not isinstance(call_sid, str) or not call_sid:
            raise ExternalError("twilio API answered without the new call's sid")
        return call_sid

    async def transfer(self, carrier_call_id: str, to_number: str) -> None:
        await self._post(self._call_url(carrier_call_id), {"Twiml": dial_twiml(to_number)})

    async def hangup(self, carrier_call_id: str) -> None:
        try:
            await self._post(self._call_url(carrier_call_id), {"Status": "completed"})
        except ExternalStatusError as exc:
            if exc.status != 404:  # 404: the call is already gone, which is what we wanted
                raise

    def _calls_url(self) -> str:
        sid = path_segment(self._twilio.account_sid)
        return f"{self.api_base_url}/2010-04-01/Accounts/{sid}/Calls"

    def _call_url(self, call_sid: str) -> str:
        return f"{self._calls_url()}/{path_segment(call_sid)}.json"

    async def _post(self, url: str, form: Mapping[str, str | list[str]]) -> httpx.Response:
        auth = (self._twilio.account_sid, self._twilio.auth_token.get_secret_value())
        return await call_carrier_api(self.http, "twilio", "POST", url, auth=auth, data=form)
