"""The built-in ``opt_out`` tool end to end, offline: a callee (or caller) asks not to be called
again, the LLM calls ``opt_out``, the number goes on the workspace's do-not-call list before
the call ends, the person hears the confirmation, and the next call to them is refused.

SQLite only: the list's storage is covered on both databases by the integration tests.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from switchboard.caller.conversation import run_conversation
from switchboard.calls import service as calls
from switchboard.db.models import CallStatus
from switchboard.voice.tools import OPT_OUT_CONFIRMATION
from tests.e2e.live import LiveServer, caller_line, fake_agent
from tests.e2e.test_outbound import FROM, callee, caller, place, record, simulated

OPTING_OUT = fake_agent(
    ["please don't call me again"],
    [{"text": "", "tool_calls": [{"name": "opt_out"}]}],
    outbound={"greeting": "Hi, this is the clinic calling about your check-up."},
)


async def dnc_entries(server: LiveServer, number: str) -> list[dict[str, Any]]:
    async with caller(server) as http:
        response = await http.get("/api/v1/dnc", params={"number": number})
    assert response.status_code == 200, response.text
    entries: list[dict[str, Any]] = response.json()["data"]
    return entries


async def test_a_callee_who_opts_out_is_listed_before_the_call_ends_and_never_called_again(
    server: LiveServer,
) -> None:
    agent_id = await server.agent(FROM, **OPTING_OUT)
    await callee(server, "+15550195", script=["Please don't call me again."])
    placed = await place(server, agent_id=agent_id, to="+15550195")
    call = await server.finished_call(placed["id"], seconds=40)
    assert (call.status, call.end_reason) == (CallStatus.COMPLETED, "opted_out")

    (entry,) = await dnc_entries(server, "+15550195")
    assert (entry["scope"], entry["source"], entry["call_id"]) == ("workspace", "opt_out", call.id)
    assert call.ended_at is not None
    assert datetime.fromisoformat(entry["created_at"]) < call.ended_at

    events, turns = await record(server, call.id)
    assert events.index("tool_called") < events.index("opted_out") < events.index("call_ended")
    assert events.index("opted_out") < events.index("tool_result")
    assert events[-1] == "call_ended"
    async with server.services.sessions() as session:
        found = await calls.events_of(session, call.id)
        transcript = await calls.transcript_of(session, call.id)
    data = {e.type: e.data for e in found}
    assert data["tool_called"]["name"] == "opt_out"
    assert data["opted_out"] == {"number": "+15550195", "dnc_id": entry["id"], "skipped": None}
    assert (data["tool_result"]["name"], data["tool_result"]["status"]) == ("opt_out", "ok")

    # The callee heard the confirmation to its end, and the agent hung up after it.
    assert turns[-2:] == [("user", "please don't call me again"), ("agent", OPT_OUT_CONFIRMATION)]
    assert not transcript[-1].interrupted
    heard = (await simulated(server, call))["callee"]
    assert heard["hung_up_by"] == "agent" and heard["lines_said"] == 1 and not heard["errors"]

    async with caller(server) as http:
        again = await http.post("/api/v1/calls", json={"agent_id": agent_id, "to": "+15550195"})
    assert again.status_code == 422, again.text
    assert again.json()["field"] == "to" and "do-not-call" in again.json()["detail"]
    assert await server.services.slots.in_use(server.workspace_id) == 0


async def test_a_caller_who_opts_out_on_an_inbound_call_is_listed_and_hears_it(
    server: LiveServer,
) -> None:
    await server.agent(
        "+15550196",
        **fake_agent(["stop calling me"], [{"text": "", "tool_calls": [{"name": "opt_out"}]}]),
    )
    report = await run_conversation(
        server.address, "+15550196", [await caller_line("cancel_order")]
    )
    call = await server.finished_call(report.call_id)
    assert (call.status, call.end_reason) == (CallStatus.COMPLETED, "opted_out")
    (entry,) = await dnc_entries(server, call.from_number)
    assert (entry["source"], entry["call_id"]) == ("opt_out", call.id)
    assert call.ended_at is not None
    assert datetime.fromisoformat(entry["created_at"]) < call.ended_at
    # What the caller's phone played after its line: the whole confirmation, then the hang-up.
    (turn,) = report.turns
    assert turn.reply is not None and turn.reply.finished and not turn.reply.cleared
    expected = len(OPT_OUT_CONFIRMATION) / 30  # the fake TTS speaks 30 characters a second
    assert abs(turn.reply.seconds - expected) < 0.5, turn.reply.seconds
    assert report.hung_up_by == "agent"
