"""Calls end to end: a real server, the real Twilio Media Streams protocol over a real
WebSocket, Pipecat's real pipeline (VAD, turn-taking, interruptions) with fake STT/LLM/TTS of
set latency, and the call record each call leaves."""

from __future__ import annotations

import asyncio
import os
import wave
from pathlib import Path

import httpx
import numpy as np
import pytest

from switchboard.caller.conversation import ConversationSettings, run_conversation
from switchboard.calls import service as calls
from switchboard.config import Settings
from switchboard.db.models import CallStatus
from tests.e2e.live import caller_line, fake_agent, live_server


async def test_a_call_is_answered_talks_ends_and_leaves_a_complete_record(
    settings: Settings,
) -> None:
    async with live_server(settings) as server:
        await server.agent(
            "+15550111",
            **fake_agent(
                ["what are your opening hours", "thanks goodbye"],
                [
                    {"text": "We open at nine."},
                    {"text": "Goodbye!", "tool_calls": [{"name": "end_call"}]},
                ],
            ),
        )
        lines = [await caller_line("opening_hours"), await caller_line("cancel_order")]
        report = await run_conversation(server.address, "+15550111", lines)
        call = await server.finished_call(report.call_id)
        async with server.services.sessions() as session:
            events = [e.type for e in await calls.events_of(session, call.id)]
            turns = await calls.transcript_of(session, call.id)
        recording = Path(call.recording_path or "")

    assert report.greeting is not None
    assert [t.reply is not None for t in report.turns] == [True, True]
    assert report.hung_up_by == "agent"
    assert call.status is CallStatus.COMPLETED
    assert call.end_reason == "agent_ended"
    assert [(t.role, t.text) for t in turns] == [
        ("agent", "Hello, you are through to the test line."),
        ("user", "what are your opening hours"),
        ("agent", "We open at nine."),
        ("user", "thanks goodbye"),
        ("agent", "Goodbye!"),
    ]
    assert events[0] == "call_started" and events[-1] == "call_ended"
    for expected in ("user_spoke", "agent_spoke", "tool_called", "tool_result", "latency"):
        assert expected in events
    assert events.index("tool_called") < events.index("tool_result")
    latency = call.latency["turns"]
    assert len(latency) == 2
    assert all(t["voice_to_voice_ms"] > 0 for t in latency)
    assert all(t["llm_ttfb_ms"] >= 99 for t in latency)  # the fake LLM's set 100 ms
    assert call.usage["tts_characters"] == sum(len(t.text) for t in turns if t.role == "agent")

    with wave.open(str(recording)) as wav:
        assert (wav.getnchannels(), wav.getframerate(), wav.getsampwidth()) == (2, 8000, 2)
        stereo = np.frombuffer(wav.readframes(wav.getnframes()), "<i2").reshape(-1, 2)
    seconds = len(stereo) / 8000
    assert abs(seconds - (report.ended_at - report.started_at)) < 1.5
    caller_energy, agent_energy = np.abs(stereo).mean(axis=0)
    assert caller_energy > 50 and agent_energy > 500  # both sides were recorded, apart


async def test_the_call_api_serves_the_record(settings: Settings) -> None:
    async with live_server(settings) as server:
        await server.agent(
            "+15550112",
            **fake_agent(["bye"], [{"text": "Bye.", "tool_calls": [{"name": "end_call"}]}]),
        )
        report = await run_conversation(
            server.address, "+15550112", [await caller_line("cancel_order")]
        )
        auth = {"Authorization": f"Bearer {server.key}"}
        async with httpx.AsyncClient(base_url=server.url, headers=auth) as api:
            listed = (await api.get("/api/v1/calls")).json()["data"]
            one = (await api.get(f"/api/v1/calls/{report.call_id}")).json()
            transcript = (await api.get(f"/api/v1/calls/{report.call_id}/transcript")).json()
            events = (await api.get(f"/api/v1/calls/{report.call_id}/events")).json()
            audio = await api.get(f"/api/v1/calls/{report.call_id}/recording")
    assert [c["id"] for c in listed] == [report.call_id]
    assert one["status"] == "completed" and one["has_recording"] is True
    assert one["duration_seconds"] > 0
    assert [t["role"] for t in transcript] == ["agent", "user", "agent"]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert audio.headers["content-type"] == "audio/wav"
    assert audio.content[:4] == b"RIFF"


async def test_an_unknown_number_hears_an_apology(settings: Settings) -> None:
    async with live_server(settings) as server, httpx.AsyncClient() as http:
        response = await http.post(
            f"{server.url}/telephony/simulator/inbound",
            data={"CallSid": "CA1", "From": "+15550100", "To": "+15559999"},
        )
    assert response.status_code == 200
    assert "<Say>" in response.text and "<Hangup" in response.text
    assert "not in service" in response.text


async def test_a_socket_for_an_unknown_call_is_closed_alone(settings: Settings) -> None:
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    async with live_server(settings) as server:
        async with connect(f"ws://{server.address}/media/simulator/call_nope") as ws:
            try:
                await ws.recv()
            except ConnectionClosed as closed:
                assert closed.rcvd is not None and closed.rcvd.code == 1008
        async with httpx.AsyncClient() as http:
            health = await http.get(f"{server.url}/health")
    assert health.json() == {"status": "ok"}


async def test_the_embedded_providers_hold_a_real_conversation(settings: Settings) -> None:
    """faster-whisper hears the caller, SmolLM2 answers, Piper speaks: all offline."""
    if "postgres" in settings.resolved_database_url:
        pytest.skip("one database is enough for the slow embedded-model call")
    async with live_server(settings) as server:
        await server.agent(
            "+15550113",
            greeting="Hello, thanks for calling.",
            system_prompt="You are a dental receptionist. We are open nine to five.",
        )
        report = await run_conversation(
            server.address,
            "+15550113",
            [await caller_line("opening_hours")],
            ConversationSettings(reply_timeout=60, greeting_timeout=60),
        )
        call = await server.finished_call(report.call_id)
        async with server.services.sessions() as session:
            turns = await calls.transcript_of(session, report.call_id)
    assert report.greeting is not None
    assert report.turns[0].reply is not None
    heard = [t.text.lower() for t in turns if t.role == "user"]
    assert heard and "opening hours" in heard[0]
    assert [t.role for t in turns][:3] == ["agent", "user", "agent"]
    assert call.status is CallStatus.COMPLETED
    assert call.recording_path
    assert await asyncio.to_thread(os.path.getsize, call.recording_path) > 44
