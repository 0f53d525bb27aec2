"""How a live call behaves: barge-in, idle and duration limits, transfer, DTMF, bad frames,
capacity, signatures, and that every call leaves nothing behind when it ends.

These run on SQLite only: the storage they touch is covered on both databases by
``test_calls`` and the integration tests, and each of these holds a call open for seconds.
"""

from __future__ import annotations

import asyncio
import gc

import httpx
import numpy as np

from switchboard.caller.conversation import run_conversation
from switchboard.calls import service as calls
from switchboard.config import Settings
from switchboard.db.models import CallStatus
from switchboard.providers.phone_line import decode_phone_line
from tests.conftest import wait_until
from tests.e2e.live import (
    LONG_REPLY,
    LiveServer,
    caller_line,
    dial,
    events_of,
    fake_agent,
    live_server,
    wait_finished,
)


async def speech_onset(ulaw: bytes) -> float:
    """Seconds into a µ-law line where speech begins (first loud 20 ms)."""
    pcm = np.frombuffer(await decode_phone_line(ulaw), "<i2").astype(np.float64)
    frames = pcm[: len(pcm) // 160 * 160].reshape(-1, 160)
    loud = np.flatnonzero(np.sqrt((frames**2).mean(axis=1)) > 500)
    return float(loud[0]) * 0.02 if len(loud) else 0.0


async def test_caller_speech_stops_agent_audio_at_once(server: LiveServer) -> None:
    await server.agent(
        "+15550121",
        **fake_agent(
            ["tell me everything", "stop please"], [{"text": LONG_REPLY}, {"text": "Sure."}]
        ),
    )
    question, interruption = await caller_line("opening_hours"), await caller_line("cancel_order")
    phone = await dial(server, "+15550121")
    try:
        loop = asyncio.get_running_loop()
        greeting = await phone.wait_agent_audio(0, loop.time() + 15)
        assert greeting is not None and await phone.wait_agent_done(loop.time() + 15)
        sent = await phone.say(question.ulaw)
        reply = await phone.wait_agent_audio(sent.ended_at, loop.time() + 15)
        assert reply is not None
        await asyncio.sleep(1.0)  # let the long reply play for a while, then talk over it
        earlier = len(phone.playback.clears)  # each user turn start clears, even in silence
        barge = asyncio.create_task(phone.say(interruption.ulaw))

        async def cleared() -> bool:
            return len(phone.playback.clears) > earlier

        await wait_until(cleared, seconds=10, what="a clear after barge-in")
        interrupted_at = phone.playback.clears[earlier].at
        spoke_at = (await barge).started_at + await speech_onset(interruption.ulaw)
        long_reply = phone.playback.speech_at(reply)
    finally:
        await phone.hang_up()
    call = await wait_finished(server, phone)
    events = await events_of(server, call)
    print(f"barge-in: agent audio cleared {(interrupted_at - spoke_at) * 1000:.0f} ms after speech")
    # Silero needs start_seconds (0.2 s) of speech before it may interrupt; the rest is ours.
    assert 0 < interrupted_at - spoke_at < 0.3 + 0.2, interrupted_at - spoke_at
    assert long_reply is not None
    assert long_reply.seconds < len(LONG_REPLY) / 30 / 2  # most of it was never played
    assert "interrupted" in [e for e, _ in events]
    async with server.services.sessions() as session:
        turns = await calls.transcript_of(session, call.id)
    assert any(t.role == "agent" and t.interrupted for t in turns)


async def test_a_silent_caller_is_reprompted_then_hung_up_on(server: LiveServer) -> None:
    await server.agent(
        "+15550122",
        **fake_agent(
            [],
            [{"text": "unused"}],
            pipeline={"idle_reprompt_seconds": 1, "idle_hangup_seconds": 2.5},
        ),
    )
    phone = await dial(server, "+15550122")
    try:
        assert await phone.wait_closed(asyncio.get_running_loop().time() + 20)
    finally:
        await phone.hang_up()
    call = await wait_finished(server, phone)
    events = [e for e, _ in await events_of(server, call)]
    assert call.status is CallStatus.COMPLETED and call.end_reason == "idle_timeout"
    assert events.count("idle_reprompt") == 2
    assert "idle_hang_up" in events
    assert phone.hung_up_by == "agent"


async def test_a_call_ends_at_its_maximum_duration(server: LiveServer) -> None:
    await server.agent(
        "+15550123",
        **fake_agent(
            [],
            [{"text": "unused"}],
            pipeline={
                "max_call_seconds": 10,
                "idle_reprompt_seconds": 60,
                "idle_hangup_seconds": 120,
            },
        ),
    )
    phone = await dial(server, "+15550123")
    loop = asyncio.get_running_loop()
    try:
        assert await phone.wait_closed(loop.time() + 25)
        lasted = loop.time() - phone.started_at
    finally:
        await phone.hang_up()
    call = await wait_finished(server, phone)
    assert call.end_reason == "max_duration"
    assert 10 <= lasted < 20
    assert "max_duration_reached" in [e for e, _ in await events_of(server, call)]


async def test_transfer_hands_the_call_to_the_department(server: LiveServer) -> None:
    await server.agent(
        "+15550124",
        **fake_agent(
            ["sales please"],
            [
                {
                    "text": "Connecting you.",
                    "tool_calls": [{"name": "transfer_call", "arguments": {"department": "sales"}}],
                }
            ],
            transfer_destinations=[{"name": "sales", "number": "+14158675309"}],
        ),
    )
    report = await run_conversation(
        server.address, "+15550124", [await caller_line("transfer_sales")]
    )
    call = await server.finished_call(report.call_id)
    events = dict(await events_of(server, call))
    assert call.status is CallStatus.TRANSFERRED and call.end_reason == "transferred"
    assert events["transferred"] == {"department": "sales", "to": "+14158675309"}
    assert events["tool_result"]["status"] == "ok"
    simulated = server.app.state.simulator.calls[call.carrier_call_id]
    assert simulated.transferred_to == "+14158675309"
    assert simulated.posted == ["completed"]


async def test_key_presses_and_malformed_frames_do_not_break_the_call(server: LiveServer) -> None:
    await server.agent(
        "+15550125",
        **fake_agent(["bye"], [{"text": "Bye.", "tool_calls": [{"name": "end_call"}]}]),
    )
    phone = await dial(server, "+15550125")
    loop = asyncio.get_running_loop()
    try:
        assert await phone.wait_agent_audio(0, loop.time() + 15) is not None
        ws = phone._ws
        assert ws is not None
        for junk in (
            "not json",
            '{"event": "media"}',
            '{"event": "media", "media": {"payload": "%%"}}',
            '{"event": "wat"}',
            "[1, 2]",
        ):
            await ws.send(junk)
        await ws.send(b"\x00\x01binary")
        phone.send_dtmf("7")
        await phone.wait_agent_done(loop.time() + 15)
        await phone.say((await caller_line("cancel_order")).ulaw)
        assert await phone.wait_closed(loop.time() + 15)
    finally:
        await phone.hang_up()
    call = await wait_finished(server, phone)
    events = await events_of(server, call)
    assert call.status is CallStatus.COMPLETED and call.end_reason == "agent_ended"
    assert ("dtmf", {"digit": "7"}) in events


async def test_over_capacity_callers_hear_busy_and_are_recorded(sqlite_settings: Settings) -> None:
    async with live_server(sqlite_settings, max_concurrent_calls=1) as server:
        await server.agent("+15550126", **fake_agent([], [{"text": "unused"}]))
        first = await dial(server, "+15550126")
        try:
            async with httpx.AsyncClient() as http:
                busy = await http.post(
                    f"{server.url}/telephony/simulator/inbound",
                    data={"CallSid": "CA2", "From": "+15550100", "To": "+15550126"},
                )
            assert "<Say>" in busy.text and "busy" in busy.text
        finally:
            await first.hang_up()
        await wait_finished(server, first)
        async with server.services.sessions() as session:
            rows = await calls.list_calls(session, server.workspace_id, limit=10, after=None)
        assert sorted((c.status.value, c.end_reason) for c in rows) == [
            ("completed", "caller_hung_up"),
            ("rejected", "capacity_server"),
        ]
        assert await server.services.slots.total() == 0


async def test_a_twilio_webhook_without_a_valid_signature_is_refused(server: LiveServer) -> None:
    async with server.services.sessions() as session:
        from switchboard.db.models import Agent, PhoneNumber
        from switchboard.telephony.accounts import put_account
        from switchboard.telephony.credentials import CarrierName

        agent_id = await server.agent("+15550127", **fake_agent([], [{"text": "x"}]))
        session.add(
            PhoneNumber(
                workspace_id=server.workspace_id,
                number="+14158675310",
                carrier="twilio",
                agent_id=agent_id,
            )
        )
        await session.commit()
        assert await session.get(Agent, agent_id) is not None
        await put_account(
            session,
            server.services.box,
            server.workspace_id,
            CarrierName.TWILIO,
            {"account_sid": "AC" + "0" * 32, "auth_token": "t" * 32},
        )
    form = {"CallSid": "CA3", "From": "+14158675309", "To": "+14158675310"}
    async with httpx.AsyncClient() as http:
        unsigned = await http.post(f"{server.url}/telephony/twilio/inbound", data=form)
        forged = await http.post(
            f"{server.url}/telephony/twilio/inbound",
            data=form,
            headers={"X-Twilio-Signature": "bm9wZQ=="},
        )
    assert unsigned.status_code == 403 and forged.status_code == 403
    assert unsigned.headers["content-type"] == "application/problem+json"
    async with server.services.sessions() as session:
        assert await calls.list_calls(session, server.workspace_id, limit=10, after=None) == []


async def test_nothing_is_left_behind_however_calls_end(server: LiveServer) -> None:
    """Agent hang-up, caller hang-up and a dropped socket: no task, socket or slot survives."""
    await server.agent(
        "+15550128",
        **fake_agent(["bye"], [{"text": "Bye.", "tool_calls": [{"name": "end_call"}]}]),
    )
    baseline = {t.get_name() for t in asyncio.all_tasks()}
    loop = asyncio.get_running_loop()

    agent_ends = await dial(server, "+15550128")
    await agent_ends.wait_agent_audio(0, loop.time() + 15)
    await agent_ends.wait_agent_done(loop.time() + 15)
    await agent_ends.say((await caller_line("cancel_order")).ulaw)
    assert await agent_ends.wait_closed(loop.time() + 15)
    await agent_ends.hang_up()

    caller_ends = await dial(server, "+15550128")
    await caller_ends.wait_agent_audio(0, loop.time() + 15)
    await caller_ends.hang_up()

    dropped = await dial(server, "+15550128")
    await dropped.wait_agent_audio(0, loop.time() + 15)
    assert dropped._ws is not None
    dropped._ws.transport.abort()  # the network goes away: no stop message, no close frame
    await dropped.hang_up()

    records = [await wait_finished(server, p) for p in (agent_ends, caller_ends, dropped)]
    assert [r.status for r in records] == [CallStatus.COMPLETED] * 3
    assert [r.end_reason for r in records][:2] == ["agent_ended", "caller_hung_up"]
    assert await server.services.slots.total() == 0
    current = asyncio.current_task()

    def leftover() -> set[str]:
        return {t.get_name() for t in asyncio.all_tasks() if t is not current} - baseline

    async def wound_down() -> bool:
        return not leftover()

    await wait_until(wound_down, seconds=10, what=f"call tasks ending: {leftover()}")
    gc.collect()
    from pipecat.pipeline.worker import PipelineWorker

    assert not [o for o in gc.get_objects() if isinstance(o, PipelineWorker)]
