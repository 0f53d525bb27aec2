"""The carrier boundary: what every telephony carrier module implements.

A carrier turns its webhooks into our terms (an inbound call, a status
update), answers with its markup pointing at our media socket, provides a
Pipecat serializer for its media protocol (bytes <-> frames only: no REST
calls from inside a serializer), and reaches its REST API to place, transfer
and hang up calls. Media is routed by URL (``/media/{carrier}/{call_id}``),
never by sniffing the first message.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

import httpx
from pipecat.serializers.base_serializer import FrameSerializer

from switchboard.telephony.credentials import CarrierCredentials, CarrierName

log = logging.getLogger(__name__)


class CallOutcome(StrEnum):
    """A carrier's call status in our terms (``parse_status_callback``)."""

    RINGING = "ringing"
    ANSWERED = "answered"
    COMPLETED = "completed"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    FAILED = "failed"
    CANCELED = "canceled"


@dataclass(frozen=True)
class WebhookRequest:
    """An HTTP request from a carrier, as received (for signature checks and parsing)."""

    url: str  # the full public URL the carrier called, query string included
    method: str
    headers: Mapping[str, str]  # lower-case names
    form: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class InboundCall:
    carrier_call_id: str
    from_number: str
    to_number: str
    parameters: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StatusUpdate:
    carrier_call_id: str
    outcome: CallOutcome
    answered_by: str | None = (
        None  # human | machine_* | fax | unknown (answering-machine detection)
    )
    duration_seconds: float | None = None


@dataclass(frozen=True)
class StreamStart:
    """What the carrier's media stream says about itself when it starts."""

    stream_id: str
    carrier_call_id: str | None
    custom_parameters: Mapping[str, str] = field(default_factory=dict)
    sample_rate: int = 8000


@dataclass(frozen=True)
class StartFields:
    """Where a carrier's media ``start`` message keeps each part (names differ by carrier)."""

    stream_id: str
    call_id: str
    custom_parameters: str
    media_format: str
    sample_rate: str


def stream_start_from(
    message: Mapping[str, object], fields: StartFields, carrier: str
) -> StreamStart | None:
    """A ``start`` message in our terms; None (logged when malformed) for anything else.

    The stream id may sit in the nested ``start`` object or at the top level.
    """
    if message.get("event") != "start":
        return None
    nested = message.get("start")
    start: Mapping[str, object] = nested if isinstance(nested, Mapping) else {}
    stream_id = start.get(fields.stream_id) or message.get(fields.stream_id)
    if not isinstance(stream_id, str) or not stream_id:
        log.warning("%s media: skipped a start message without a %s", carrier, fields.stream_id)
        return None
    call_id = start.get(fields.call_id)
    custom = start.get(fields.custom_parameters)
    media_format = start.get(fields.media_format)
    rate = media_format.get(fields.sample_rate) if isinstance(media_format, Mapping) else None
    return StreamStart(
        stream_id=stream_id,
        carrier_call_id=call_id if isinstance(call_id, str) else None,
        custom_parameters=(
            {str(k): str(v) for k, v in custom.items()} if isinstance(custom, Mapping) else {}
        ),
        sample_rate=int(str(rate)) if str(rate).isdigit() else 8000,
    )


@dataclass(frozen=True)
class Markup:
    """A webhook answer: TwiML, ExoML, Plivo XML or JSON."""

    body: str
    media_type: str = "application/xml"


@dataclass(frozen=True)
class PlaceCallRequest:
    to_number: str
    from_number: str
    answer_url: str  # our webhook that returns the answer markup for this call
    status_url: str  # our status callback
    machine_detection: bool = False
    timeout_seconds: int = 30


class Carrier(ABC):
    """One telephony carrier. ``credentials`` is None for carriers that take none."""

    name: CarrierName
    sample_rate: int = 8000

    def __init__(self, credentials: CarrierCredentials | None, http: httpx.AsyncClient) -> None:
        self.credentials = credentials
        self.http = http

    @abstractmethod
    def verify_webhook(self, request: WebhookRequest) -> None:
        """Raise ``switchboard.errors.Forbidden`` (saying why) unless the carrier signed it."""

    @abstractmethod
    def parse_inbound(self, request: WebhookRequest) -> InboundCall:
        """The call a ringing webhook announces; ``InvalidInput`` if fields are missing."""

    @abstractmethod
    def answer_markup(self, media_url: str, parameters: Mapping[str, str]) -> Markup:
        """Connect the call's audio to ``media_url`` (a ws:// or wss:// URL)."""

    @abstractmethod
    def say_and_hang_up_markup(self, message: str) -> Markup:
        """Speak ``message`` with the carrier's own voice and hang up (unknown number, busy)."""

    @abstractmethod
    def parse_stream_start(self, message: Mapping[str, object]) -> StreamStart | None:
        """The stream's identity from one decoded media message, or None if it is not the start."""

    @abstractmethod
    def serializer(self, start: StreamStart) -> FrameSerializer:
        """Bytes <-> Pipecat frames for this carrier's media socket (never calls REST)."""

    @abstractmethod
    def parse_status_callback(self, request: WebhookRequest) -> StatusUpdate:
        """A status webhook in our terms."""

    @abstractmethod
    async def place_call(self, request: PlaceCallRequest) -> str:
        """Start an outbound call; returns the carrier's call id."""

    @abstractmethod
    async def transfer(self, carrier_call_id: str, to_number: str) -> None:
        """Cold-transfer a live call to ``to_number``."""

    @abstractmethod
    async def hangup(self, carrier_call_id: str) -> None:
        """End a live call."""
