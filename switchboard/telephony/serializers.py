"""Media serializers that skip a carrier's bad message instead of ending the call.

Pipecat's input transport stops reading a media socket the first time
``deserialize`` raises, and its carrier serializers raise on bad base64 or an
odd-length payload (and log whole payloads when JSON does not parse). The
serializers here check each message's shape first: a malformed one is logged
once per kind, never with its payload, and skipped (``deserialize`` returns
None). What a well-formed message turns into is Pipecat's own behaviour: media
becomes ``InputAudioRawFrame``, a keypress ``InputDTMFFrame``, and mark, stop
and start messages nothing.

They turn bytes into frames and back, nothing else: Pipecat's auto hang-up
is off, because the carrier module hangs up.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final

from pipecat.audio.dtmf.types import KeypadEntry
from pipecat.audio.utils import create_stream_resampler
from pipecat.frames.frames import (
    AudioRawFrame,
    CancelFrame,
    EndFrame,
    Frame,
    InputAudioRawFrame,
    InputDTMFFrame,
    InputTransportMessageFrame,
    InterruptionFrame,
    OutputAudioRawFrame,
    OutputTransportMessageFrame,
    OutputTransportMessageUrgentFrame,
)
from pipecat.processors.frame_processor import FrameProcessorSetup
from pipecat.serializers.base_serializer import FrameSerializer
from pipecat.serializers.exotel import ExotelFrameSerializer
from pipecat.serializers.plivo import PlivoFrameSerializer
from pipecat.serializers.twilio import TwilioFrameSerializer

log = logging.getLogger(__name__)

FLUSH_AUDIO_MESSAGE: Final = {"type": "switchboard.flush_audio"}
"""Queue ``flush_audio_frame()`` after each bot turn: a serializer that buffers audio
(Exotel's) sends what it holds; the others drop the frame. Serializers never see
``TTSStoppedFrame``, and a transport message is the frame that reaches them in order."""

_DIGITS = frozenset(entry.value for entry in KeypadEntry)


def flush_audio_frame() -> OutputTransportMessageFrame:
    """The frame that tells a buffering serializer the bot's turn is over."""
    return OutputTransportMessageFrame(message=dict(FLUSH_AUDIO_MESSAGE))


def _is_flush(frame: Frame) -> bool:
    return (
        isinstance(frame, OutputTransportMessageFrame | OutputTransportMessageUrgentFrame)
        and frame.message == FLUSH_AUDIO_MESSAGE
    )


class MalformedMessage(Exception):
    """Why a media message was skipped: a fixed ``kind`` and a short detail, never the payload."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(kind)
        self.kind = kind
        self.detail = detail


class MalformedGuard:
    """Counts skipped messages and logs the first one of each kind."""

    def __init__(self, carrier: str) -> None:
        self.carrier = carrier
        self.skipped = 0
        self._logged: set[str] = set()

    def skip(self, kind: str, detail: str = "") -> None:
        self.skipped += 1
        if kind in self._logged:
            return
        self._logged.add(kind)
        log.warning(
            "%s media: skipped a malformed message (%s%s); later ones of this kind are skipped"
            " without a log",
            self.carrier,
            kind,
            f" {detail}" if detail else "",
        )

    async def run(self, decode: Callable[[], Awaitable[Frame | None]]) -> Frame | None:
        """``decode()``'s frame, or None (logged) if the message was malformed."""
        try:
            return await decode()
        except MalformedMessage as exc:
            self.skip(exc.kind, exc.detail)
        except Exception as exc:  # a bad message must never end the call
            self.skip(f"unexpected {type(exc).__name__}")
        return None


def json_message(data: str | bytes, known: frozenset[str], key: str = "event") -> dict[str, Any]:
    """A JSON text message whose ``key`` names one of the ``known`` events."""
    if not isinstance(data, str):
        raise MalformedMessage("binary message where text was expected")
    try:
        message = json.loads(data)
    except ValueError:
        raise MalformedMessage("invalid JSON") from None
    if not isinstance(message, dict):
        raise MalformedMessage("JSON that is not an object")
    name = message.get(key)
    if not isinstance(name, str):
        raise MalformedMessage(f"no {key!r} field")
    if name not in known:
        raise MalformedMessage(f"unknown {key}", repr(name[:32]))
    return message


def media_payload(message: dict[str, Any], *, pcm16: bool) -> bytes:
    """The audio of a ``media`` message, checked so Pipecat's decoder cannot raise."""
    media = message.get("media")
    payload = media.get("payload") if isinstance(media, dict) else None
    if not isinstance(payload, str) or not payload:
        raise MalformedMessage("media without a payload")
    try:
        audio = base64.b64decode(payload, validate=True)
    except binascii.Error:
        raise MalformedMessage("payload that is not base64") from None
    if pcm16 and len(audio) % 2:
        raise MalformedMessage("odd-length PCM16 payload")
    return audio


def dtmf_digit(message: dict[str, Any]) -> str:
    dtmf = message.get("dtmf")
    digit = dtmf.get("digit") if isinstance(dtmf, dict) else None
    if not isinstance(digit, str) or digit not in _DIGITS:
        raise MalformedMessage("DTMF without a keypad digit")
    return digit


def check_carrier_message(data: str | bytes, known: frozenset[str], *, pcm16: bool) -> None:
    """Raise ``MalformedMessage`` unless Pipecat's serializer can decode ``data`` safely."""
    message = json_message(data, known)
    if message["event"] == "media":
        media_payload(message, pcm16=pcm16)
    elif message["event"] == "dtmf":
        dtmf_digit(message)


class GuardedDeserialize(FrameSerializer):
    """Checks each carrier message (``EVENTS``, ``PCM16``) before Pipecat's serializer reads it,
    so a malformed one is logged and skipped instead of ending the call. Mix in first."""

    EVENTS: frozenset[str] = frozenset()
    PCM16: bool = False
    guard: MalformedGuard

    async def deserialize(self, data: str | bytes) -> Frame | None:
        return await self.guard.run(lambda: self._checked(data))

    async def _checked(self, data: str | bytes) -> Frame | None:
        check_carrier_message(data, self.EVENTS, pcm16=self.PCM16)
        # super() is the carrier's Pipecat serializer, next in the MRO.
        return await super().deserialize(data)  # type: ignore[safe-super]


class IgnoresFlush(FrameSerializer):
    """For serializers that send audio as it comes: the end-of-turn flush means nothing."""

    async def serialize(self, frame: Frame) -> str | bytes | None:
        return None if _is_flush(frame) else await super().serialize(frame)  # type: ignore[safe-super]


class RobustTwilioSerializer(GuardedDeserialize, IgnoresFlush, TwilioFrameSerializer):
    """Twilio Media Streams (µ-law 8 kHz); also the simulator's protocol."""

    EVENTS = frozenset({"connected", "start", "media", "dtmf", "mark", "stop"})

    def __init__(self, stream_sid: str, call_sid: str | None = None) -> None:
        params = TwilioFrameSerializer.InputParams(auto_hang_up=False)
        super().__init__(stream_sid, call_sid, params=params)
        self.guard = MalformedGuard("twilio")


class RobustPlivoSerializer(GuardedDeserialize, IgnoresFlush, PlivoFrameSerializer):
    """Plivo-style audio streams (µ-law 8 kHz): Vobiz speaks this protocol."""

    EVENTS = frozenset(
        {"connected", "start", "media", "dtmf", "stop", "playedStream", "clearedAudio"}
    )

    def __init__(self, stream_id: str, call_id: str | None = None) -> None:
        params = PlivoFrameSerializer.InputParams(auto_hang_up=False)
        super().__init__(stream_id, call_id, params=params)
        self.guard = MalformedGuard("vobiz")


class RobustExotelSerializer(GuardedDeserialize, ExotelFrameSerializer):
    """Exotel AgentStream (PCM16), sending audio in the chunk sizes Exotel plays without gaps.

    Exotel wants each outbound chunk to be a multiple of 320 bytes (20 ms at
    8 kHz) and at least 3.2 KB (100 ms); Pipecat's serializer sends whatever one
    frame resamples to. This one holds audio until a full chunk is ready. An
    interruption drops what it holds (stale speech, as Pipecat's own packet
    buffer does); ``EndFrame`` and ``flush_audio_frame()`` send it, padded with
    silence to a full chunk. The units scale with the sample rate.
    """

    EVENTS = frozenset({"connected", "start", "media", "dtmf", "mark", "stop"})
    PCM16 = True
    MAX_CHUNK_BYTES: Final = 100_000

    def __init__(self, stream_sid: str, call_sid: str | None = None, *, sample_rate: int = 8000):
        params = ExotelFrameSerializer.InputParams(exotel_sample_rate=sample_rate)
        super().__init__(stream_sid, call_sid, params=params)
        self.guard = MalformedGuard("exotel")
        self.unit = 320 * max(1, sample_rate // 8000)
        self.min_chunk = 10 * self.unit
        self.max_chunk = self.MAX_CHUNK_BYTES // self.unit * self.unit
        self._pending = bytearray()

    async def serialize(self, frame: Frame) -> str | bytes | None:
        if _is_flush(frame) or isinstance(frame, EndFrame):
            return self._media(self._take_all())
        if isinstance(frame, InterruptionFrame | CancelFrame):
            self._pending.clear()
        elif isinstance(frame, AudioRawFrame):
            pcm = await self._output_resampler.resample(
                frame.audio, frame.sample_rate, self._exotel_sample_rate
            )
            self._pending += pcm
            return self._media(self._take_ready())
        return await super().serialize(frame)

    def _take_ready(self) -> bytes:
        if len(self._pending) < self.min_chunk:
            return b""
        size = min(len(self._pending) // self.unit * self.unit, self.max_chunk)
        chunk = bytes(self._pending[:size])
        del self._pending[:size]
        return chunk

    def _take_all(self) -> bytes:
        if not self._pending:
            return b""
        size = max(self.min_chunk, -(-len(self._pending) // self.unit) * self.unit)
        chunk = bytes(self._pending).ljust(size, b"\x00")
        self._pending.clear()
        return chunk

    def _media(self, chunk: bytes) -> str | None:
        if not chunk:
            return None
        payload = base64.b64encode(chunk).decode("ascii")
        message = {"event": "media", "stream_sid": self._stream_sid, "media": {"payload": payload}}
        return json.dumps(message)


class BrowserFrameSerializer(FrameSerializer):
    """The browser phone: raw PCM16 LE mono 16 kHz in binary messages, JSON control in text.

    In: audio, ``{"type":"dtmf","digit":"1"}`` (``InputDTMFFrame``), ``{"type":"hangup"}``
    (an ``InputTransportMessageFrame`` the session can act on) and ``{"type":"start"}``
    (read by ``BrowserCarrier.parse_stream_start``; nothing here). Out: audio,
    ``{"type":"clear"}`` on interruption, and transport messages as JSON.
    """

    SAMPLE_RATE: Final = 16000
    CONTROL_TYPES: Final = frozenset({"start", "dtmf", "hangup"})

    def __init__(self) -> None:
        super().__init__()
        self.guard = MalformedGuard("browser")
        self._sample_rate = self.SAMPLE_RATE
        self._input_resampler = create_stream_resampler()
        self._output_resampler = create_stream_resampler()

    # Pipecat's FrameSerializer.setup itself narrows BaseObject.setup's argument.
    async def setup(self, setup: FrameProcessorSetup) -> None:  # type: ignore[override]
        self._sample_rate = setup.audio_in_sample_rate

    async def serialize(self, frame: Frame) -> str | bytes | None:
        if _is_flush(frame) or self.should_ignore_frame(frame):
            return None
        if isinstance(frame, InterruptionFrame):
            return json.dumps({"type": "clear"})
        if isinstance(frame, OutputAudioRawFrame):
            pcm = await self._output_resampler.resample(
                frame.audio, frame.sample_rate, self.SAMPLE_RATE
            )
            return pcm or None
        if isinstance(frame, OutputTransportMessageFrame | OutputTransportMessageUrgentFrame):
            return json.dumps(frame.message)
        return None

    async def deserialize(self, data: str | bytes) -> Frame | None:
        return await self.guard.run(lambda: self._decode(data))

    async def _decode(self, data: str | bytes) -> Frame | None:
        if isinstance(data, bytes | bytearray):
            if len(data) % 2:
                raise MalformedMessage("odd-length PCM16 audio")
            pcm = await self._input_resampler.resample(
                bytes(data), self.SAMPLE_RATE, self._sample_rate
            )
            if not pcm:
                return None
            return InputAudioRawFrame(audio=pcm, num_channels=1, sample_rate=self._sample_rate)
        message = json_message(data, self.CONTROL_TYPES, key="type")
        if message["type"] == "dtmf":
            return InputDTMFFrame(KeypadEntry(dtmf_digit({"dtmf": message})))
        if message["type"] == "hangup":
            return InputTransportMessageFrame(message={"type": "hangup"})
        return None
