"""The carrier boundary: what every telephony carrier module implements.

A ``MediaEndpoint`` is anything that opens a call's media socket (a carrier,
or a web page): it parses its start message and provides a Pipecat
serializer for its media protocol (bytes <-> frames only: no REST calls from
inside a serializer). A ``Carrier`` is a media endpoint on the phone network
as well: it turns its webhooks into our terms (an inbound call, a status
update), answers with its markup pointing at our media socket, and reaches
its REST API to place, transfer and hang up calls. Media is routed by URL
(``/media/{carrier}/{call_id}``), never by sniffing the first message.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, Literal

import httpx
from pipecat.serializers.base_serializer import FrameSerializer

from switchboard.errors import InvalidInput
from switchboard.phone import reported_to_e164
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


def is_machine(answered_by: str | None) -> bool:
    """Whether a carrier's ``AnsweredBy`` (``machine_start``, ``machine_end_beep``, ``fax``...)
    means no person picked up."""
    return bool(answered_by) and str(answered_by).startswith(("machine", "fax"))


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
    """What the carrier's media stream says about itself when it starts.

    ``encoding`` and ``sample_rate`` are as the message states them (the
    carrier's default where it states none; 0 for a rate that is not a plain
    number): ``Carrier.check_stream_format`` decides whether they are usable.
    """

    stream_id: str
    carrier_call_id: str | None
    custom_parameters: Mapping[str, str] = field(default_factory=dict)
    sample_rate: int = 8000
    encoding: str = "audio/x-mulaw"


@dataclass(frozen=True)
class StartFields:
    """Where a carrier's media ``start`` message keeps each part (names differ by carrier)."""

    stream_id: str
    call_id: str
    custom_parameters: str
    media_format: str
    sample_rate: str
    encoding: str


MAX_RATE_DIGITS = 6


def stated_rate(value: object, default: int) -> int:
    """A sample rate as a carrier states it (a number or a numeric string); ``default`` when
    absent, 0 when it is anything else (so it matches no supported format)."""
    if value is None:
        return default
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = str(value)
    return int(text) if text.isdigit() and len(text) <= MAX_RATE_DIGITS else 0


def stream_start_from(
    message: Mapping[str, object],
    fields: StartFields,
    carrier: str,
    default_format: tuple[str, int],
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
    stated: Mapping[str, object] = media_format if isinstance(media_format, Mapping) else {}
    encoding = stated.get(fields.encoding, default_format[0])
    return StreamStart(
        stream_id=stream_id,
        carrier_call_id=call_id if isinstance(call_id, str) else None,
        custom_parameters=(
            {str(k): str(v) for k, v in custom.items()} if isinstance(custom, Mapping) else {}
        ),
        sample_rate=stated_rate(stated.get(fields.sample_rate), default_format[1]),
        encoding=encoding if isinstance(encoding, str) else "",
    )


@dataclass(frozen=True)
class Markup:
    """A webhook answer: TwiML, ExoML, Plivo XML or JSON."""

    body: str
    media_type: str = "application/xml"


MachineDetection = Literal["off", "detect", "leave_message"]
"""Per call: no detection; hang up on an answering machine; or leave it a message."""


@dataclass(frozen=True)
class PlaceCallRequest:
    to_number: str
    from_number: str
    answer_url: str  # our webhook that returns the answer markup for this call
    status_url: str  # our status callback
    machine_detection: MachineDetection = "off"
    timeout_seconds: int = 30


class MediaEndpoint(ABC):
    """Whatever opens a call's media socket: a phone carrier, or a web page.

    What it streams is fixed per class (``stream_formats``), and its start
    message is parsed before anyone knows whose socket it is, so parsing
    needs no instance and no credentials.
    """

    name: ClassVar[CarrierName]
    sample_rate: ClassVar[int] = 8000
    # The (encoding, sample rate) pairs this endpoint really streams; anything else is refused.
    stream_formats: ClassVar[frozenset[tuple[str, int]]] = frozenset({("audio/x-mulaw", 8000)})
    # Its serializer holds audio until told the agent's turn is over (Exotel's chunking).
    buffers_audio: ClassVar[bool] = False

    @classmethod
    @abstractmethod
    def parse_stream_start(cls, message: Mapping[str, object]) -> StreamStart | None:
        """The stream's identity from one decoded media message, or None if it is not the start."""

    @classmethod
    def check_stream_format(cls, start: StreamStart) -> None:
        """Raise ``InvalidInput`` unless the stream's encoding and rate are ones we expect.

        A rate is not something to allocate resamplers and buffers for on a
        stranger's word: only the formats the endpoint documents get through.
        """
        if (start.encoding, start.sample_rate) not in cls.stream_formats:
            expected = ", ".join(f"{e} at {r} Hz" for e, r in sorted(cls.stream_formats))
            raise InvalidInput(
                f"{cls.name.value} streams {expected}, not {start.encoding[:40]!r}"
                f" at {start.sample_rate} Hz",
                field="start.media_format",
            )

    @abstractmethod
    def serializer(self, start: StreamStart) -> FrameSerializer:
        """Bytes <-> Pipecat frames for this media socket (never calls REST)."""


class Carrier(MediaEndpoint):
    """One telephony carrier: webhooks, markup, a REST API and a media protocol.

    The module that implements it owns everything about it: its credentials
    model, where its national numbers are from, the options it takes from the
    server's settings, and its signature check. Parsing webhooks needs no
    credentials, so those parsers are class methods.
    """

    credentials_model: ClassVar[type[CarrierCredentials] | None] = None
    # Numbers reported without a country code are from here (Exotel writes ``09876543210``).
    national_region: ClassVar[str | None] = None
    # Real, dialable numbers (the simulator's are test numbers, kept as sent).
    real_numbers: ClassVar[bool] = True

    def __init__(self, credentials: CarrierCredentials | None, http: httpx.AsyncClient) -> None:
        self.credentials = credentials
        self.http = http

    @classmethod
    def options(cls, public_url: str, secret: bytes) -> dict[str, Any]:
        """Construction options that come from this server (its public URL, its secret key)."""
        return {}

    @classmethod
    def stored_number(cls, number: str) -> str:
        """A number as this carrier reports it, as numbers are stored (E.164 for real ones)."""
        return reported_to_e164(number, cls.national_region) if cls.real_numbers else number

    @abstractmethod
    def verify_webhook(self, request: WebhookRequest) -> None:
        """Raise ``switchboard.errors.Forbidden`` (saying why) unless the carrier signed it."""

    def replay_nonce(self, request: WebhookRequest) -> str | None:
        """The nonce a verified request's signature rests on, for carriers whose signatures
        say nothing of time (each is then accepted once); None for the others."""
        return None

    @classmethod
    @abstractmethod
    def parse_inbound(cls, request: WebhookRequest) -> InboundCall:
        """The call a ringing webhook announces; ``InvalidInput`` if fields are missing."""

    @abstractmethod
    def answer_markup(self, media_url: str, parameters: Mapping[str, str]) -> Markup:
        """Connect the call's audio to ``media_url`` (a ws:// or wss:// URL)."""

    @classmethod
    @abstractmethod
    def say_and_hang_up_markup(cls, message: str) -> Markup:
        """Speak ``message`` with the carrier's own voice and hang up (unknown number, busy)."""

    @classmethod
    @abstractmethod
    def parse_status_callback(cls, request: WebhookRequest) -> StatusUpdate:
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
