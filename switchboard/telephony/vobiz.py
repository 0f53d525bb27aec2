"""Vobiz: Plivo-style XML and audio streams, Vobiz's own signatures and REST API.

Vobiz signs every callback with the account's auth token
(vobiz.ai/docs/concepts/validating-callbacks): ``X-Vobiz-Signature-V3`` is
base64(HMAC-SHA256(token, base URL + "." + nonce)), the base URL being the
URL it called without the query string and the nonce in
``X-Vobiz-Signature-V3-Nonce``; V2 is the same without the dot. The REST API
(``https://api.vobiz.ai/api/v1/Account/{auth_id}/...``) takes ``X-Auth-ID``
and ``X-Auth-Token`` headers and JSON bodies.

The answer is ``<Stream bidirectional keepCallAlive contentType=µ-law 8k>`` with
the socket URL as its text. The start message comes nested (``start.streamId``,
as Plivo sends it) or flat (``streamId`` at the top level); both are read.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit
from xml.etree import ElementTree

import httpx
from pydantic import Field, SecretStr

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
    StatusUpdate,
    StreamStart,
    WebhookRequest,
    stated_rate,
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
from switchboard.telephony.serializers import RobustPlivoSerializer
from switchboard.telephony.tokens import check_token, issue_token

log = logging.getLogger(__name__)

VOBIZ_API = "https://api.vobiz.ai"
MULAW = "audio/x-mulaw"
CONTENT_TYPE = f"{MULAW};rate=8000"
TRANSFER_TOKEN = "transfer_token"
TRANSFER_TOKEN_SECONDS = 300  # Vobiz fetches the URL as soon as it is asked to transfer
_TRANSFER_PURPOSE = "vobiz-transfer"
_HEADER_SAFE = re.compile(r"^[A-Za-z0-9_.:+-]{1,64}$")

CALL_STATUSES: dict[str, CallOutcome] = {
    "queued": CallOutcome.RINGING,
    "ringing": CallOutcome.RINGING,
    "in-progress": CallOutcome.ANSWERED,
    "completed": CallOutcome.COMPLETED,
    "busy": CallOutcome.BUSY,
    "failed": CallOutcome.FAILED,
    "timeout": CallOutcome.NO_ANSWER,
    "no-answer": CallOutcome.NO_ANSWER,
    "cancel": CallOutcome.CANCELED,
    "canceled": CallOutcome.CANCELED,
}


class VobizCredentials(CarrierCredentials):
    auth_id: str = Field(min_length=1, max_length=64)
    auth_token: SecretStr = Field(min_length=1, max_length=128)


def vobiz_signature(auth_token: str, url: str, nonce: str, *, version: int = 3) -> str:
    """The signature Vobiz sends for a request to ``url`` (V3 by default, or V2)."""
    parts = urlsplit(url)
    base = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    message = f"{base}.{nonce}" if version == 3 else f"{base}{nonce}"
    digest = hmac.new(auth_token.encode(), message.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def issue_transfer_token(secret: bytes, carrier_call_id: str, to_number: str) -> str:
    """Binds a transfer URL to its call and destination: Vobiz signs the URL without its
    query string, so ``?to=`` needs a signature of our own."""
    return issue_token(
        secret, _TRANSFER_PURPOSE, (carrier_call_id, to_number), TRANSFER_TOKEN_SECONDS
    )


def check_transfer_token(secret: bytes, token: str, carrier_call_id: str, to_number: str) -> None:
    """Raise ``Unauthenticated`` unless ``token`` was issued for this call and number."""
    check_token(secret, token, _TRANSFER_PURPOSE, (carrier_call_id, to_number))


def _xml(root: ElementTree.Element) -> str:
    return ElementTree.tostring(root, encoding="unicode", xml_declaration=False)


def dial_xml(number: str) -> str:
    """``<Dial><Number>``: what a transferred call runs."""
    root = ElementTree.Element("Response")
    ElementTree.SubElement(ElementTree.SubElement(root, "Dial"), "Number").text = number
    return _xml(root)


def _signature_headers(headers: Mapping[str, str]) -> tuple[int, str, str] | None:
    """The newest signature version present: (version, signatures, nonce)."""
    for version in (3, 2):
        signatures = headers.get(f"x-vobiz-signature-v{version}")
        nonce = headers.get(f"x-vobiz-signature-v{version}-nonce")
        if signatures and nonce:
            return version, signatures, nonce
    return None


def _extra_headers(raw: object) -> dict[str, str]:
    """``extra_headers`` as a dict, a JSON object or ``k=v,k=v`` text; Plivo's ``X-PH-`` dropped."""
    if isinstance(raw, str):
        text = raw
        try:
            raw = json.loads(text)
        except ValueError:
            pairs = (pair.partition("=") for pair in text.split(",") if "=" in pair)
            raw = {name: value for name, _, value in pairs}
    if not isinstance(raw, Mapping):
        return {}
    return {str(k).removeprefix("X-PH-").strip(): str(v).strip() for k, v in raw.items()}


def _stated_format(start: Mapping[str, object], message: Mapping[str, object]) -> tuple[str, int]:
    """(encoding, rate) from Plivo's nested ``mediaFormat`` or Vobiz's flat
    ``contentType`` (``audio/x-mulaw;rate=8000``); µ-law 8 kHz, as we asked for, when neither."""
    media_format = start.get("mediaFormat")
    if isinstance(media_format, Mapping):
        encoding = media_format.get("encoding", MULAW)
        return (
            encoding if isinstance(encoding, str) else "",
            stated_rate(media_format.get("sampleRate"), 8000),
        )
    content_type = start.get("contentType") or message.get("contentType")
    if isinstance(content_type, str):
        encoding, _, parameters = content_type.partition(";")
        rate = parameters.strip().removeprefix("rate=") if parameters else None
        return encoding.strip(), stated_rate(rate, 8000)
    return MULAW, 8000


class VobizCarrier(Carrier):
    """Vobiz: µ-law 8 kHz audio streams in Plivo's protocol."""

    name = CarrierName.VOBIZ
    credentials_model = VobizCredentials

    def __init__(
        self,
        credentials: CarrierCredentials | None,
        http: httpx.AsyncClient,
        *,
        api_base_url: str = VOBIZ_API,
        transfer_url: str | None = None,
        transfer_secret: bytes | None = None,
    ) -> None:
        """``transfer_url`` is our endpoint that answers ``transfer_markup(to)`` for ``?to=``;
        ``transfer_secret`` signs each such URL for its call and number (Vobiz's own
        signature leaves the query string out)."""
        if credentials is not None and not isinstance(credentials, VobizCredentials):
            raise ConfigurationError("the vobiz carrier takes Vobiz credentials")
        super().__init__(credentials, http)
        self.api_base_url = api_base_url.rstrip("/")
        self.transfer_url = transfer_url
        self.transfer_secret = transfer_secret

    @classmethod
    def options(cls, public_url: str, secret: bytes) -> dict[str, Any]:
        """Transfers fetch our own endpoint, with URLs signed by the server's secret key."""
        return {"transfer_url": f"{public_url}/telephony/vobiz/transfer", "transfer_secret": secret}

    @property
    def _vobiz(self) -> VobizCredentials:
        if not isinstance(self.credentials, VobizCredentials):
            raise ConfigurationError("no Vobiz account is configured for this workspace")
        return self.credentials

    def verify_webhook(self, request: WebhookRequest) -> None:
        if self.credentials is None:
            raise Forbidden("no Vobiz account is configured, so the request cannot be verified")
        found = _signature_headers(request.headers)
        if found is None:
            raise Forbidden("the request has no X-Vobiz-Signature-V3 header and nonce")
        version, signatures, nonce = found
        token = self._vobiz.auth_token.get_secret_value()
        expected = vobiz_signature(token, request.url, nonce, version=version).encode()
        # Plivo-style headers may carry several comma-separated signatures.
        if not any(
            hmac.compare_digest(s.strip().encode(), expected) for s in signatures.split(",")
        ):
            raise Forbidden(f"X-Vobiz-Signature-V{version} does not match this request's URL")

    def replay_nonce(self, request: WebhookRequest) -> str | None:
        """The signature's nonce: Vobiz signs no time, so a nonce may be used only once."""
        found = _signature_headers(request.headers)
        return found[2] if found is not None else None

    @classmethod
    def parse_inbound(cls, request: WebhookRequest) -> InboundCall:
        fields = webhook_fields(request)
        main = ("CallUUID", "From", "To")
        return InboundCall(
            carrier_call_id=required_field(fields, "CallUUID"),
            from_number=required_field(fields, "From"),
            to_number=required_field(fields, "To"),
            parameters={k: v for k, v in fields.items() if k not in main},
        )

    def answer_markup(self, media_url: str, parameters: Mapping[str, str]) -> Markup:
        """``<Stream>`` to ``media_url``; parameters ride in its query string and, when
        they are plain tokens, in ``extraHeaders`` (which the start message echoes)."""
        if urlsplit(media_url).scheme not in ("ws", "wss"):
            raise InvalidInput("a media stream URL must be ws:// or wss://", field="media_url")
        root = ElementTree.Element("Response")
        stream = ElementTree.SubElement(
            root,
            "Stream",
            bidirectional="true",
            keepCallAlive="true",
            contentType=CONTENT_TYPE,
        )
        headers = [f"{k}={v}" for k, v in parameters.items() if _HEADER_SAFE.match(k + v)]
        if headers:
            stream.set("extraHeaders", ",".join(headers))
        stream.text = with_query(media_url, parameters) if parameters else media_url
        return Markup(_xml(root))

    @classmethod
    def say_and_hang_up_markup(cls, message: str) -> Markup:
        root = ElementTree.Element("Response")
        ElementTree.SubElement(root, "Speak").text = message
        ElementTree.SubElement(root, "Hangup")
        return Markup(_xml(root))

    def transfer_markup(self, to_number: str) -> Markup:
        """What our ``transfer_url`` endpoint answers when Vobiz fetches it."""
        return Markup(dial_xml(to_number))

    @classmethod
    def parse_stream_start(cls, message: Mapping[str, object]) -> StreamStart | None:
        if message.get("event") != "start":
            return None
        nested = message.get("start")
        start = nested if isinstance(nested, Mapping) else message
        stream_id = start.get("streamId") or message.get("streamId")
        if not isinstance(stream_id, str) or not stream_id:
            log.warning("vobiz media: skipped a start message without a streamId")
            return None
        call_id = start.get("callId") or message.get("callId")
        encoding, rate = _stated_format(start, message)
        return StreamStart(
            stream_id=stream_id,
            carrier_call_id=call_id if isinstance(call_id, str) else None,
            custom_parameters=_extra_headers(
                message.get("extra_headers") or start.get("extra_headers")
            ),
            sample_rate=rate,
            encoding=encoding,
        )

    def serializer(self, start: StreamStart) -> RobustPlivoSerializer:
        return RobustPlivoSerializer(start.stream_id, start.carrier_call_id)

    @classmethod
    def parse_status_callback(cls, request: WebhookRequest) -> StatusUpdate:
        fields = webhook_fields(request)
        machine = fields.get("Machine", "").lower()
        if "CallStatus" not in fields and machine:  # the machine-detection callback
            fields["CallStatus"] = "in-progress"
        status = required_field(fields, "CallStatus")
        outcome = CALL_STATUSES.get(status.lower())
        if outcome is None:
            raise InvalidInput(f"unknown Vobiz CallStatus {status[:32]!r}", field="CallStatus")
        duration = fields.get("Duration") or fields.get("BillDuration")
        return StatusUpdate(
            carrier_call_id=required_field(fields, "CallUUID", "RequestUUID"),
            outcome=outcome,
            answered_by={"true": "machine_start", "false": "human"}.get(machine),
            duration_seconds=float(duration) if duration and duration.isdigit() else None,
        )

    async def place_call(self, request: PlaceCallRequest) -> str:
        body: dict[str, str | int] = {
            "from": request.from_number,
            "to": request.to_number,
            "answer_url": request.answer_url,
            "answer_method": "POST",
            "ring_url": request.status_url,
            "ring_method": "POST",
            "hangup_url": request.status_url,
            "hangup_method": "POST",
            "ring_timeout": request.timeout_seconds,
        }
        if request.machine_detection != "off":
            body.update(machine_detection="true", machine_detection_url=request.status_url)
        response = await self._request("POST", "Call/", body)
        answer = response_json(response, "vobiz")
        call_id = answer.get("request_uuid") or answer.get("call_uuid")
        if not isinstance(call_id, str) or not call_id:
            raise ExternalError("vobiz API answered without the new call's request_uuid")
        return call_id

    async def transfer(self, carrier_call_id: str, to_number: str) -> None:
        """Point the live call's A leg at our ``transfer_url``, which dials ``to_number``."""
        if not self.transfer_url or not self.transfer_secret:
            raise ConfigurationError("Vobiz transfers need the server's transfer URL and secret")
        token = issue_transfer_token(self.transfer_secret, carrier_call_id, to_number)
        body = {
            "legs": "aleg",
            "aleg_url": with_query(self.transfer_url, {"to": to_number, TRANSFER_TOKEN: token}),
            "aleg_method": "POST",
        }
        await self._request("POST", f"Call/{path_segment(carrier_call_id)}/", body)

    async def hangup(self, carrier_call_id: str) -> None:
        try:
            await self._request("DELETE", f"Call/{path_segment(carrier_call_id)}/")
        except ExternalStatusError as exc:
            if exc.status != 404:  # 404: the call is already gone, which is what we wanted
                raise

    async def _request(
        self, method: str, path: str, body: Mapping[str, str | int] | None = None
    ) -> httpx.Response:
        account = self._vobiz
        url = f"{self.api_base_url}/api/v1/Account/{path_segment(account.auth_id)}/{path}"
        headers = {
            "X-Auth-ID": account.auth_id,
            "X-Auth-Token": account.auth_token.get_secret_value(),
        }
        return await call_carrier_api(self.http, "vobiz", method, url, headers=headers, json=body)
