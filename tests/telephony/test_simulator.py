"""The simulator carrier against the fake carrier API it talks to, callbacks and all."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from urllib.parse import parse_qs
from xml.etree import ElementTree

import httpx
import pytest
from fastapi import FastAPI

from switchboard.api import problems
from switchboard.errors import ExternalStatusError
from switchboard.telephony.carrier import CallOutcome, PlaceCallRequest
from switchboard.telephony.simulator import SimulatorCarrier
from switchboard.telephony.simulator_api import (
    CarrierSimulator,
    behaviour_for,
    create_simulator_router,
)
from switchboard.telephony.twilio import stream_twiml
from tests.telephony.helpers import FakeApi, webhook

ANSWER = "http://sb.test/telephony/simulator/answer/call_1"
STATUS = "http://sb.test/telephony/simulator/status"
TWIML = stream_twiml("ws://sb.test/media/simulator/call_1", {"call_id": "call_1"})


def our_server(request: httpx.Request) -> httpx.Response:
    """What the simulator calls back: our answer webhook (TwiML) and status webhook."""
    if request.url.path.startswith("/telephony/simulator/answer"):
        return httpx.Response(200, text=TWIML, headers={"content-type": "application/xml"})
    return httpx.Response(204)


@dataclass
class Rig:
    carrier: SimulatorCarrier
    simulator: CarrierSimulator
    callbacks: FakeApi
    api: httpx.AsyncClient

    def statuses(self, call_id: str) -> list[str]:
        forms = [parse_qs(r.content.decode()) for r in self.callbacks.requests]
        return [
            f["CallStatus"][0]
            for r, f in zip(self.callbacks.requests, forms, strict=True)
            if r.url.path == "/telephony/simulator/status" and f["CallSid"] == [call_id]
        ]


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    callbacks = FakeApi(our_server)
    async with callbacks.client() as callback_http:
        simulator = CarrierSimulator(
            callback_http, callback_origin="http://sb.test", ring_seconds=0.01
        )
        app = FastAPI()
        problems.install(app)
        app.include_router(create_simulator_router(simulator))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sb.test") as api:
            carrier = SimulatorCarrier(None, api, api_base_url="http://sb.test/simulator")
            yield Rig(carrier, simulator, callbacks, api)
        await simulator.aclose()


async def until(condition: Callable[[], bool]) -> None:
    """Poll: the simulator's callees run in their own tasks, with no event to wait on."""
    async with asyncio.timeout(5):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.005)


def request(to: str = "+15550100", **kwargs: object) -> PlaceCallRequest:
    return PlaceCallRequest(to, "+15550199", ANSWER, STATUS, **kwargs)  # type: ignore[arg-type]


def test_behaviour_follows_the_dialled_numbers_last_digits() -> None:
    assert [behaviour_for(n) for n in ("+15550100", "+1555486", "+1555408", "+1555500")] == [
        "answer",
        "busy",
        "no_answer",
        "fail",
    ]


async def test_answered_call_rings_fetches_the_answer_and_completes_on_hangup(rig: Rig) -> None:
    call_id = await rig.carrier.place_call(request(machine_detection="detect"))
    await until(lambda: rig.statuses(call_id) == ["ringing", "in-progress"])
    call = rig.simulator.calls[call_id]
    assert call.answer_markup == TWIML  # the markup a local phone would connect to
    answer = next(r for r in rig.callbacks.requests if r.url.path.endswith("/answer/call_1"))
    assert parse_qs(answer.content.decode())["CallSid"] == [call_id]
    await rig.carrier.hangup(call_id)
    assert rig.statuses(call_id) == ["ringing", "in-progress", "completed"]
    last = rig.callbacks.requests[-1]
    update = rig.carrier.parse_status_callback(
        webhook(str(last.url), form={k: v[0] for k, v in parse_qs(last.content.decode()).items()})
    )
    assert (update.carrier_call_id, update.outcome) == (call_id, CallOutcome.COMPLETED)
    assert update.answered_by == "human" and update.duration_seconds is not None
    assert [r.action for r in rig.carrier.requests] == ["place_call", "hangup"]


@pytest.mark.parametrize(
    ("to", "behaviour", "statuses"),
    [
        ("+1555486", None, ["ringing", "busy"]),
        ("+1555408", None, ["ringing", "no-answer"]),
        ("+1555500", None, ["failed"]),
        ("+15550100", "busy", ["ringing", "busy"]),
        ("+1555486", "answer", ["ringing", "in-progress"]),
    ],
)
async def test_callee_behaviours(
    rig: Rig, to: str, behaviour: str | None, statuses: list[str]
) -> None:
    body = {"to": to, "from": "+15550199", "answer_url": ANSWER, "status_url": STATUS}
    if behaviour:
        body["behaviour"] = behaviour
    response = await rig.api.post("/simulator/calls", json=body)
    assert response.status_code == 201
    call_id = response.json()["id"]
    await until(lambda: rig.statuses(call_id) == statuses)
    await asyncio.sleep(0.05)
    assert rig.statuses(call_id) == statuses  # and nothing after


async def test_hold_seconds_completes_on_its_own(rig: Rig) -> None:
    body = {
        "to": "+15550100",
        "from": "+15550199",
        "answer_url": ANSWER,
        "status_url": STATUS,
        "hold_seconds": 0.01,
    }
    call_id = (await rig.api.post("/simulator/calls", json=body)).json()["id"]
    await until(lambda: rig.statuses(call_id) == ["ringing", "in-progress", "completed"])


async def test_transfer_is_recorded_and_ends_our_leg(rig: Rig) -> None:
    failed = await rig.carrier.place_call(request("+1555500"))
    await until(lambda: rig.simulator.calls[failed].status == "failed")
    with pytest.raises(ExternalStatusError) as caught:  # not in progress: nothing to transfer
        await rig.carrier.transfer(failed, "+15550123")
    assert caught.value.status == 409
    call_id = await rig.carrier.place_call(request())
    await until(lambda: rig.simulator.calls[call_id].status == "in-progress")
    await rig.carrier.transfer(call_id, "+15550123")
    listed = (await rig.api.get("/simulator/calls")).json()
    assert [(c["id"], c["transferred_to"], c["status"]) for c in listed] == [
        (failed, None, "failed"),
        (call_id, "+15550123", "completed"),
    ]
    assert rig.carrier.requests[-1].body == {"to": "+15550123"}


async def test_hanging_up_a_ringing_call_cancels_it(rig: Rig) -> None:
    rig.simulator.ring_seconds = 5
    call_id = await rig.carrier.place_call(request())
    await until(lambda: rig.statuses(call_id) == ["ringing"])
    await rig.carrier.hangup(call_id)
    assert rig.statuses(call_id) == ["ringing", "canceled"]
    assert (await rig.api.get(f"/simulator/calls/{call_id}")).json()["hung_up"] is True


async def test_unknown_calls(rig: Rig) -> None:
    await rig.carrier.hangup("SIMnope")  # already gone is fine for a hang-up
    with pytest.raises(ExternalStatusError) as caught:
        await rig.carrier.transfer("SIMnope", "+15550123")
    assert caught.value.status == 404
    bad = await rig.api.post("/simulator/calls", json={"to": "+1"})
    assert bad.status_code == 422


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata
        "http://10.0.0.5/admin",  # a private host
        "http://sb.test:8080/telephony/simulator/status",  # our host, another port
        "https://sb.test/telephony/simulator/status",  # our host, another scheme
        "http://user:pw@sb.test/telephony/simulator/status",  # credentials in the URL
        "file:///etc/passwd",
    ],
)
async def test_the_fake_api_calls_back_only_our_own_origin(rig: Rig, url: str) -> None:
    for field_name in ("answer_url", "status_url"):
        body = {"to": "+15550100", "from": "+15550199", "answer_url": ANSWER, "status_url": STATUS}
        response = await rig.api.post("/simulator/calls", json={**body, field_name: url})
        assert response.status_code == 422, response.text
        assert response.json()["field"] == field_name
    assert rig.simulator.calls == {} and rig.callbacks.requests == []


async def test_the_call_table_is_bounded(rig: Rig) -> None:
    rig.simulator.max_calls = 3
    body = {"to": "+1555500", "from": "+15550199", "answer_url": ANSWER, "status_url": STATUS}
    first = [(await rig.api.post("/simulator/calls", json=body)).json()["id"] for _ in range(3)]
    await until(lambda: all(rig.simulator.calls[c].status == "failed" for c in first))
    # Finished calls make room, oldest first.
    later = (await rig.api.post("/simulator/calls", json=body)).json()["id"]
    assert list(rig.simulator.calls) == [*first[1:], later]
    await until(lambda: rig.simulator.calls[later].status == "failed")
    # Calls still being played are never dropped: a full table of them refuses new calls.
    rig.simulator.ring_seconds = 5
    ringing = {**body, "to": "+15550100"}
    for _ in range(3):
        assert (await rig.api.post("/simulator/calls", json=ringing)).status_code == 201
    refused = await rig.api.post("/simulator/calls", json=ringing)
    assert refused.status_code == 503
    assert len(rig.simulator.calls) == 3


async def test_callback_failures_are_counted_not_fatal() -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("down", request=request)

    async with FakeApi(down).client() as http:
        simulator = CarrierSimulator(http, callback_origin="http://sb.test", ring_seconds=0)
        app = FastAPI()
        app.include_router(create_simulator_router(simulator))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sb.test") as api:
            body = {"to": "+15550100", "from": "+1", "answer_url": ANSWER, "status_url": STATUS}
            call_id = (await api.post("/simulator/calls", json=body)).json()["id"]
            # ringing, the answer URL, in-progress: each fails, none stops the call
            await until(lambda: simulator.calls[call_id].callback_errors == 3)
        assert simulator.calls[call_id].status == "in-progress"
        await simulator.aclose()


def test_simulator_speaks_twilio_and_takes_unsigned_webhooks() -> None:
    carrier = SimulatorCarrier(None, httpx.AsyncClient())
    carrier.verify_webhook(webhook("http://127.0.0.1:8000/telephony/simulator/inbound"))
    markup = carrier.answer_markup("ws://127.0.0.1:8000/media/simulator/c1", {"call_id": "c1"})
    stream = ElementTree.fromstring(markup.body).find("Connect/Stream")
    assert stream is not None and stream.get("url") == "ws://127.0.0.1:8000/media/simulator/c1"
