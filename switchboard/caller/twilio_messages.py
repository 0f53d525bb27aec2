"""The messages Twilio sends an app over a Media Stream, built exactly as Twilio spells them.

Shapes follow twilio.com/docs/voice/media-streams/websocket-messages (see
PROTOCOLS.md): ``sequenceNumber``, ``chunk`` and ``timestamp`` are strings,
``connected`` carries no sequence number, ``start`` is number 1.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

Message = dict[str, Any]


def new_sid(prefix: str) -> str:
    """A Twilio-style identifier: a two-letter prefix and 32 hex digits."""
    return f"{prefix}{uuid.uuid4().hex}"


@dataclass(frozen=True)
class StreamIdentity:
    """Who the stream belongs to, as Twilio names it in every message."""

    call_sid: str = field(default_factory=lambda: new_sid("CA"))
    account_sid: str = field(default_factory=lambda: new_sid("AC"))
    stream_sid: str = field(default_factory=lambda: new_sid("MZ"))
    custom_parameters: Mapping[str, str] = field(default_factory=dict)


def connected_message() -> Message:
    return {"event": "connected", "protocol": "Call", "version": "1.0.0"}


def start_message(identity: StreamIdentity, sequence: int) -> Message:
    return {
        "event": "start",
        "sequenceNumber": str(sequence),
        "start": {
            "accountSid": identity.account_sid,
            "streamSid": identity.stream_sid,
            "callSid": identity.call_sid,
            "tracks": ["inbound"],
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            "customParameters": dict(identity.custom_parameters),
        },
        "streamSid": identity.stream_sid,
    }


def media_message(
    identity: StreamIdentity, sequence: int, chunk: int, timestamp_ms: int, payload: bytes
) -> Message:
    return {
        "event": "media",
        "sequenceNumber": str(sequence),
        "media": {
            "track": "inbound",
            "chunk": str(chunk),
            "timestamp": str(timestamp_ms),
            "payload": base64.b64encode(payload).decode("ascii"),
        },
        "streamSid": identity.stream_sid,
    }


def dtmf_message(identity: StreamIdentity, sequence: int, digit: str) -> Message:
    return {
        "event": "dtmf",
        "streamSid": identity.stream_sid,
        "sequenceNumber": str(sequence),
        "dtmf": {"track": "inbound_track", "digit": digit},
    }


def mark_message(identity: StreamIdentity, sequence: int, name: str) -> Message:
    """The echo of an app's mark, sent once the audio before it has played."""
    return {
        "event": "mark",
        "sequenceNumber": str(sequence),
        "streamSid": identity.stream_sid,
        "mark": {"name": name},
    }


def stop_message(identity: StreamIdentity, sequence: int) -> Message:
    return {
        "event": "stop",
        "sequenceNumber": str(sequence),
        "stop": {"accountSid": identity.account_sid, "callSid": identity.call_sid},
        "streamSid": identity.stream_sid,
    }
