"""What Exotel AgentStream and Vobiz (Plivo-style) media sockets say: each carrier's framing.

Shapes follow PROTOCOLS.md and the carriers' documentation: Exotel is
snake_case with string sequence numbers and PCM16 LE 8 kHz; Vobiz is camelCase
with numeric sequence numbers and µ-law 8 kHz, its start message nested (as
Plivo sends it) or flat.
"""

from __future__ import annotations

import base64
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from switchboard.providers.phone_line import decode_phone_line

Message = dict[str, Any]
FRAME_SECONDS = 0.02
SAMPLE_RATE = 8000


def new_id(prefix: str = "") -> str:
    return f"{prefix}{uuid.uuid4().hex}"


class CarrierFraming(ABC):
    """How one carrier frames the caller's audio and the app's answers on the media socket."""

    frame_bytes: int  # 20 ms of caller audio on the wire
    silence: bytes  # one silent frame
    bytes_per_second: int  # of the app's audio
    audio_event: str  # the event that carries the app's audio
    clear_event: str  # the event that drops the app's unplayed audio

    @abstractmethod
    def opening(self) -> list[Message]:
        """What the carrier sends before the first audio frame."""

    @abstractmethod
    def media(self, sequence: int, chunk: int, timestamp_ms: int, audio: bytes) -> Message: ...

    @abstractmethod
    def stop(self, sequence: int) -> Message: ...

    @abstractmethod
    async def wire_audio(self, ulaw: bytes) -> bytes:
        """A caller line (8 kHz µ-law) in the encoding this carrier sends."""

    def agent_audio(self, message: Mapping[str, Any]) -> bytes | None:
        """The audio an app message carries, if it is an audio message."""
        if message.get("event") != self.audio_event:
            return None
        return base64.b64decode(message["media"]["payload"], validate=True)


@dataclass
class ExotelFraming(CarrierFraming):
    """Exotel AgentStream: snake_case fields, string counters, PCM16 LE 8 kHz."""

    from_number: str
    to_number: str
    custom_parameters: Mapping[str, str] = field(default_factory=dict)
    call_sid: str = field(default_factory=new_id)
    stream_sid: str = field(default_factory=new_id)
    account_sid: str = "switchboard-e2e"

    frame_bytes = 320
    silence = bytes(320)
    bytes_per_second = 2 * SAMPLE_RATE
    audio_event = "media"
    clear_event = "clear"

    def opening(self) -> list[Message]:
        start = {
            "stream_sid": self.stream_sid,
            "call_sid": self.call_sid,
            "account_sid": self.account_sid,
            "from": self.from_number,
            "to": self.to_number,
            "custom_parameters": dict(self.custom_parameters),
            "media_format": {"encoding": "audio/x-raw", "sample_rate": "8000", "bit_rate": "16"},
        }
        return [
            {"event": "connected"},
            {
                "event": "start",
                "sequence_number": "1",
                "stream_sid": self.stream_sid,
                "start": start,
            },
        ]

    def media(self, sequence: int, chunk: int, timestamp_ms: int, audio: bytes) -> Message:
        return {
            "event": "media",
            "sequence_number": str(sequence),
            "stream_sid": self.stream_sid,
            "media": {
                "chunk": str(chunk),
                "timestamp": str(timestamp_ms),
                "payload": base64.b64encode(audio).decode("ascii"),
            },
        }

    def stop(self, sequence: int) -> Message:
        return {
            "event": "stop",
            "sequence_number": str(sequence),
            "stream_sid": self.stream_sid,
            "stop": {
                "call_sid": self.call_sid,
                "account_sid": self.account_sid,
                "reason": "callended",
            },
        }

    async def wire_audio(self, ulaw: bytes) -> bytes:
        return await decode_phone_line(ulaw, SAMPLE_RATE)


@dataclass
class VobizFraming(CarrierFraming):
    """Vobiz (Plivo's protocol): camelCase fields, numeric counters, µ-law 8 kHz."""

    from_number: str
    to_number: str
    extra_headers: str = ""  # the answer's ``extraHeaders``, echoed in the start message
    flat_start: bool = False  # Vobiz may send the start's fields at the top level
    call_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    stream_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    account_id: str = "MA_E2E"

    frame_bytes = 160
    silence = b"\xff" * 160
    bytes_per_second = SAMPLE_RATE
    audio_event = "playAudio"
    clear_event = "clearAudio"

    def opening(self) -> list[Message]:
        if self.flat_start:
            return [
                {
                    "event": "start",
                    "sequenceNumber": 1,
                    "streamId": self.stream_id,
                    "callId": self.call_id,
                    "accountId": self.account_id,
                    "from": self.from_number,
                    "to": self.to_number,
                    "contentType": "audio/x-mulaw;rate=8000",
                    "extra_headers": self.extra_headers,
                }
            ]
        start = {
            "callId": self.call_id,
            "streamId": self.stream_id,
            "accountId": self.account_id,
            "tracks": ["inbound"],
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": SAMPLE_RATE},
        }
        return [
            {
                "event": "start",
                "sequenceNumber": 1,
                "start": start,
                "extra_headers": self.extra_headers,
            }
        ]

    def media(self, sequence: int, chunk: int, timestamp_ms: int, audio: bytes) -> Message:
        return {
            "event": "media",
            "sequenceNumber": sequence,
            "streamId": self.stream_id,
            "media": {
                "track": "inbound",
                "timestamp": str(round(time.time() * 1000)),
                "chunk": chunk,
                "payload": base64.b64encode(audio).decode("ascii"),
            },
        }

    def stop(self, sequence: int) -> Message:
        return {"event": "stop", "sequenceNumber": sequence, "streamId": self.stream_id}

    async def wire_audio(self, ulaw: bytes) -> bytes:
        return ulaw
