"""Attacks on the media sockets and the simulator, through a real server on loopback.

A media socket opens only with the stream token its call's answer carried; a socket
that is refused changes nothing (the call keeps ringing, its slot and media timer
stay); a second socket for a streaming call is refused; a start message with a format
the carrier never sends ends the call cleanly. The simulator and the demo routes do
not exist in production, and where they exist they reach only simulator numbers and
the caller's own workspace.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from switchboard.auth.service import create_api_key, get_or_create_workspace
from switchboard.caller import twilio_messages as twilio
from switchboard.caller.conversation import ConversationSettings, place_call
from switchboard.caller.twilio_messages import StreamIdentity
from switchboard.calls import service as calls
from switchboard.config import Environment, Settings
from switchboard.db.models import Call, CallStatus, Role
from switchboard.telephony.credentials import CarrierName
from switchboard.telephony.streams import STREAM_TOKEN
from switchboard.voice.media import MAX_OPENING_MESSAGES
from tests.conftest import wait_until
from tests.e2e.live import LONG_REPLY, LiveServer, dial, fake_agent, live_server

QUIET_AGENT = fake_agent([], [{"text": "x"}], greeting=LONG_REPLY)
POLICY_VIOLATION = 1008


async def ring(server: LiveServer, number: str, **headers: str) -> tuple[str, dict[str, str]]:
    """Ring ``number`` on the simulator; the media URL and parameters its answer names."""
    async with httpx.AsyncClient(headers=headers) as http:
        answer = await place_call(
            http, server.address, number, StreamIdentity(), ConversationSettings()
        )
    return answer.stream_url, answer.parameters


async def call_of(server: LiveServer, url: str) -> Call:
    async with server.services.sessions() as session:
        return await calls.get_call(session, server.workspace_id, url.rsplit("/", 1)[-1])


async def refused(url: str, *messages: dict[str, Any]) -> int | None:
    """Open ``url``, send ``messages``, and return the close code the server ends it with."""
    async with connect(url) as ws:
        for message in messages:
            await ws.send(json.dumps(message))
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    return closed.value.rcvd.code if closed.value.rcvd else None


def start(token: str | None = None, **media_format: object) -> dict[str, Any]:
    parameters = {STREAM_TOKEN: token} if token is not None else {}
    message = twilio.start_message(StreamIdentity(custom_parameters=parameters), 1)
    message["start"]["mediaFormat"].update(media_format)
    return message


async def test_a_socket_without_the_calls_token_opens_nothing_and_changes_nothing(
    server: LiveServer,
) -> None:
    await server.agent("+15550160", **QUIET_AGENT)
    await server.agent("+15550161", **QUIET_AGENT)
    url, parameters = await ring(server, "+15550160")
    _, other_parameters = await ring(server, "+15550161")
    token, other_token = parameters[STREAM_TOKEN], other_parameters[STREAM_TOKEN]
    attempts = [
        (twilio.connected_message(), start()),  # the call id alone
        (start("1.AAAAAAAAAAAAAAAAAAAAAA"),),  # a made-up token
        (start(token + "x"),),  # a token altered
        (start(other_token),),  # another call's token
    ]
    for messages in attempts:
        assert await refused(url, *messages) == POLICY_VIOLATION
    # Before it is known whose socket this is, it may send only a few messages: the ninth is
    # never read, even when it is the right start.
    stalling = [twilio.connected_message()] * MAX_OPENING_MESSAGES
    assert await refused(url, *stalling, start(token)) == POLICY_VIOLATION
    # A token in the URL is read too, and checked the same way.
    assert await refused(f"{url}?{STREAM_TOKEN}={other_token}", start()) == POLICY_VIOLATION
    # Another carrier's socket path for the same call is refused before any token is read.
    simulator_path = f"/media/{CarrierName.SIMULATOR.value}/"
    twilio_url = url.replace(simulator_path, f"/media/{CarrierName.TWILIO.value}/")
    assert await refused(twilio_url, start(token)) == POLICY_VIOLATION

    call = await call_of(server, url)
    assert call.status is CallStatus.RINGING and call.answered_at is None
    assert call.id in server.services.media_timeouts  # its media timer still runs
    assert await server.services.slots.in_use(server.workspace_id) == 2  # both slots still held

    phone = await dial_with(server, url, parameters)  # the real carrier still gets through
    try:
        await wait_until(lambda: _status(server, url, CallStatus.IN_PROGRESS), what="streaming")
        assert call.id not in server.services.media_timeouts
        # A second socket for a call already streaming is refused, with the right token too.
        assert await refused(url, start(token)) == POLICY_VIOLATION
        assert not phone.closed
    finally:
        await phone.hang_up()
    ended = await server.finished_call(call.id)
    assert ended.end_reason == "caller_hung_up"
    assert await server.services.slots.in_use(server.workspace_id) == 1  # the other call's, only


async def dial_with(server: LiveServer, url: str, parameters: dict[str, str]) -> Any:
    from switchboard.caller.media_client import MediaStreamClient

    phone = MediaStreamClient(url, StreamIdentity(custom_parameters=parameters))
    await phone.connect()
    return phone


async def _status(server: LiveServer, url: str, status: CallStatus) -> bool:
    return (await call_of(server, url)).status is status


@pytest.mark.parametrize(
    "media_format",
    [
        {"sampleRate": 999_999_999},  # a rate to allocate resamplers for
        {"sampleRate": 16000},  # a real rate, but not Twilio's
        {"sampleRate": "8000; DROP"},
        {"sampleRate": -8000},
        {"encoding": "audio/opus"},
        {"encoding": ["audio/x-mulaw"]},
    ],
)
async def test_a_start_with_a_format_the_carrier_never_sends_ends_the_call_cleanly(
    server: LiveServer, media_format: dict[str, object]
) -> None:
    await server.agent("+15550162", **QUIET_AGENT)
    url, parameters = await ring(server, "+15550162")
    code = await refused(url, start(parameters[STREAM_TOKEN], **media_format))
    assert code != POLICY_VIOLATION  # the carrier's own socket: closed normally, not refused
    call = await server.finished_call(url.rsplit("/", 1)[-1])
    assert call.status is CallStatus.FAILED and call.end_reason == "bad_stream_format"
    assert await server.services.slots.in_use(server.workspace_id) == 0


async def test_production_serves_no_simulator_and_no_demo_route(sqlite_settings: Settings) -> None:
    settings = sqlite_settings.model_copy(update={"environment": Environment.PRODUCTION})
    assert not settings.simulator_enabled
    async with live_server(settings) as server:
        # Even a number stored as a simulator one (the embedded providers: fakes are
        # development-only too).
        await server.agent("+15550163")
        async with httpx.AsyncClient(base_url=server.url) as http:
            form = {"CallSid": "CA1", "From": "+15550199", "To": "+15550163"}
            responses = [
                await http.post("/telephony/simulator/inbound", data=form),
                await http.post("/telephony/simulator/status", data={"CallSid": "CA1"}),
                await http.post("/simulator/calls", json={}),
                await http.get("/simulator/calls"),
                await http.get("/demo/dental/appointments"),
            ]
            schema = (await http.get("/openapi.json")).json()
            number = await http.post(
                "/api/v1/numbers",
                json={"number": "+15550164", "carrier": "simulator"},
                headers={"Authorization": f"Bearer {server.key}"},
            )
        assert [r.status_code for r in responses] == [404] * 5
        assert not [p for p in schema["paths"] if "simulator" in p or "/demo/" in p]
        assert number.status_code == 422 and number.json()["field"] == "carrier"
        with pytest.raises(InvalidStatus) as denied:
            async with connect(f"ws://{server.address}/media/simulator/call_x"):
                pass
        assert denied.value.response.status_code == 404
        async with server.services.sessions() as session:
            assert await calls.list_calls(session, server.workspace_id, limit=5, after=None) == []


async def test_a_simulator_webhook_reaches_only_simulator_numbers(server: LiveServer) -> None:
    await server.agent("+14155550170", CarrierName.TWILIO.value, **QUIET_AGENT)
    with pytest.raises(Exception, match="not in service"):
        await ring(server, "+14155550170")
    async with server.services.sessions() as session:
        assert await calls.list_calls(session, server.workspace_id, limit=5, after=None) == []


async def test_dialling_an_agent_by_id_needs_a_key_of_its_own_workspace(server: LiveServer) -> None:
    agent_id = await server.agent("+15550165", **QUIET_AGENT)
    async with server.services.sessions() as session:
        other, _ = await get_or_create_workspace(session, "other")
        _, other_key = await create_api_key(session, other.id, Role.OWNER)
        _, viewer_key = await create_api_key(session, server.workspace_id, Role.VIEWER)
        await session.commit()
    form = {"CallSid": "CA-by-id", "From": "+15550199", "To": agent_id}
    async with httpx.AsyncClient(base_url=server.url) as http:
        anonymous = await http.post("/telephony/simulator/inbound", data=form)
        viewer = await http.post(
            "/telephony/simulator/inbound",
            data=form,
            headers={"Authorization": f"Bearer {viewer_key}"},
        )
        foreign = await http.post(
            "/telephony/simulator/inbound",
            data=form,
            headers={"Authorization": f"Bearer {other_key}"},
        )
    assert (anonymous.status_code, viewer.status_code) == (401, 403)
    assert foreign.status_code == 200 and "not in service" in foreign.text
    async with server.services.sessions() as session:
        assert await calls.list_calls(session, server.workspace_id, limit=5, after=None) == []
    url, parameters = await ring(server, agent_id, Authorization=f"Bearer {server.key}")
    assert STREAM_TOKEN in parameters and (await call_of(server, url)).agent_id == agent_id


async def test_the_local_phone_still_gets_through_with_its_stream_token(
    server: LiveServer,
) -> None:
    """``dial`` follows the answer as Twilio does: the token travels as a custom parameter."""
    await server.agent("+15550166", **QUIET_AGENT)
    phone = await dial(server, "+15550166")
    try:
        await wait_until(
            lambda: _status(server, phone.url, CallStatus.IN_PROGRESS), what="the call streaming"
        )
    finally:
        await phone.hang_up()
