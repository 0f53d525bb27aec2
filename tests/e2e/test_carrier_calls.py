"""Calls end to end over Exotel AgentStream and Vobiz's Plivo-style streams: a real server,
the carrier's webhook as the carrier sends it (Exotel: GET with ``?token=`` and national
numbers; Vobiz: a signed form POST), its markup followed to the media socket, and the
carrier's own framing both ways, through Pipecat's real pipeline with fake STT/LLM/TTS.

SQLite only: the storage these touch is covered on both databases by ``test_calls``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from switchboard.calls import service as calls
from switchboard.config import Settings
from switchboard.db.models import Call, CallStatus
from switchboard.telephony.accounts import carrier_for, put_account
from switchboard.telephony.credentials import CarrierName
from switchboard.telephony.streams import STREAM_TOKEN
from switchboard.telephony.vobiz import vobiz_signature
from tests.conftest import wait_until
from tests.e2e.carrier_framing import ExotelFraming, VobizFraming
from tests.e2e.carrier_phones import (
    CarrierPhone,
    exotel_socket,
    ring_exotel,
    ring_vobiz,
    vobiz_stream,
)
from tests.e2e.live import LONG_REPLY, LiveServer, caller_line, fake_agent, live_server
from tests.telephony.helpers import FakeApi

EXOTEL_SECRET = "exotel-webhook-secret-0123456789"
VOBIZ_AUTH_TOKEN = "vobiz-auth-token-0123456789abcdef"
GREETING = "Hello, you are through to the test line."
TWO_TURNS: dict[str, Any] = fake_agent(
    ["what are your opening hours", "thanks goodbye"],
    [
        {"text": "We open at nine."},
        {"text": "Goodbye!", "tool_calls": [{"name": "end_call"}]},
    ],
)


@pytest.fixture
async def server(sqlite_settings: Settings) -> AsyncIterator[LiveServer]:
    async with live_server(sqlite_settings) as live:
        async with live.services.sessions() as session:
            await put_account(
                session,
                live.services.box,
                live.workspace_id,
                CarrierName.EXOTEL,
                {
                    "account_sid": "switchboard-e2e",
                    "api_key": "e2e-key",
                    "api_token": "e2e-token",
                    "webhook_secret": EXOTEL_SECRET,
                },
            )
            await put_account(
                session,
                live.services.box,
                live.workspace_id,
                CarrierName.VOBIZ,
                {"auth_id": "MA_E2E", "auth_token": VOBIZ_AUTH_TOKEN},
            )
        yield live


async def bind(server: LiveServer, carrier: CarrierName, number: str, **fields: Any) -> str:
    return await server.agent(number, carrier.value, **fields)


async def dial_exotel(server: LiveServer, number: str, caller: str) -> CarrierPhone[ExotelFraming]:
    """Ring as Exotel's Voicebot applet does (national numbers), connect to the answer."""
    framing = ExotelFraming(from_number=caller, to_number=number)
    query = {
        "CallSid": framing.call_sid,
        "CallFrom": caller,
        "CallTo": number,
        "Direction": "incoming",
        "CallStatus": "in-progress",
    }
    async with httpx.AsyncClient() as http:
        answer = await ring_exotel(http, server.url, EXOTEL_SECRET, query)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"
    url, parameters = exotel_socket(answer)
    framing.custom_parameters = parameters  # Exotel moves the URL's parameters into the start
    phone = CarrierPhone(url, framing)
    await phone.connect()
    return phone


async def dial_vobiz(
    server: LiveServer, number: str, caller: str, *, flat_start: bool
) -> CarrierPhone[VobizFraming]:
    """Ring as Vobiz does (a signed form POST), connect to the ``<Stream>`` it answers."""
    framing = VobizFraming(from_number=caller, to_number=number, flat_start=flat_start)
    form = {
        "CallUUID": framing.call_id,
        "From": caller,
        "To": number,
        "Direction": "inbound",
        "CallStatus": "ringing",
    }
    async with httpx.AsyncClient() as http:
        answer = await ring_vobiz(http, server.url, VOBIZ_AUTH_TOKEN, form)
    assert answer.status_code == 200, answer.text
    stream = vobiz_stream(answer)
    assert stream.attributes["bidirectional"] == "true"
    assert stream.attributes["contentType"] == "audio/x-mulaw;rate=8000"
    framing.extra_headers = stream.attributes.get("extraHeaders", "")
    phone = CarrierPhone(stream.url, framing)
    await phone.connect()
    return phone


async def converse(phone: CarrierPhone[Any], malformed: list[str | bytes]) -> None:
    """Hear the greeting, send ``malformed`` mid-call, say two lines; the agent hangs up."""
    loop = asyncio.get_running_loop()
    assert await phone.wait_agent_audio(0, loop.time() + 15) is not None, "no greeting"
    assert await phone.wait_agent_done(loop.time() + 15)
    for junk in malformed:
        phone.send_raw(junk)
    sent = await phone.say((await caller_line("opening_hours")).ulaw)
    assert await phone.wait_agent_audio(sent, loop.time() + 15) is not None, "no reply"
    assert await phone.wait_agent_done(loop.time() + 15)
    sent = await phone.say((await caller_line("cancel_order")).ulaw)
    assert await phone.wait_agent_audio(sent, loop.time() + 15) is not None, "no goodbye"
    assert await phone.wait_closed(loop.time() + 15), "the agent did not hang up"


async def finished(
    server: LiveServer, phone: CarrierPhone[Any]
) -> tuple[Call, list[tuple[str, str]]]:
    call = await server.finished_call(phone.call_id)
    async with server.services.sessions() as session:
        turns = await calls.transcript_of(session, call.id)
    return call, [(t.role, t.text) for t in turns]


def payloads(phone: CarrierPhone[Any], event: str) -> list[bytes]:
    return [
        base64.b64decode(r.message["media"]["payload"])
        for r in phone.received
        if r.message.get("event") == event
    ]


def full_exotel_chunk(pcm: bytes) -> bool:
    """Exotel plays without gaps only chunks of whole 20 ms units, 100 ms to 100 KB."""
    return len(pcm) % 320 == 0 and 3200 <= len(pcm) <= 100_000


def skipped(caplog: pytest.LogCaptureFixture, carrier: str) -> list[str]:
    """The kinds of malformed message the server skipped (it logs the first of each)."""
    prefix = f"{carrier} media: skipped a malformed message ("
    return [
        r.getMessage().removeprefix(prefix).split(")")[0]
        for r in caplog.records
        if r.getMessage().startswith(prefix)
    ]


EXPECTED_TURNS = [
    ("agent", GREETING),
    ("user", "what are your opening hours"),
    ("agent", "We open at nine."),
    ("user", "thanks goodbye"),
    ("agent", "Goodbye!"),
]


async def test_an_exotel_call_talks_in_full_pcm16_chunks_and_the_agent_ends_it(
    server: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="switchboard.telephony.serializers")
    await bind(server, CarrierName.EXOTEL, "+919876543210", **TWO_TURNS)
    # Exotel writes Indian numbers nationally; the record keeps them in E.164.
    phone = await dial_exotel(server, "09876543210", caller="09812345678")
    sid = phone.framing.stream_sid
    malformed: list[str | bytes] = [
        "not json",
        json.dumps({"event": "media", "stream_sid": sid}),
        json.dumps({"event": "media", "stream_sid": sid, "media": {"payload": "%%"}}),
        json.dumps({"event": "media", "stream_sid": sid, "media": {"payload": "AAAA"}}),  # 3 B
        json.dumps({"event": "wat", "stream_sid": sid}),
        b"\x00\x01binary",
    ]
    try:
        await converse(phone, malformed)
    finally:
        await phone.hang_up()
    call, turns = await finished(server, phone)

    chunks = payloads(phone, "media")
    assert len(chunks) >= 3  # greeting, reply and goodbye each end with a flush at least
    assert all(full_exotel_chunk(c) for c in chunks), sorted(map(len, chunks))
    assert all(r.message.get("stream_sid") == sid for r in phone.received)
    assert set(phone.events()) <= {"media", "clear", "mark"}
    assert not phone.unreadable
    assert call.status is CallStatus.COMPLETED and call.end_reason == "agent_ended"
    assert (call.carrier, call.from_number, call.to_number) == (
        "exotel",
        "+919812345678",
        "+919876543210",
    )
    assert call.carrier_call_id == phone.framing.call_sid
    assert turns == EXPECTED_TURNS
    assert skipped(caplog, "exotel") == [
        "invalid JSON",
        "media without a payload",
        "payload that is not base64",
        "odd-length PCM16 payload",
        "unknown event 'wat'",
        "binary message where text was expected",
    ]


async def test_a_vobiz_call_plays_mulaw_and_the_agent_ends_it(
    server: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="switchboard.telephony.serializers")
    await bind(server, CarrierName.VOBIZ, "+14158675311", **TWO_TURNS)
    # Vobiz may send numbers without their "+" (docs.vobiz.ai/applications).
    phone = await dial_vobiz(server, "14158675311", caller="14158675309", flat_start=True)
    stream_id = phone.framing.stream_id
    malformed: list[str | bytes] = [
        "not json",
        json.dumps({"event": "media", "streamId": stream_id}),
        json.dumps({"event": "media", "streamId": stream_id, "media": {"payload": "%%"}}),
        json.dumps({"event": "wat", "streamId": stream_id}),
        "[1, 2]",
        b"\x00\x01binary",
    ]
    try:
        await converse(phone, malformed)
    finally:
        await phone.hang_up()
    call, turns = await finished(server, phone)

    plays = [r.message for r in phone.received if r.message.get("event") == "playAudio"]
    assert len(plays) >= 3 and all(payloads(phone, "playAudio"))
    assert all(
        p["media"]["contentType"] == "audio/x-mulaw" and p["media"]["sampleRate"] == 8000
        for p in plays
    )
    assert all(r.message.get("streamId") == stream_id for r in phone.received)
    assert set(phone.events()) <= {"playAudio", "clearAudio", "checkpoint"}
    assert call.status is CallStatus.COMPLETED and call.end_reason == "agent_ended"
    assert (call.carrier, call.from_number, call.to_number) == (
        "vobiz",
        "+14158675309",
        "+14158675311",
    )
    assert turns == EXPECTED_TURNS
    assert skipped(caplog, "vobiz") == [
        "invalid JSON",
        "media without a payload",
        "payload that is not base64",
        "unknown event 'wat'",
        "JSON that is not an object",
        "binary message where text was expected",
    ]


@pytest.mark.parametrize("carrier", [CarrierName.EXOTEL, CarrierName.VOBIZ])
async def test_talking_over_the_agent_clears_the_carriers_buffer(
    server: LiveServer, carrier: CarrierName
) -> None:
    """Barge-in: Exotel hears ``clear``, Vobiz (nested start, as Plivo sends it) ``clearAudio``."""
    agent = fake_agent(
        ["tell me everything", "stop please"],
        [{"text": LONG_REPLY}, {"text": "Sure."}],
        greeting="Hi.",
    )
    phone: CarrierPhone[Any]
    if carrier is CarrierName.EXOTEL:
        await bind(server, carrier, "+919876543211", **agent)
        phone = await dial_exotel(server, "09876543211", caller="09812345678")
    else:
        await bind(server, carrier, "+14158675312", **agent)
        phone = await dial_vobiz(server, "+14158675312", caller="+14158675309", flat_start=False)
    loop = asyncio.get_running_loop()
    try:
        assert await phone.wait_agent_audio(0, loop.time() + 15) is not None
        assert await phone.wait_agent_done(loop.time() + 15)
        sent = await phone.say((await caller_line("opening_hours")).ulaw)
        reply = await phone.wait_agent_audio(sent, loop.time() + 15)
        assert reply is not None
        # Let a second of the long reply reach the phone, then talk over it.
        assert await phone.wait_agent_seconds(reply, 1.0, loop.time() + 15)
        await phone.start_line((await caller_line("cancel_order")).ulaw)

        async def cleared() -> bool:
            return bool(phone.clears)

        async def interruption_recorded() -> bool:
            async with server.services.sessions() as session:
                turns = await calls.transcript_of(session, phone.call_id)
            return any(t.role == "agent" and t.interrupted for t in turns)

        await wait_until(cleared, seconds=10, what=f"a clear from the app on {carrier.value}")
        await wait_until(interruption_recorded, what="the cut-off reply in the transcript")
    finally:
        await phone.hang_up()
    call, turns = await finished(server, phone)
    clear = "clear" if carrier is CarrierName.EXOTEL else "clearAudio"
    assert clear in phone.events()
    assert phone.clears[0] - reply < len(LONG_REPLY) / 30 / 2  # most of it was never played
    assert call.status is CallStatus.COMPLETED and call.end_reason == "caller_hung_up"
    assert turns[:2] == [("agent", "Hi."), ("user", "tell me everything")]
    if carrier is CarrierName.EXOTEL:  # what the chunker held at the clear was dropped, not sent
        assert all(full_exotel_chunk(c) for c in payloads(phone, "media"))


async def test_an_exotel_webhook_without_the_workspace_token_is_refused(
    server: LiveServer,
) -> None:
    await bind(server, CarrierName.EXOTEL, "+919876543212", **fake_agent([], [{"text": "x"}]))
    query = {"CallSid": "exo-1", "CallFrom": "09812345678", "CallTo": "09876543212"}
    async with httpx.AsyncClient() as http:
        wrong = await ring_exotel(http, server.url, "not-the-secret-0123456789", query)
        missing = await http.get(f"{server.url}/telephony/exotel/inbound", params=query)
        basic = await http.get(
            f"{server.url}/telephony/exotel/inbound", params=query, auth=("exotel", "nope")
        )
    assert [r.status_code for r in (wrong, missing, basic)] == [403, 403, 403]
    assert wrong.headers["content-type"] == "application/problem+json"
    async with server.services.sessions() as session:
        assert await calls.list_calls(session, server.workspace_id, limit=10, after=None) == []


async def test_a_vobiz_webhook_with_a_bad_signature_is_refused(server: LiveServer) -> None:
    await bind(server, CarrierName.VOBIZ, "+14158675313", **fake_agent([], [{"text": "x"}]))
    form = {"CallUUID": "vbz-1", "From": "+14158675309", "To": "+14158675313"}
    url = f"{server.url}/telephony/vobiz/inbound"
    other_nonce = {  # the right token, but signed over another nonce than the one sent
        "X-Vobiz-Signature-V3": vobiz_signature(VOBIZ_AUTH_TOKEN, url, "1700000000000"),
        "X-Vobiz-Signature-V3-Nonce": "1700000000001",
    }
    async with httpx.AsyncClient() as http:
        forged = await ring_vobiz(http, server.url, "some-other-accounts-token", form)
        unsigned = await http.post(url, data=form)
        mismatched = await http.post(url, data=form, headers=other_nonce)
    assert [r.status_code for r in (forged, unsigned, mismatched)] == [403, 403, 403]
    assert forged.headers["content-type"] == "application/problem+json"
    async with server.services.sessions() as session:
        assert await calls.list_calls(session, server.workspace_id, limit=10, after=None) == []


async def test_vobiz_fetches_the_transfer_dial_for_its_own_calls_only(server: LiveServer) -> None:
    """The transfer URL our carrier gives Vobiz dials exactly its number for exactly its live
    call, signed by the call's workspace, once: Vobiz's signature leaves the query string out,
    so the URL's own token binds ``to``, and a nonce is taken only once."""
    await bind(server, CarrierName.VOBIZ, "+14158675312", **fake_agent([], [{"text": "x"}]))
    phone = await dial_vobiz(server, "+14158675312", "14158675309", flat_start=False)
    call_uuid = phone.framing.call_id
    try:
        loop = asyncio.get_running_loop()
        assert await phone.wait_agent_audio(0, loop.time() + 15) is not None, "no greeting"
        carrier = await carrier_for(server.services, CarrierName.VOBIZ, server.workspace_id)
        vobiz_api = FakeApi(lambda request: httpx.Response(202, json={"message": "ok"}))
        async with vobiz_api.client() as api_http:
            carrier.http = api_http
            await carrier.transfer(call_uuid, "+14158675300")
        transfer_url = json.loads(vobiz_api.last.content)["aleg_url"]
        assert transfer_url.startswith(f"{server.url}/telephony/vobiz/transfer?")

        async def fetch(url: str, uuid: str = call_uuid, nonce: str | None = None) -> int:
            headers = {}
            if nonce is not None:
                headers = {
                    "X-Vobiz-Signature-V3": vobiz_signature(VOBIZ_AUTH_TOKEN, url, nonce),
                    "X-Vobiz-Signature-V3-Nonce": nonce,
                }
            async with httpx.AsyncClient() as http:
                response = await http.post(url, data={"CallUUID": uuid}, headers=headers)
            if response.status_code == 200:
                assert "<Dial" in response.text and "+14158675300" in response.text
            return response.status_code

        elsewhere = transfer_url.replace("%2B14158675300", "%2B19005550100")
        assert elsewhere != transfer_url
        statuses = [
            await fetch(transfer_url, nonce="n-1"),  # Vobiz, following our URL
            await fetch(transfer_url, nonce="n-1"),  # the same request again: a replay
            await fetch(elsewhere, nonce="n-2"),  # signed, but to a number we never named
            await fetch(transfer_url),  # unsigned
            await fetch(transfer_url, uuid="nope", nonce="n-3"),  # not our call
        ]
        assert statuses == [200, 403, 403, 403, 404]
    finally:
        await phone.hang_up()


async def test_an_exotel_socket_needs_the_token_its_url_carried(server: LiveServer) -> None:
    """Exotel echoes the answer URL's query (the stream token) in its start message; a socket
    on the bare URL, without it, is refused and the call keeps ringing."""
    await bind(server, CarrierName.EXOTEL, "+919876543290", **fake_agent([], [{"text": "x"}]))
    query = {"CallSid": "exo-sec-1", "CallFrom": "09812345678", "CallTo": "09876543290"}
    async with httpx.AsyncClient() as http:
        answer = await ring_exotel(http, server.url, EXOTEL_SECRET, query)
    url, parameters = exotel_socket(answer)
    assert set(parameters) == {STREAM_TOKEN}
    framing = ExotelFraming(from_number="09812345678", to_number="09876543290")
    phone = CarrierPhone(url.split("?", 1)[0], framing)  # the parameters left behind
    await phone.connect()
    try:
        assert await phone.wait_closed(asyncio.get_running_loop().time() + 10)
    finally:
        await phone.hang_up()
    async with server.services.sessions() as session:
        call = await calls.get_call(session, server.workspace_id, phone.call_id)
    assert call.status is CallStatus.RINGING
