"""Media serializers: real carrier messages in and out, and bad ones skipped, not fatal."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import math
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pipecat.audio.dtmf.types import KeypadEntry
from pipecat.frames.frames import (
    CancelFrame,
    EndFrame,
    InputAudioRawFrame,
    InputDTMFFrame,
    InputTransportMessageFrame,
    InterruptionFrame,
    OutputAudioRawFrame,
    OutputTransportMessageFrame,
)

from switchboard.telephony.serializers import (
    BrowserFrameSerializer,
    RobustExotelSerializer,
    RobustPlivoSerializer,
    RobustTwilioSerializer,
    flush_audio_frame,
)
from tests.telephony.helpers import ready


def ulaw_to_linear(byte: int) -> int:
    """G.711 µ-law decoding, written out so the test does not trust the code under test."""
    value = ~byte & 0xFF
    magnitude = (((value & 0x0F) << 3) + 0x84) << ((value >> 4) & 0x07)
    return 0x84 - magnitude if value & 0x80 else magnitude - 0x84


def pcm(samples: list[int]) -> bytes:
    return struct.pack(f"<{len(samples)}h", *samples)


def tone(count: int, rate: int = 8000, amplitude: int = 8000) -> bytes:
    return pcm([int(amplitude * math.sin(2 * math.pi * 440 * i / rate)) for i in range(count)])


ULAW = bytes([0x00, 0x0F, 0x7F, 0x80, 0x8F, 0xFF, 0x55, 0xAA])
TWILIO_MEDIA = {
    "event": "media",
    "sequenceNumber": "4",
    "media": {"track": "inbound", "chunk": "2", "timestamp": "5", "payload": ""},
    "streamSid": "MZ1",
}


def twilio_media(audio: bytes) -> str:
    message = json.loads(json.dumps(TWILIO_MEDIA))
    message["media"]["payload"] = base64.b64encode(audio).decode()
    return json.dumps(message)


async def test_twilio_media_becomes_pcm_of_the_mulaw() -> None:
    serializer = await ready(RobustTwilioSerializer("MZ1", "CA1"), 8000)
    frame = await serializer.deserialize(twilio_media(ULAW))
    assert isinstance(frame, InputAudioRawFrame)
    assert frame.sample_rate == 8000 and frame.num_channels == 1
    assert frame.audio == pcm([ulaw_to_linear(b) for b in ULAW])


async def test_twilio_media_is_resampled_to_the_pipeline_rate() -> None:
    serializer = await ready(RobustTwilioSerializer("MZ1"), 16000)
    frame = await serializer.deserialize(twilio_media(bytes([0xFF]) * 8000))  # one second
    assert isinstance(frame, InputAudioRawFrame) and frame.sample_rate == 16000
    assert 0.8 * 32000 < len(frame.audio) <= 32000  # the resampler holds a few ms back


async def test_twilio_dtmf_mark_and_stop() -> None:
    serializer = await ready(RobustTwilioSerializer("MZ1"), 8000)
    dtmf = {"event": "dtmf", "streamSid": "MZ1", "sequenceNumber": "5"}
    frame = await serializer.deserialize(
        json.dumps({**dtmf, "dtmf": {"track": "inbound_track", "digit": "#"}})
    )
    assert isinstance(frame, InputDTMFFrame) and frame.button is KeypadEntry.POUND
    mark = {"event": "mark", "sequenceNumber": "4", "streamSid": "MZ1", "mark": {"name": "x"}}
    stop = {"event": "stop", "sequenceNumber": "5", "stop": {"callSid": "CA1"}, "streamSid": "MZ1"}
    connected = {"event": "connected", "protocol": "Call", "version": "1.0.0"}
    for message in (mark, stop, connected):
        assert await serializer.deserialize(json.dumps(message)) is None
    assert serializer.guard.skipped == 0  # well-formed messages that mean nothing


async def test_twilio_output_audio_clear_and_no_hang_up() -> None:
    serializer = await ready(RobustTwilioSerializer("MZ1", "CA1"), 8000)
    audio = tone(160)
    message = json.loads(str(await serializer.serialize(OutputAudioRawFrame(audio, 8000, 1))))
    assert message["event"] == "media" and message["streamSid"] == "MZ1"
    decoded = [ulaw_to_linear(b) for b in base64.b64decode(message["media"]["payload"])]
    original = struct.unpack("<160h", audio)
    assert all(abs(a - b) <= max(64, abs(b) // 8) for a, b in zip(decoded, original, strict=True))
    clear = json.loads(str(await serializer.serialize(InterruptionFrame())))
    assert clear == {"event": "clear", "streamSid": "MZ1"}
    assert await serializer.serialize(EndFrame()) is None  # hanging up is the carrier's job
    assert await serializer.serialize(flush_audio_frame()) is None


BAD_CARRIER_MESSAGES = [
    b"\x00\x01binary",
    "not json at all",
    "[1, 2, 3]",
    json.dumps({"no": "event"}),
    json.dumps({"event": "dance"}),
    json.dumps({"event": "media", "streamSid": "MZ1"}),
    json.dumps({"event": "media", "media": {"payload": 42}}),
    json.dumps({"event": "media", "media": {"payload": "abc"}}),  # bad padding: Pipecat raises
    json.dumps({"event": "media", "media": {"payload": "!!!!"}}),
    json.dumps({"event": "dtmf", "dtmf": {"digit": "x"}}),
    json.dumps({"event": "dtmf"}),
    "{" * 100_000,
]


@pytest.mark.parametrize("message", BAD_CARRIER_MESSAGES)
@pytest.mark.parametrize(
    "make",
    [
        lambda: RobustTwilioSerializer("MZ1"),
        lambda: RobustExotelSerializer("MZ1"),
        lambda: RobustPlivoSerializer("S1"),
    ],
    ids=["twilio", "exotel", "vobiz"],
)
async def test_malformed_messages_are_skipped(message: str | bytes, make: object) -> None:
    serializer = await ready(make(), 8000)  # type: ignore[operator]
    assert await serializer.deserialize(message) is None
    assert serializer.guard.skipped == 1


async def test_each_kind_is_logged_once_and_without_its_payload(
    caplog: pytest.LogCaptureFixture,
) -> None:
    serializer = await ready(RobustTwilioSerializer("MZ1"), 8000)
    secretive = json.dumps({"event": "media", "media": {"payload": "SECRETabc"}})
    with caplog.at_level(logging.WARNING, logger="switchboard.telephony.serializers"):
        for _ in range(3):
            await serializer.deserialize(secretive)
        await serializer.deserialize("nope")
    assert serializer.guard.skipped == 4
    assert len(caplog.records) == 2
    assert all("SECRET" not in record.getMessage() for record in caplog.records)
    # the call goes on: good media still decodes after bad
    assert isinstance(await serializer.deserialize(twilio_media(ULAW)), InputAudioRawFrame)


def exotel_media(audio: bytes) -> str:
    return json.dumps(
        {
            "event": "media",
            "sequence_number": "3",
            "stream_sid": "MZ1",
            "media": {
                "chunk": "2",
                "timestamp": "200",
                "payload": base64.b64encode(audio).decode(),
            },
        }
    )


async def test_exotel_media_is_pcm16_as_is() -> None:
    serializer = await ready(RobustExotelSerializer("MZ1", "CA1"), 8000)
    audio = tone(800)
    frame = await serializer.deserialize(exotel_media(audio))
    assert isinstance(frame, InputAudioRawFrame) and frame.audio == audio
    assert await serializer.deserialize(exotel_media(b"\x01\x02\x03")) is None  # odd length
    dtmf = {"event": "dtmf", "stream_sid": "MZ1", "dtmf": {"digit": "5", "duration": "100"}}
    frame = await serializer.deserialize(json.dumps(dtmf))
    assert isinstance(frame, InputDTMFFrame) and frame.button is KeypadEntry.FIVE


def chunk_of(message: str | bytes | None) -> bytes:
    assert isinstance(message, str)
    decoded = json.loads(message)
    assert decoded["event"] == "media" and decoded["stream_sid"] == "MZ1"
    return base64.b64decode(decoded["media"]["payload"])


async def test_exotel_sends_audio_in_320_byte_multiples_of_at_least_100_ms() -> None:
    serializer = await ready(RobustExotelSerializer("MZ1"), 8000)
    frame = OutputAudioRawFrame(tone(320), 8000, 1)  # 40 ms, 640 bytes
    sent = [await serializer.serialize(frame) for _ in range(5)]
    assert sent[:4] == [None] * 4
    assert chunk_of(sent[4]) == tone(320) * 5  # 3200 bytes: 100 ms
    odd = OutputAudioRawFrame(tone(500), 8000, 1)  # 1000 bytes each
    sent = [await serializer.serialize(odd) for _ in range(4)]
    assert sent[:3] == [None] * 3 and len(chunk_of(sent[3])) == 3840  # 160 bytes held back
    tail = chunk_of(await serializer.serialize(flush_audio_frame()))
    assert len(tail) == 3200 and tail[:160] == (tone(500) * 4)[3840:] and not any(tail[160:])
    assert await serializer.serialize(flush_audio_frame()) is None  # nothing left


async def test_exotel_interruption_drops_held_audio_and_end_flushes_it() -> None:
    serializer = await ready(RobustExotelSerializer("MZ1"), 8000)
    await serializer.serialize(OutputAudioRawFrame(tone(400), 8000, 1))
    clear = await serializer.serialize(InterruptionFrame())
    assert json.loads(str(clear)) == {"event": "clear", "stream_sid": "MZ1"}
    assert await serializer.serialize(EndFrame()) is None  # the stale audio is gone
    await serializer.serialize(OutputAudioRawFrame(tone(400), 8000, 1))
    assert len(chunk_of(await serializer.serialize(EndFrame()))) == 3200
    await serializer.serialize(OutputAudioRawFrame(tone(400), 8000, 1))
    assert await serializer.serialize(CancelFrame()) is None


async def test_exotel_resamples_pipeline_audio_to_its_rate() -> None:
    serializer = await ready(RobustExotelSerializer("MZ1"), 16000)
    frame = OutputAudioRawFrame(tone(640, 16000), 16000, 1)  # 40 ms
    sent = [await serializer.serialize(frame) for _ in range(10)]
    chunks = [chunk_of(m) for m in sent if m is not None]
    assert chunks and all(len(c) % 320 == 0 and len(c) >= 3200 for c in chunks)


async def test_exotel_units_scale_with_its_sample_rate() -> None:
    serializer = RobustExotelSerializer("MZ1", sample_rate=16000)
    assert (serializer.unit, serializer.min_chunk) == (640, 6400)
    assert serializer.max_chunk % 640 == 0 and serializer.max_chunk <= 100_000


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=4000), min_size=1, max_size=40))
def test_exotel_chunks_always_follow_the_rule(sample_counts: list[int]) -> None:
    async def run() -> tuple[list[bytes], int]:
        serializer = await ready(RobustExotelSerializer("MZ1"), 8000)
        chunks = []
        for count in sample_counts:
            message = await serializer.serialize(OutputAudioRawFrame(bytes(2 * count), 8000, 1))
            if message is not None:
                chunks.append(chunk_of(message))
        final = await serializer.serialize(EndFrame())
        if final is not None:
            chunks.append(chunk_of(final))
        return chunks, 2 * sum(sample_counts)

    chunks, total = asyncio.run(run())
    assert all(len(c) % 320 == 0 and 3200 <= len(c) <= 100_000 for c in chunks)
    assert total <= sum(len(c) for c in chunks) < total + 3200


async def test_vobiz_media_play_and_clear() -> None:
    serializer = await ready(RobustPlivoSerializer("S1", "C1"), 8000)
    media = {
        "event": "media",
        "sequenceNumber": 42,
        "streamId": "S1",
        "media": {"track": "inbound", "timestamp": "1700000000000", "chunk": 41},
    }
    media["media"]["payload"] = base64.b64encode(ULAW).decode()  # type: ignore[index]
    frame = await serializer.deserialize(json.dumps(media))
    assert isinstance(frame, InputAudioRawFrame)
    assert frame.audio == pcm([ulaw_to_linear(b) for b in ULAW])
    play = json.loads(str(await serializer.serialize(OutputAudioRawFrame(tone(160), 8000, 1))))
    assert play["event"] == "playAudio" and play["streamId"] == "S1"
    assert play["media"]["contentType"] == "audio/x-mulaw" and play["media"]["sampleRate"] == 8000
    assert len(base64.b64decode(play["media"]["payload"])) == 160
    clear = json.loads(str(await serializer.serialize(InterruptionFrame())))
    assert clear == {"event": "clearAudio", "streamId": "S1"}
    assert await serializer.serialize(EndFrame()) is None
    played = {"event": "playedStream", "streamId": "S1", "name": "x"}
    assert await serializer.deserialize(json.dumps(played)) is None
    assert serializer.guard.skipped == 0


async def test_browser_audio_both_ways() -> None:
    serializer = await ready(BrowserFrameSerializer(), 16000)
    audio = tone(320, 16000)
    frame = await serializer.deserialize(audio)
    assert isinstance(frame, InputAudioRawFrame)
    assert (frame.audio, frame.sample_rate) == (audio, 16000)
    assert await serializer.serialize(OutputAudioRawFrame(audio, 16000, 1)) == audio
    resampled = await serializer.serialize(OutputAudioRawFrame(tone(2400, 24000), 24000, 1))
    assert isinstance(resampled, bytes) and 0 < len(resampled) <= 3200


async def test_browser_control_messages() -> None:
    serializer = await ready(BrowserFrameSerializer(), 16000)
    frame = await serializer.deserialize(json.dumps({"type": "dtmf", "digit": "7"}))
    assert isinstance(frame, InputDTMFFrame) and frame.button is KeypadEntry.SEVEN
    frame = await serializer.deserialize(json.dumps({"type": "hangup"}))
    assert isinstance(frame, InputTransportMessageFrame) and frame.message == {"type": "hangup"}
    assert await serializer.deserialize(json.dumps({"type": "start", "token": "t"})) is None
    assert json.loads(str(await serializer.serialize(InterruptionFrame()))) == {"type": "clear"}
    note = OutputTransportMessageFrame(message={"type": "transcript", "text": "hi"})
    assert json.loads(str(await serializer.serialize(note))) == note.message
    assert await serializer.serialize(flush_audio_frame()) is None
    assert serializer.guard.skipped == 0


@pytest.mark.parametrize(
    "message",
    [b"\x01\x02\x03", "nope", json.dumps({"type": "dtmf", "digit": "A"}), json.dumps({"t": 1})],
)
async def test_browser_malformed_messages_are_skipped(message: str | bytes) -> None:
    serializer = await ready(BrowserFrameSerializer(), 16000)
    assert await serializer.deserialize(message) is None
    assert serializer.guard.skipped == 1
