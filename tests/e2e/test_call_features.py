"""What an agent's configuration changes in a live call: provider fallback, business hours,
the caller's language, and calls from a web page."""

from __future__ import annotations

import asyncio
import contextlib

import httpx
import pytest

from switchboard.caller.conversation import run_conversation
from switchboard.calls import service as calls
from switchboard.db.models import CallStatus
from tests.e2e.live import LiveServer, caller_line, dial, events_of, fake_agent, wait_finished


async def test_a_failing_llm_falls_back_and_the_call_goes_on(server: LiveServer) -> None:
    await server.agent(
        "+15550129",
        **fake_agent(
            ["hello", "bye"],
            [{"text": "never said"}],
            llm={"provider": "fake", "options": {"fail_after": 0, "replies": [{"text": "x"}]}},
            fallbacks={
                "llm": [
                    {
                        "provider": "fake",
                        "options": {
                            "replies": [
                                {"text": "The backup answers."},
                                {"text": "Bye.", "tool_calls": [{"name": "end_call"}]},
                            ]
                        },
                    }
                ]
            },
        ),
    )
    lines = [await caller_line("opening_hours"), await caller_line("cancel_order")]
    report = await run_conversation(server.address, "+15550129", lines)
    call = await server.finished_call(report.call_id)
    events = await events_of(server, call)
    async with server.services.sessions() as session:
        turns = await calls.transcript_of(session, call.id)
    assert call.status is CallStatus.COMPLETED and call.end_reason == "agent_ended"
    switched = [data for name, data in events if name == "provider_switched"]
    assert switched and switched[0]["kind"] == "llm"
    assert "The backup answers." in [t.text for t in turns if t.role == "agent"]


async def test_out_of_hours_callers_hear_the_message_and_the_call_ends(server: LiveServer) -> None:
    await server.agent(
        "+15550130",
        **fake_agent(
            [],
            [{"text": "unused"}],
            business_hours={
                "timezone": "UTC",
                "weekly": {},
                "out_of_hours_message": "We are closed, call tomorrow.",
            },
        ),
    )
    phone = await dial(server, "+15550130")
    try:
        assert await phone.wait_closed(asyncio.get_running_loop().time() + 15)
    finally:
        await phone.hang_up()
    call = await wait_finished(server, phone)
    async with server.services.sessions() as session:
        turns = await calls.transcript_of(session, call.id)
    assert call.end_reason == "out_of_hours"
    assert [(t.role, t.text) for t in turns] == [("agent", "We are closed, call tomorrow.")]


async def test_the_agent_follows_the_caller_into_another_supported_language(
    server: LiveServer,
) -> None:
    await server.agent(
        "+15550131",
        **fake_agent(
            ["hola quiero cancelar", "adios"],
            [{"text": "Claro."}, {"text": "Adios.", "tool_calls": [{"name": "end_call"}]}],
            supported_languages=["es"],
        )
        | {
            "stt": {
                "provider": "fake",
                "options": {
                    "transcripts": ["hola quiero cancelar", "adios"],
                    "languages": ["es", "es"],
                    "latency_ms": 50,
                },
            }
        },
    )
    lines = [await caller_line("cancel_order"), await caller_line("opening_hours")]
    report = await run_conversation(server.address, "+15550131", lines)
    call = await server.finished_call(report.call_id)
    events = await events_of(server, call)
    switches = [data for name, data in events if name == "language_switched"]
    assert switches == [{"previous": "en", "current": "es"}]  # once, not on every turn
    assert call.end_reason == "agent_ended"


async def test_a_browser_call_with_its_token(server: LiveServer) -> None:
    """The dashboard's path: ask for a call, open the socket with the token, talk in 16 kHz PCM."""
    import json

    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    from switchboard.providers.phone_line import read_wav
    from tests.e2e.live import AUDIO

    agent_id = await server.agent(
        "+15550132",
        **fake_agent(["bye"], [{"text": "Bye.", "tool_calls": [{"name": "end_call"}]}]),
    )
    auth = {"Authorization": f"Bearer {server.key}"}
    async with httpx.AsyncClient(base_url=server.url, headers=auth) as api:
        started = (await api.post("/api/v1/calls/browser", json={"agent_id": agent_id})).json()
        forged = (await api.post("/api/v1/calls/browser", json={"agent_id": agent_id})).json()
    assert started["sample_rate"] == 16000 and started["media_url"].startswith("ws://")

    async with connect(forged["media_url"]) as ws:  # a forged token is refused
        await ws.send(json.dumps({"type": "start", "token": started["token"] + "x"}))
        with pytest.raises(ConnectionClosed):
            await ws.recv()
    async with connect(forged["media_url"]) as ws:  # and so is another call's token
        await ws.send(json.dumps({"type": "start", "token": started["token"]}))
        with pytest.raises(ConnectionClosed):
            await ws.recv()

    speech = read_wav(AUDIO / "cancel_order.wav").pcm
    silence = bytes(640)
    heard = 0
    async with connect(started["media_url"]) as ws:
        await ws.send(json.dumps({"type": "start", "token": started["token"]}))
        loop = asyncio.get_running_loop()
        start = loop.time()

        async def talk() -> None:
            for n, offset in enumerate(range(0, 16000 * 12 * 2, 640)):  # 12 s of 20 ms frames
                chunk = (
                    speech[offset - 32000 : offset - 32000 + 640] if offset >= 32000 else silence
                )
                await ws.send(chunk if len(chunk) == 640 else silence)
                await asyncio.sleep(max(0.0, start + (n + 1) * 0.02 - loop.time()))

        sender = asyncio.create_task(talk())
        try:
            async for message in ws:
                if isinstance(message, bytes):
                    heard += len(message)
        except ConnectionClosed:
            pass
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
            await sender
    call = await server.finished_call(started["call_id"])
    assert call.status is CallStatus.COMPLETED and call.end_reason == "agent_ended"
    assert heard / 2 / 16000 > 1.0  # greeting and goodbye, as 16 kHz PCM
    # The refused sockets changed nothing: the other call still rings, holding its slot,
    # until its own page connects or its media timer ends it.
    async with server.services.sessions() as session:
        untouched = await calls.get_call(session, server.workspace_id, forged["call_id"])
    assert untouched.status is CallStatus.RINGING
    assert await server.services.slots.in_use(server.workspace_id) == 1
