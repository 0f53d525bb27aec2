"""The phone and Pipecat's own Twilio serializer understand each other, message by message."""

from __future__ import annotations

import json
from types import SimpleNamespace

from pipecat.frames.frames import (
    InputAudioRawFrame,
    InputDTMFFrame,
    InterruptionFrame,
    OutputAudioRawFrame,
)
from pipecat.serializers.twilio import TwilioFrameSerializer

from switchboard.caller import twilio_messages as twilio
from switchboard.caller.media_client import MediaStreamClient


async def serializer() -> TwilioFrameSerializer:
    params = TwilioFrameSerializer.InputParams(auto_hang_up=False)
    result = TwilioFrameSerializer("MZ1", params=params)
    await result.setup(SimpleNamespace(audio_in_sample_rate=8000))  # type: ignore[arg-type]
    return result


async def test_pipecat_reads_the_phones_media_and_keys() -> None:
    pipecat = await serializer()
    identity = twilio.StreamIdentity()
    media = twilio.media_message(identity, 2, 1, 0, b"\x10" * 160)
    frame = await pipecat.deserialize(json.dumps(media))
    assert isinstance(frame, InputAudioRawFrame)
    assert (frame.sample_rate, len(frame.audio)) == (8000, 320)
    key = await pipecat.deserialize(json.dumps(twilio.dtmf_message(identity, 3, "7")))
    assert isinstance(key, InputDTMFFrame) and key.button.value == "7"


async def test_the_phone_plays_pipecats_audio_and_obeys_its_clear() -> None:
    pipecat = await serializer()
    phone = MediaStreamClient("ws://unused")
    audio = OutputAudioRawFrame(b"\x00\x10" * 8000, sample_rate=8000, num_channels=1)  # 1 s
    message = await pipecat.serialize(audio)
    assert message is not None
    phone.handle_message(message, now=0.0)
    assert phone.playback.play_end == 1.0
    clear = await pipecat.serialize(InterruptionFrame())
    assert clear is not None
    phone.handle_message(clear, now=0.25)
    assert phone.received == {"media": 1, "clear": 1}
    assert phone.playback.clears[0].dropped_seconds == 0.75
