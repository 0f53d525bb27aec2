"""Outbound calls end to end, offline: the API, the job that places the call, the simulator's
carrier API ringing a simulated callee (a person reading a script with the Piper voice, or an
answering machine), the answer webhook, the media stream and the call's record.

SQLite only: the storage is covered on both databases by the integration tests.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from switchboard.calls import service as calls
from switchboard.db.models import Call, CallStatus
from tests.conftest import wait_until
from tests.e2e.live import LiveServer, fake_agent

FROM = "+15550170"


def caller(server: LiveServer) -> httpx.AsyncClient:
    auth = {"Authorization": f"Bearer {server.key}"}
    return httpx.AsyncClient(base_url=server.url, headers=auth, timeout=30)


async def callee(server: LiveServer, number: str, **config: Any) -> None:
    """Who answers ``number`` on the simulator (its fake carrier API)."""
    async with httpx.AsyncClient(base_url=server.url) as http:
        response = await http.put(f"/simulator/numbers/{number}", json=config)
    assert response.status_code == 200, response.text


async def place(server: LiveServer, **body: Any) -> dict[str, Any]:
    async with caller(server) as http:
        response = await http.post("/api/v1/calls", json=body)
    assert response.status_code == 201, response.text
    placed: dict[str, Any] = response.json()
    assert placed["status"] == "queued" and placed["direction"] == "outbound"
    return placed


async def simulated(server: LiveServer, call: Call) -> dict[str, Any]:
    """The simulator's own record of the call (its callee's side)."""
    async with httpx.AsyncClient(base_url=server.url) as http:
        found: dict[str, Any] = (await http.get(f"/simulator/calls/{call.carrier_call_id}")).json()
    return found


async def record(server: LiveServer, call_id: str) -> tuple[list[str], list[tuple[str, str]]]:
    async with server.services.sessions() as session:
        events = [e.type for e in await calls.events_of(session, call_id)]
        turns = [(t.role, t.text) for t in await calls.transcript_of(session, call_id)]
    return events, turns


CONVERSATION = fake_agent(
    ["hello", "yes that works for me"],
    [
        {"text": "Great, see you tomorrow at ten."},
        {"text": "Goodbye!", "tool_calls": [{"name": "end_call"}]},
    ],
    outbound={"greeting": "Hi {{first_name}}, this is the clinic calling about tomorrow."},
    variables={"first_name": {"type": "string", "default": "there"}},
)


async def test_an_outbound_call_holds_a_spoken_conversation_and_leaves_a_record(
    server: LiveServer,
) -> None:
    agent_id = await server.agent(FROM, **CONVERSATION)
    await callee(server, "+15550171", script=["Hello?", "Yes, that works for me."])
    placed = await place(server, agent_id=agent_id, to="+15550171", variables={"first_name": "Ada"})
    call = await server.finished_call(placed["id"], seconds=40)
    events, turns = await record(server, call.id)
    assert call.status is CallStatus.COMPLETED and call.end_reason == "agent_ended"
    assert (call.from_number, call.to_number) == (FROM, "+15550171")
    assert call.answered_at is not None and call.carrier_call_id
    assert turns == [
        ("agent", "Hi Ada, this is the clinic calling about tomorrow."),
        ("user", "hello"),
        ("agent", "Great, see you tomorrow at ten."),
        ("user", "yes that works for me"),
        ("agent", "Goodbye!"),
    ]
    assert events[:3] == ["dialled", "ringing", "call_started"]
    assert events[-1] == "call_ended"
    assert (await simulated(server, call))["callee"]["lines_said"] == 2
    assert await server.services.slots.in_use(server.workspace_id) == 0


async def test_a_callee_who_speaks_first_is_answered_not_greeted(server: LiveServer) -> None:
    agent_id = await server.agent(
        FROM,
        **fake_agent(
            ["hello"],
            [{"text": "Hi, this is the clinic. Bye!", "tool_calls": [{"name": "end_call"}]}],
            outbound={"first_speaker": "callee"},
        ),
    )
    await callee(server, "+15550172", script=["Hello?"])
    placed = await place(server, agent_id=agent_id, to="+15550172")
    call = await server.finished_call(placed["id"], seconds=40)
    events, turns = await record(server, call.id)
    assert turns[0] == ("user", "hello")
    assert turns[1][0] == "agent" and "waiting_for_callee" in events


MACHINE = fake_agent(
    [],
    [{"text": "x"}],
    outbound={"voicemail_message": "Hi {{first_name}}, please call us back."},
    variables={"first_name": {"type": "string"}},
)


async def test_an_answering_machine_gets_the_message_when_the_call_leaves_one(
    server: LiveServer,
) -> None:
    agent_id = await server.agent(FROM, **MACHINE)
    await callee(server, "+15550173", outcomes=[{"outcome": "voicemail"}])
    placed = await place(
        server,
        agent_id=agent_id,
        to="+15550173",
        machine_detection="leave_message",
        variables={"first_name": "Ada"},
    )
    call = await server.finished_call(placed["id"], seconds=40)
    events, turns = await record(server, call.id)
    assert call.status is CallStatus.COMPLETED and call.end_reason == "voicemail_left"
    assert call.answered_by == "machine_end_beep"
    assert "voicemail_left" in events and "answered_by" in events
    assert turns == [("agent", "Hi Ada, please call us back.")]
    machine = (await simulated(server, call))["callee"]
    assert machine["message_seconds"] > 1.0  # the machine recorded the message


async def test_an_answering_machine_is_hung_up_on_when_the_call_asks(server: LiveServer) -> None:
    agent_id = await server.agent(FROM, **MACHINE)
    await callee(server, "+15550174", outcomes=[{"outcome": "voicemail"}])
    placed = await place(server, agent_id=agent_id, to="+15550174", machine_detection="detect")
    call = await server.finished_call(placed["id"], seconds=40)
    events, turns = await record(server, call.id)
    assert call.status is CallStatus.NO_ANSWER and call.end_reason == "answering_machine"
    assert call.answered_by == "machine_start" and "machine_detected" in events
    assert turns == [] and call.answered_at is None
    assert await server.services.slots.in_use(server.workspace_id) == 0


@pytest.mark.parametrize(
    ("outcome", "status"),
    [("busy", CallStatus.BUSY), ("no_answer", CallStatus.NO_ANSWER), ("fail", CallStatus.FAILED)],
)
async def test_calls_that_are_not_answered_end_with_the_carriers_word(
    server: LiveServer, outcome: str, status: CallStatus
) -> None:
    agent_id = await server.agent(FROM, **MACHINE)
    await callee(server, "+15550175", outcomes=[{"outcome": outcome, "ring_seconds": 0.05}])
    placed = await place(server, agent_id=agent_id, to="+15550175")
    call = await server.finished_call(placed["id"], seconds=40)
    assert call.status is status and call.answered_at is None
    assert await server.services.slots.in_use(server.workspace_id) == 0


async def test_a_carrier_api_error_is_recorded_on_the_call(server: LiveServer) -> None:
    agent_id = await server.agent(FROM, **MACHINE)
    await callee(server, "+15550176", outcomes=[{"outcome": "reject"}])
    placed = await place(server, agent_id=agent_id, to="+15550176")
    call = await server.finished_call(placed["id"], seconds=40)
    assert call.status is CallStatus.FAILED and call.end_reason == "carrier_error"
    assert call.error is not None and call.error["code"] == "21211"
    assert "not a valid phone number" in call.error["message"]
    async with caller(server) as http:
        shown = (await http.get(f"/api/v1/calls/{call.id}")).json()
    assert shown["error"]["code"] == "21211"


async def test_a_live_call_is_hung_up_through_the_api(server: LiveServer) -> None:
    agent_id = await server.agent(
        FROM, **fake_agent([], [{"text": "x"}], outbound={"greeting": "Let me tell you. " * 20})
    )
    await callee(server, "+15550177", script=["Hello?"])
    placed = await place(server, agent_id=agent_id, to="+15550177")

    async def talking() -> bool:
        async with server.services.sessions() as session:
            found = await calls.get_call(session, server.workspace_id, placed["id"])
        return found.status is CallStatus.IN_PROGRESS

    await wait_until(talking, seconds=20, what="the outbound call being answered")
    async with caller(server) as http:
        response = await http.post(f"/api/v1/calls/{placed['id']}/hangup")
        again = await http.post(f"/api/v1/calls/{placed['id']}/hangup")
    assert response.status_code == 200, response.text
    call = await server.finished_call(placed["id"], seconds=40)
    assert call.status is CallStatus.COMPLETED and call.end_reason == "hung_up_by_api"
    assert again.status_code in (200, 409)


async def test_a_queued_call_hung_up_before_it_is_placed_is_never_dialled(
    server: LiveServer,
) -> None:
    agent_id = await server.agent(FROM, **MACHINE)
    await server.services.jobs.stop()  # nothing places calls while we look
    placed = await place(server, agent_id=agent_id, to="+15550178")
    async with caller(server) as http:
        response = await http.post(f"/api/v1/calls/{placed['id']}/hangup")
    assert response.status_code == 200 and response.json()["status"] == "canceled"
    await server.services.jobs.start()
    async with server.services.sessions() as session:
        call = await calls.get_call(session, server.workspace_id, placed["id"])
    assert call.placed_at is None and call.end_reason == "hung_up_by_api"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"to": "not a number"}, "to"),
        ({"to": "+15550179", "from": "+15559999"}, "from"),
        ({"to": "+15550179", "variables": {"nickname": "x"}}, "variables.nickname"),
        ({"to": "+15550179", "variables": {"first_name": 3}}, "variables.first_name"),
        ({"to": "+15550179", "machine_detection": "leave_message"}, "voicemail_message"),
        ({"to": "+15550179", "machine_detection": "sometimes"}, "machine_detection"),
        ({"to": "+15550179", "ring_timeout_seconds": 1}, "ring_timeout_seconds"),
        ({"to": "+15550179", "agent_id": "agt_nope"}, "agent_id"),
    ],
)
async def test_bad_requests_name_the_field_and_dial_nothing(
    server: LiveServer, body: dict[str, Any], field: str
) -> None:
    agent_id = await server.agent(
        FROM, **fake_agent([], [{"text": "x"}], variables={"first_name": {"type": "string"}})
    )
    async with caller(server) as http:
        response = await http.post("/api/v1/calls", json={"agent_id": agent_id, **body})
    assert response.status_code in (404, 422), response.text
    assert response.json()["field"] == field
    async with server.services.sessions() as session:
        assert await calls.list_calls(session, server.workspace_id, limit=5, after=None) == []


async def test_an_agent_without_a_number_or_a_carrier_account_dials_nothing(
    server: LiveServer,
) -> None:
    lonely = await server.agent("+15550180", **MACHINE)
    twilio_agent = await server.agent("+14155550181", "twilio", **MACHINE)
    async with server.services.sessions() as session:
        from sqlalchemy import delete

        from switchboard.db.models import PhoneNumber

        await session.execute(delete(PhoneNumber).where(PhoneNumber.number == "+15550180"))
        await session.commit()
    async with caller(server) as http:
        no_number = await http.post("/api/v1/calls", json={"agent_id": lonely, "to": "+15550182"})
        no_account = await http.post(
            "/api/v1/calls", json={"agent_id": twilio_agent, "to": "+14155550182"}
        )
    assert no_number.status_code == 422 and no_number.json()["field"] == "from"
    assert "no number to call from" in no_number.json()["detail"]
    assert no_account.status_code == 422 and no_account.json()["field"] == "from"
    assert "no twilio account" in no_account.json()["detail"]


@pytest.mark.parametrize(
    ("policy", "status", "reason"),
    [
        ("leave_message", CallStatus.COMPLETED, "voicemail_left"),
        ("detect", CallStatus.NO_ANSWER, "answering_machine"),
    ],
)
async def test_a_machine_is_heard_on_our_side_when_the_carrier_cannot_tell(
    server: LiveServer, policy: str, status: CallStatus, reason: str
) -> None:
    """A carrier without detection (as Exotel): our detector hears the greeting and its beep."""
    agent_id = await server.agent(FROM, **MACHINE)
    await callee(server, "+15550183", outcomes=[{"outcome": "voicemail"}], carrier_detection=False)
    placed = await place(
        server,
        agent_id=agent_id,
        to="+15550183",
        machine_detection=policy,
        variables={"first_name": "Ada"},
    )
    call = await server.finished_call(placed["id"], seconds=60)
    events, turns = await record(server, call.id)
    assert (call.status, call.end_reason) == (status, reason)
    assert call.answered_by is not None and call.answered_by.startswith("machine")
    assert "machine_detected" in events
    if policy == "leave_message":
        assert call.answered_by == "machine_end_beep" and "greeting_ended" in events
        assert turns == [("agent", "Hi Ada, please call us back.")]
        assert (await simulated(server, call))["callee"]["message_seconds"] > 1.0
    else:
        assert [role for role, _ in turns if role == "agent"] == []


async def test_a_person_heard_on_our_side_is_talked_to(server: LiveServer) -> None:
    # The greeting starts late (after the verdict) and the callee hears it as the reply to
    # "Hello?": end turns on VAD silence so whether Smart Turn judges a lone "Hello?" complete
    # (it varies by CPU) cannot merge the callee's two lines into one turn.
    agent_id = await server.agent(FROM, **CONVERSATION, pipeline={"turn_detection": "vad"})
    await callee(
        server,
        "+15550184",
        script=["Hello?", "Yes, that works for me."],
        carrier_detection=False,
        greeting_wait_seconds=0.5,  # a person says "Hello?" as they pick up
    )
    placed = await place(
        server,
        agent_id=agent_id,
        to="+15550184",
        machine_detection="detect",
        variables={"first_name": "Ada"},
    )
    call = await server.finished_call(placed["id"], seconds=60)
    events, turns = await record(server, call.id)
    assert call.status is CallStatus.COMPLETED and call.answered_by == "human"
    assert turns[0] == ("user", "hello")  # heard first: the agent waited for the verdict
    assert [text for role, text in turns if role == "agent"][-1] == "Goodbye!"
    assert "machine_detected" not in events
