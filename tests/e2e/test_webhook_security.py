"""Attacks on the carrier webhooks, through a real server on loopback.

Twilio's inbound call is built only from what Twilio signed, and the same call
never rings twice; a Vobiz nonce is taken once, across server processes; a
status callback moves only a call its signer owns, on its own carrier; bodies
are capped as they stream; Exotel's secret stays out of the access log; a
workspace without an account, or whose secrets cannot be decrypted, is refused
with a log line that says which.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from cryptography.fernet import Fernet
from twilio.request_validator import RequestValidator  # type: ignore[import-untyped]

from switchboard.auth.service import get_or_create_workspace
from switchboard.calls import service as calls
from switchboard.config import Settings
from switchboard.crypto import SecretBox
from switchboard.db.models import CallStatus
from switchboard.telephony.accounts import put_account
from switchboard.telephony.credentials import CarrierName
from switchboard.telephony.streams import STREAM_TOKEN
from tests.conftest import REDIS_URL
from tests.e2e.carrier_phones import ring_exotel, ring_vobiz
from tests.e2e.live import LiveServer, fake_agent, live_server

QUIET = fake_agent([], [{"text": "x"}])
TWILIO_SID = "AC" + "1" * 32
TWILIO_TOKEN = "twilio-auth-token-0123456789abcd"
OTHER_TWILIO_TOKEN = "another-workspaces-twilio-token-99"
VOBIZ_TOKEN = "vobiz-auth-token-0123456789abcdef"
EXOTEL_SECRET = "exotel-webhook-secret-0123456789"


def twilio_signed(token: str, url: str, params: dict[str, str]) -> dict[str, str]:
    return {"X-Twilio-Signature": RequestValidator(token).compute_signature(url, params)}


async def accounts(server: LiveServer, workspace_id: str, **carriers: dict[str, str]) -> None:
    async with server.services.sessions() as session:
        for name, values in carriers.items():
            await put_account(session, server.services.box, workspace_id, CarrierName(name), values)


@pytest.fixture
async def server(sqlite_settings: Settings) -> AsyncIterator[LiveServer]:
    async with live_server(sqlite_settings) as live:
        await accounts(
            live,
            live.workspace_id,
            twilio={"account_sid": TWILIO_SID, "auth_token": TWILIO_TOKEN},
            vobiz={"auth_id": "MA_SEC", "auth_token": VOBIZ_TOKEN},
            exotel={
                "account_sid": "sb",
                "api_key": "k",
                "api_token": "t",
                "webhook_secret": EXOTEL_SECRET,
            },
        )
        yield live


async def call_count(server: LiveServer, workspace_id: str | None = None) -> int:
    async with server.services.sessions() as session:
        found = await calls.list_calls(
            session, workspace_id or server.workspace_id, limit=50, after=None
        )
    return len(found)


async def test_twilio_builds_the_call_only_from_the_form_it_signed(server: LiveServer) -> None:
    await server.agent("+14155550180", CarrierName.TWILIO.value, **QUIET)
    url = f"{server.url}/telephony/twilio/inbound"
    fields = {"CallSid": "CA" + "a" * 32, "From": "+14155550100", "To": "+14155550180"}
    async with httpx.AsyncClient() as http:
        # A signature that covers the URL and no fields, with the call's fields in a JSON body
        # (or in the query string of another URL) that nothing signed.
        as_json = await http.post(url, json=fields, headers=twilio_signed(TWILIO_TOKEN, url, {}))
        queried = f"{url}?{urlencode(fields)}"
        caller = {"Caller": "+14155550100"}
        in_query = await http.post(
            queried, data=caller, headers=twilio_signed(TWILIO_TOKEN, queried, caller)
        )
    assert as_json.status_code == 422 and as_json.json()["field"] == "CallSid"
    assert in_query.status_code == 422 and in_query.json()["field"] == "CallSid"
    assert await call_count(server) == 0


async def test_a_replayed_inbound_webhook_opens_no_second_stream(server: LiveServer) -> None:
    await server.agent("+14155550181", CarrierName.TWILIO.value, **QUIET)
    url = f"{server.url}/telephony/twilio/inbound"
    form = {"CallSid": "CA" + "b" * 32, "From": "+14155550100", "To": "+14155550181"}
    async with httpx.AsyncClient() as http:
        first = await http.post(url, data=form, headers=twilio_signed(TWILIO_TOKEN, url, form))
        again = await http.post(url, data=form, headers=twilio_signed(TWILIO_TOKEN, url, form))
    assert first.status_code == 200 and "<Stream" in first.text
    assert again.status_code == 409 and "<Stream" not in again.text
    assert again.headers["content-type"] == "application/problem+json"
    assert await call_count(server) == 1
    assert await server.services.slots.in_use(server.workspace_id) == 1


async def test_status_callbacks_move_only_calls_their_signer_owns(server: LiveServer) -> None:
    async with server.services.sessions() as session:
        other, _ = await get_or_create_workspace(session, "other")
        await session.commit()
    await accounts(
        server, other.id, twilio={"account_sid": TWILIO_SID, "auth_token": OTHER_TWILIO_TOKEN}
    )
    await server.agent("+14155550182", CarrierName.TWILIO.value, **QUIET)
    inbound = f"{server.url}/telephony/twilio/inbound"
    call_sid = "CA" + "c" * 32
    form = {"CallSid": call_sid, "From": "+14155550100", "To": "+14155550182"}
    status_url = f"{server.url}/telephony/twilio/status"
    canceled = {"CallSid": call_sid, "CallStatus": "canceled"}
    async with httpx.AsyncClient() as http:
        rang = await http.post(
            inbound, data=form, headers=twilio_signed(TWILIO_TOKEN, inbound, form)
        )
        assert rang.status_code == 200
        by_other = await http.post(
            status_url,
            data=canceled,
            headers=twilio_signed(OTHER_TWILIO_TOKEN, status_url, canceled),
        )
        by_simulator = await http.post(f"{server.url}/telephony/simulator/status", data=canceled)
        unchanged = (await _only_call(server)).status
        by_owner = await http.post(
            status_url, data=canceled, headers=twilio_signed(TWILIO_TOKEN, status_url, canceled)
        )
    assert by_other.status_code == 403
    assert by_simulator.status_code == 204  # no simulator call has that id: nothing to move
    assert unchanged is CallStatus.RINGING
    assert by_owner.status_code == 204
    assert (await _only_call(server)).status is CallStatus.CANCELED


async def _only_call(server: LiveServer) -> Any:
    async with server.services.sessions() as session:
        (call,) = await calls.list_calls(session, server.workspace_id, limit=2, after=None)
    return call


@pytest.fixture(params=["database", pytest.param("redis", marks=pytest.mark.redis)])
def nonce_store(request: pytest.FixtureRequest) -> dict[str, Any]:
    if request.param == "database":
        return {}
    if REDIS_URL is None:
        pytest.skip("SWITCHBOARD_TEST_REDIS_URL is not set: Redis test not run")
    return {"redis_url": REDIS_URL}


async def test_a_vobiz_nonce_is_taken_once_by_any_server_process(
    settings: Settings, nonce_store: dict[str, Any]
) -> None:
    """Two server processes on one database (and Redis): a signed request replayed to the
    other one is refused too, whatever its body says."""
    async with (
        live_server(settings, **nonce_store) as first,
        live_server(settings, **nonce_store) as second,
    ):
        await accounts(
            first, first.workspace_id, vobiz={"auth_id": "MA", "auth_token": VOBIZ_TOKEN}
        )
        await first.agent("+14155550183", CarrierName.VOBIZ.value, **QUIET)
        nonce = uuid.uuid4().hex
        form = {"CallUUID": str(uuid.uuid4()), "From": "14155550100", "To": "14155550183"}
        async with httpx.AsyncClient() as http:
            taken = await ring_vobiz(http, first.url, VOBIZ_TOKEN, form, nonce=nonce)
            # The same signature and nonce (Vobiz signs neither the body nor a time), a new call.
            replay = {**form, "CallUUID": str(uuid.uuid4())}
            again = await ring_vobiz(http, first.url, VOBIZ_TOKEN, replay, nonce=nonce)
            elsewhere = await ring_vobiz(http, second.url, VOBIZ_TOKEN, replay, nonce=nonce)
            fresh = await ring_vobiz(http, second.url, VOBIZ_TOKEN, replay, nonce=nonce + "1")
    assert taken.status_code == 200
    assert (again.status_code, elsewhere.status_code) == (403, 403)
    assert fresh.status_code == 200


@pytest.fixture
def access_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.INFO, logger="uvicorn.access")
    caplog.set_level(logging.INFO, logger="uvicorn.error")
    yield caplog


async def test_exotels_secret_stays_out_of_the_access_log(
    sqlite_settings: Settings, access_log: pytest.LogCaptureFixture
) -> None:
    options = {"log_level": "info", "log_config": None, "access_log": True}
    async with live_server(sqlite_settings, uvicorn_options=options) as live:
        await accounts(
            live,
            live.workspace_id,
            exotel={
                "account_sid": "sb",
                "api_key": "k",
                "api_token": "t",
                "webhook_secret": EXOTEL_SECRET,
            },
        )
        await live.agent("+919876543291", CarrierName.EXOTEL.value, **QUIET)
        query = {"CallSid": "exo-log-1", "CallFrom": "09812345678", "CallTo": "09876543291"}
        async with httpx.AsyncClient() as http:
            answer = await ring_exotel(http, live.url, EXOTEL_SECRET, query)
        assert answer.status_code == 200
        media_url = json.loads(answer.text)["url"]
        from websockets.asyncio.client import connect

        async with connect(media_url) as ws:  # its stream token rides in the query too
            await ws.close()
    lines = [r.getMessage() for r in access_log.records if r.name.startswith("uvicorn")]
    assert any("/telephony/exotel/inbound" in line for line in lines), lines
    assert any("WebSocket /media/exotel/" in line for line in lines), lines
    assert not [line for line in lines if EXOTEL_SECRET in line]
    stream_token = parse_qs(urlsplit(media_url).query)[STREAM_TOKEN][0]
    assert not [line for line in lines if stream_token in line]
    assert any("token=[redacted]" in line for line in lines)


async def chunks(total: int, size: int = 16 * 1024) -> AsyncIterator[bytes]:
    for _ in range(total // size):
        yield b"x" * size


async def test_bodies_are_capped_as_they_stream(server: LiveServer) -> None:
    auth = {"Authorization": f"Bearer {server.key}", "Content-Type": "application/json"}
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    async with httpx.AsyncClient(base_url=server.url) as http:
        # No Content-Length: chunked transfer encoding, counted as it arrives.
        api = await http.post("/api/v1/agents", content=chunks(2_000_000), headers=auth)
        webhook = await http.post(
            "/telephony/twilio/inbound", content=chunks(128 * 1024), headers=form
        )
        declared = await http.post(
            "/telephony/twilio/inbound", content=b"x" * (128 * 1024), headers=form
        )
        small = await http.post("/api/v1/agents", content=b"{", headers=auth)
    for response in (api, webhook, declared):
        assert response.status_code == 413, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["field"] == "body"
    assert small.status_code == 400  # a body under the cap reaches the app as before


async def ring_twilio_in(server: LiveServer, workspace_id: str, number: str) -> httpx.Response:
    """Bind ``number`` to an agent of ``workspace_id`` and ring it, signed with our token."""
    await replace(server, workspace_id=workspace_id).agent(
        number, CarrierName.TWILIO.value, **QUIET
    )
    url = f"{server.url}/telephony/twilio/inbound"
    form = {"CallSid": "CA" + uuid.uuid4().hex, "From": "+14155550100", "To": number}
    async with httpx.AsyncClient() as http:
        return await http.post(url, data=form, headers=twilio_signed(TWILIO_TOKEN, url, form))


async def test_a_workspace_without_an_account_is_refused_with_a_log_line(
    server: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    async with server.services.sessions() as session:
        bare, _ = await get_or_create_workspace(session, "no-accounts")
        await session.commit()
    response = await ring_twilio_in(server, bare.id, "+14155550184")
    assert response.status_code == 403
    assert f"workspace {bare.id} has no twilio account" in caplog.text
    assert await call_count(server, bare.id) == 0


async def test_secrets_that_cannot_be_decrypted_are_logged_as_such(
    server: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    """As after a change of SWITCHBOARD_SECRET_KEY: the stored token was sealed with another."""
    async with server.services.sessions() as session:
        rekeyed, _ = await get_or_create_workspace(session, "rekeyed")
        await session.commit()
        await put_account(
            session,
            SecretBox(Fernet.generate_key()),
            rekeyed.id,
            CarrierName.TWILIO,
            {"account_sid": TWILIO_SID, "auth_token": TWILIO_TOKEN},
        )
    response = await ring_twilio_in(server, rekeyed.id, "+14155550185")
    assert response.status_code == 500
    assert "twilio credentials cannot be decrypted" in caplog.text
    assert "SWITCHBOARD_SECRET_KEY" in caplog.text
    assert TWILIO_TOKEN not in caplog.text and TWILIO_TOKEN not in response.text
    assert await call_count(server, rekeyed.id) == 0


async def outbound_twilio_call(server: LiveServer, carrier_call_id: str) -> str:
    """A placed outbound Twilio call of the server's workspace, as the dialling job leaves it."""
    from switchboard.calls.service import create_call, update_fields
    from switchboard.db.base import utcnow
    from switchboard.db.models import CallDirection

    agent_id = await server.agent("+14155550190", CarrierName.TWILIO.value, **QUIET)
    async with server.services.sessions() as session:
        call = await create_call(
            session,
            workspace_id=server.workspace_id,
            agent_id=agent_id,
            agent_version=1,
            direction=CallDirection.OUTBOUND,
            carrier=CarrierName.TWILIO.value,
            from_number="+14155550190",
            to_number="+14155550191",
            status=CallStatus.QUEUED,
            dial={"machine_detection": "off"},
        )
        await update_fields(session, call.id, carrier_call_id=carrier_call_id, placed_at=utcnow())
    return call.id


async def test_an_outbound_calls_answer_url_takes_only_its_carriers_signed_request(
    server: LiveServer,
) -> None:
    async with server.services.sessions() as session:
        other, _ = await get_or_create_workspace(session, "other-signer")
        await session.commit()
    await accounts(
        server, other.id, twilio={"account_sid": TWILIO_SID, "auth_token": OTHER_TWILIO_TOKEN}
    )
    sid = "CA" + "f" * 32
    call_id = await outbound_twilio_call(server, sid)
    url = f"{server.url}/telephony/twilio/answer/{call_id}"
    form = {"CallSid": sid, "CallStatus": "in-progress", "AnsweredBy": "human"}
    async with httpx.AsyncClient() as http:
        unsigned = await http.post(url, data=form)
        by_other = await http.post(
            url, data=form, headers=twilio_signed(OTHER_TWILIO_TOKEN, url, form)
        )
        simulator_path = f"{server.url}/telephony/simulator/answer/{call_id}"
        wrong_carrier = await http.post(simulator_path, data=form)
        unknown = await http.post(
            f"{server.url}/telephony/twilio/answer/call_nope",
            data=form,
            headers=twilio_signed(
                TWILIO_TOKEN, f"{server.url}/telephony/twilio/answer/call_nope", form
            ),
        )
        other_sid = {**form, "CallSid": "CA" + "e" * 32}
        mismatched = await http.post(
            url, data=other_sid, headers=twilio_signed(TWILIO_TOKEN, url, other_sid)
        )
        answered = await http.post(url, data=form, headers=twilio_signed(TWILIO_TOKEN, url, form))
        again = await http.post(url, data=form, headers=twilio_signed(TWILIO_TOKEN, url, form))
    assert (unsigned.status_code, by_other.status_code) == (403, 403)
    assert (wrong_carrier.status_code, unknown.status_code) == (404, 404)
    assert mismatched.status_code == 409
    assert answered.status_code == 200 and "<Stream" in answered.text
    assert "stream_token" in answered.text
    assert again.status_code == 409 and "<Stream" not in again.text


async def test_an_outbound_calls_status_url_moves_only_that_call(server: LiveServer) -> None:
    sid = "CA" + "d" * 32
    call_id = await outbound_twilio_call(server, sid)
    url = f"{server.url}/telephony/twilio/status/{call_id}"
    someone_else = {"CallSid": "CA" + "c" * 32, "CallStatus": "busy"}
    busy = {"CallSid": sid, "CallStatus": "busy"}
    async with httpx.AsyncClient() as http:
        unsigned = await http.post(url, data=busy)
        mismatched = await http.post(
            url, data=someone_else, headers=twilio_signed(TWILIO_TOKEN, url, someone_else)
        )
        status_now = (await _call(server, call_id)).status
        moved = await http.post(url, data=busy, headers=twilio_signed(TWILIO_TOKEN, url, busy))
    assert (unsigned.status_code, mismatched.status_code) == (403, 409)
    assert status_now is CallStatus.QUEUED
    assert moved.status_code == 204
    assert (await _call(server, call_id)).status is CallStatus.BUSY


async def _call(server: LiveServer, call_id: str) -> Any:
    async with server.services.sessions() as session:
        return await calls.get_call(session, server.workspace_id, call_id)
