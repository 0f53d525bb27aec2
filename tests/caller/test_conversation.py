"""Whole calls against the scripted app: dialling, turn-taking, latency, gaps, recordings."""

from __future__ import annotations

import base64
import wave
from pathlib import Path

import httpx
import numpy as np
import pytest

from switchboard.caller.conversation import (
    CallFailed,
    CallRejected,
    ConversationSettings,
    RenderedLine,
    parse_twiml,
    place_call,
    run_conversation,
    save_recordings,
)
from switchboard.caller.twilio_messages import StreamIdentity
from tests.caller.fake_twilio_app import FakeTwilioApp, Script, serving, tone

FAST = ConversationSettings(reply_timeout=5, greeting_timeout=5, speech_gap=0.15)


async def lines(*seconds: float) -> list[RenderedLine]:
    return [RenderedLine(f"line {n}", await tone(s)) for n, s in enumerate(seconds, start=1)]


def test_twiml_connect_names_the_stream_and_its_parameters() -> None:
    answer = parse_twiml(
        '<?xml version="1.0" encoding="UTF-8"?><Response><Connect>'
        '<Stream url="ws://127.0.0.1:8000/media/simulator/call_01J">'
        '<Parameter name="agent_id" value="ag_1"/></Stream></Connect></Response>'
    )
    assert answer.stream_url == "ws://127.0.0.1:8000/media/simulator/call_01J"
    assert answer.call_id == "call_01J"
    assert answer.parameters == {"agent_id": "ag_1"}


@pytest.mark.parametrize(
    ("markup", "said"),
    [
        ("<Response><Say>All lines are busy.</Say><Hangup/></Response>", "All lines are busy."),
        ("<Response><Reject/></Response>", ""),
    ],
)
def test_twiml_that_hangs_up_is_a_rejection(markup: str, said: str) -> None:
    with pytest.raises(CallRejected) as caught:
        parse_twiml(markup)
    assert caught.value.said == said


def test_an_answer_that_is_not_twiml_fails_the_call() -> None:
    with pytest.raises(CallFailed):
        parse_twiml("<html>oops")
    with pytest.raises(CallFailed):
        parse_twiml("<Response><Pause/></Response>")


async def test_the_webhook_carries_twilios_fields() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(500, text="boom")

    identity = StreamIdentity()
    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        with pytest.raises(CallFailed, match="HTTP 500"):
            await place_call(http, "127.0.0.1:9", "+15550100", identity, ConversationSettings())
    [request] = seen
    assert str(request.url) == "http://127.0.0.1:9/telephony/simulator/inbound"
    form = dict(httpx.QueryParams(request.content.decode()))
    assert form["CallSid"] == identity.call_sid
    assert form["AccountSid"] == identity.account_sid
    assert form["To"] == "+15550100"
    assert form["From"].startswith("+")


async def test_voice_to_voice_is_the_apps_reply_delay() -> None:
    """The app answers 300 ms after each line's last sound: the caller measures that."""
    app = FakeTwilioApp(Script(greeting_seconds=0.3, reply_delay=0.3, reply_seconds=0.4))
    async with serving(app) as server:
        report = await run_conversation(server, "+15550100", await lines(0.4, 0.3), FAST)
    assert app.webhooks[0]["To"] == "+15550100"
    assert report.greeting is not None and report.greeting.seconds == pytest.approx(0.3, abs=0.02)
    assert [t.line for t in report.turns] == ["line 1", "line 2"]
    for turn, line_end, reply_sent in zip(
        report.turns, app.line_ends, app.replies_sent, strict=True
    ):
        app_delay = reply_sent - line_end  # 0.3 s, or a little more if the loop was busy
        assert app_delay >= 0.299
        assert turn.voice_to_voice == pytest.approx(app_delay, abs=0.03)
        assert turn.voice_to_voice == pytest.approx(0.3, abs=0.1)
        assert turn.reply is not None and turn.reply.finished
        assert turn.reply.seconds == pytest.approx(0.4, abs=0.02)
        assert turn.reply.gaps_ms == ()
        assert turn.sent.seconds == pytest.approx(0.4 if turn.index == 1 else 0.3)
    assert report.hung_up_by == "caller"
    # Between the line and the reply the phone kept sending, and sent silence.
    line_end, reply_at = app.line_ends[0], app.replies_sent[0]
    between = [r for r in app.media() if line_end < r.at < reply_at]
    assert len(between) >= 0.3 / 0.02 - 3
    assert {base64.b64decode(r.message["media"]["payload"]) for r in between} == {b"\xff" * 160}


async def test_a_stalled_reply_shows_as_a_gap_of_the_stalls_length() -> None:
    """The app sends 0.2 s of a reply, then the rest 0.5 s later: a 0.3 s underrun."""
    app = FakeTwilioApp(
        Script(greeting_seconds=0, reply_delay=0.1, reply_seconds=0.6, reply_stall=0.5)
    )
    settings = ConversationSettings(reply_timeout=5, greeting_timeout=0.1, speech_gap=0.4)
    async with serving(app) as server:
        report = await run_conversation(server, "agent-1", await lines(0.3), settings)
    assert report.greeting is None
    [turn] = report.turns
    assert turn.reply is not None
    [gap] = turn.reply.gaps_ms
    assert gap == pytest.approx(300, abs=30)
    assert turn.reply.seconds == pytest.approx(0.6 + gap / 1000, abs=0.03)


async def test_no_reply_within_the_timeout_is_reported_not_waited_for() -> None:
    app = FakeTwilioApp(Script(greeting_seconds=0, reply=False))
    settings = ConversationSettings(reply_timeout=0.3, greeting_timeout=0.1, speech_gap=0.1)
    async with serving(app) as server:
        report = await run_conversation(server, "agent-1", await lines(0.2), settings)
    [turn] = report.turns
    assert turn.reply is None and turn.voice_to_voice is None


async def test_the_agent_hanging_up_ends_the_conversation_early() -> None:
    app = FakeTwilioApp(Script(greeting_seconds=0.1, reply_delay=0.05, hang_up_after_replies=1))
    async with serving(app) as server:
        report = await run_conversation(server, "agent-1", await lines(0.2, 0.2, 0.2), FAST)
    assert len(report.turns) == 1
    assert report.hung_up_by == "agent"


async def test_recordings_hold_what_was_heard_where_it_was_heard(tmp_path: Path) -> None:
    app = FakeTwilioApp(Script(greeting_seconds=0.4, reply_delay=0.2, reply_seconds=0.4))
    async with serving(app) as server:
        report = await run_conversation(server, "agent-1", await lines(0.3), FAST)
    heard_path, both_path = await save_recordings(
        report, tmp_path / "heard.wav", tmp_path / "both.wav"
    )
    with wave.open(str(heard_path)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 8000)
        heard = np.frombuffer(wav.readframes(wav.getnframes()), "<i2")
    assert len(heard) / 8000 == pytest.approx(report.ended_at - report.started_at, abs=0.01)

    def loud(start: float, end: float) -> bool:
        return bool(np.abs(heard[round(start * 8000) : round(end * 8000)]).mean() > 1000)

    greeting_at = report.greeting.first_audio_at - report.started_at if report.greeting else 0
    reply = report.turns[0].reply
    assert reply is not None
    reply_at = reply.first_audio_at - report.started_at
    assert loud(greeting_at + 0.05, greeting_at + 0.35)
    assert not loud(greeting_at + 0.45, reply_at - 0.05)
    assert loud(reply_at + 0.05, reply_at + 0.35)

    with wave.open(str(both_path)) as wav:
        assert wav.getnchannels() == 2
        both = np.frombuffer(wav.readframes(wav.getnframes()), "<i2").reshape(-1, 2)
    sent = report.turns[0].sent
    line_at = round((sent.started_at - report.started_at) * 8000)
    assert np.abs(both[line_at + 400 : line_at + 2000, 0]).mean() > 1000  # the caller, left
    assert np.abs(both[: line_at - 400, 0]).mean() < 100  # silence before the line
    assert np.array_equal(both[: len(heard), 1], heard)  # the agent, right
