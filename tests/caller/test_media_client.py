"""The Media Streams client against a scripted app on a real socket, on one event loop's clock."""

from __future__ import annotations

import asyncio
import base64

import pytest

from switchboard.caller.media_client import FRAME_SECONDS, CallEnded, MediaStreamClient
from switchboard.caller.twilio_messages import StreamIdentity
from tests.caller.fake_twilio_app import FakeTwilioApp, Script, serving, tone


def stream_url(server: str) -> str:
    return f"ws://{server}/media/simulator/call-1"


async def test_start_message_has_twilios_shape() -> None:
    app = FakeTwilioApp(Script(greeting_seconds=0))
    identity = StreamIdentity(custom_parameters={"to": "+15550100"})
    async with serving(app) as server, MediaStreamClient(stream_url(server), identity) as phone:
        await phone.say(b"\x10" * 160)
    connected, start = (r.message for r in app.received[:2])
    assert connected == {"event": "connected", "protocol": "Call", "version": "1.0.0"}
    assert start == {
        "event": "start",
        "sequenceNumber": "1",
        "start": {
            "accountSid": identity.account_sid,
            "streamSid": identity.stream_sid,
            "callSid": identity.call_sid,
            "tracks": ["inbound"],
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            "customParameters": {"to": "+15550100"},
        },
        "streamSid": identity.stream_sid,
    }
    assert identity.call_sid.startswith("CA") and len(identity.call_sid) == 34
    media = app.media()[0].message
    assert media["media"]["track"] == "inbound"
    assert (media["sequenceNumber"], media["media"]["chunk"], media["media"]["timestamp"]) == (
        "2",
        "1",
        "0",
    )
    assert len(base64.b64decode(media["media"]["payload"])) == 160
    stop = app.received[-1].message
    assert stop["event"] == "stop"
    assert stop["stop"] == {"accountSid": identity.account_sid, "callSid": identity.call_sid}
    numbers = [int(r.message["sequenceNumber"]) for r in app.received[1:]]
    assert numbers == list(range(1, len(numbers) + 1))


async def test_media_is_paced_in_real_time_without_drift() -> None:
    """Fifty frames with sound, then silence: each arrives on its 20 ms deadline."""
    app = FakeTwilioApp(Script(greeting_seconds=0, reply=False))
    async with serving(app) as server, MediaStreamClient(stream_url(server)) as phone:
        sent = await phone.say(b"\x10" * 160 * 50)
    arrivals = [r.at for r in app.media()]
    assert len(arrivals) >= 50
    first = arrivals[0]
    lateness = [at - (first + n * FRAME_SECONDS) for n, at in enumerate(arrivals)]
    assert max(abs(x) for x in lateness) < 0.04, lateness
    assert abs(lateness[49]) < 0.02  # no drift over a second
    assert sent.ended_at - sent.started_at == pytest.approx(50 * FRAME_SECONDS, abs=0.02)
    assert sent.seconds == 1.0


async def test_clear_cuts_playback_and_releases_pending_marks() -> None:
    """A 2 s greeting arrives at once; the app clears it 0.5 s in (25 frames later)."""
    app = FakeTwilioApp(
        Script(greeting_seconds=2.0, clear_after_frames=25, mark_after_greeting="greeting-done")
    )
    async with serving(app) as server:
        async with MediaStreamClient(stream_url(server), speech_gap=0.1) as phone:
            deadline = asyncio.get_running_loop().time() + 5
            assert await phone.wait_agent_audio(phone.started_at, deadline) is not None
            assert await phone.wait_agent_done(deadline)
        assert phone.received["clear"] == 1
        [clear] = phone.playback.clears
        [speech] = phone.playback.speeches
        assert speech.cleared
        heard = speech.ends_at - speech.starts_at
        assert heard == pytest.approx(clear.at - speech.starts_at)
        assert heard == pytest.approx(0.5, abs=0.1)
        assert clear.dropped_seconds == pytest.approx(2.0 - heard, abs=0.01)
        played = sum(len(c.audio) for c in phone.playback.chunks) / 8000
        assert played == pytest.approx(heard, abs=0.02)
        # The mark queued behind the greeting is echoed at once on the clear.
        [echo] = app.media("mark")
        assert echo.message["mark"] == {"name": "greeting-done"}
        assert echo.at - clear.at < 0.05


async def test_mark_is_echoed_when_the_audio_before_it_has_played() -> None:
    app = FakeTwilioApp(Script(greeting_seconds=0.3, mark_after_greeting="m1"))
    async with serving(app) as server:
        async with MediaStreamClient(stream_url(server), speech_gap=0.1) as phone:
            deadline = asyncio.get_running_loop().time() + 5
            assert await phone.wait_agent_audio(phone.started_at, deadline) is not None
            assert await phone.wait_agent_done(deadline)
        [echo] = app.media("mark")
        assert echo.at >= phone.playback.play_end - 0.001
        assert echo.at - phone.playback.play_end < 0.05
        assert phone.marks_echoed == ["m1"]


async def test_dtmf_goes_out_on_the_next_tick() -> None:
    app = FakeTwilioApp(Script(greeting_seconds=0))
    async with serving(app) as server, MediaStreamClient(stream_url(server)) as phone:
        phone.send_dtmf("5")
        await phone.say(b"\x10" * 160)
    [dtmf] = app.media("dtmf")
    assert dtmf.message["dtmf"] == {"track": "inbound_track", "digit": "5"}
    assert dtmf.message["streamSid"] == phone.identity.stream_sid


async def test_the_agent_hanging_up_ends_the_call() -> None:
    app = FakeTwilioApp(Script(greeting_seconds=0, reply_delay=0.05, hang_up_after_replies=1))
    async with serving(app) as server:
        phone = MediaStreamClient(stream_url(server))
        async with phone:
            await phone.say(await tone(0.2))
            loop = asyncio.get_running_loop()
            assert await phone.wait_closed(loop.time() + 5)
            with pytest.raises(CallEnded):
                await phone.say(await tone(0.2))
        assert phone.hung_up_by == "agent"
        assert app.media("stop") == []


@pytest.mark.parametrize(
    "raw",
    ["not json", '{"no": "event"}', '{"event": "media"}', '{"event": "media", "media": {}}', "[1]"],
)
def test_malformed_messages_are_skipped(raw: str) -> None:
    phone = MediaStreamClient("ws://unused")
    phone.handle_message(raw, 0.0)
    phone.handle_message('{"event": "media", "media": {"payload": ""}}', 0.0)
    assert phone.playback.chunks == []
