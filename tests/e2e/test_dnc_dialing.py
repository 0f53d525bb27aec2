"""The do-not-call list where numbers are dialled, end to end and offline: a call or batch row
whose number is listed after it was queued is refused by the job that places it, and the
simulator's carrier API (its log of every call it was asked to place) never hears of it.

SQLite only: the storage and the API are covered on both databases by
``tests/integration/test_dnc_api.py``.
"""

from __future__ import annotations

from typing import Any

import httpx

from switchboard.calls import service as calls
from switchboard.db.models import CallStatus
from tests.e2e.live import LiveServer
from tests.e2e.test_batches import QUIET, batch_of, finished, upload
from tests.e2e.test_outbound import FROM, MACHINE, callee, caller, place


async def list_number(server: LiveServer, number: str) -> dict[str, Any]:
    async with caller(server) as http:
        response = await http.post("/api/v1/dnc", json={"number": number})
    assert response.status_code == 201, response.text
    entry: dict[str, Any] = response.json()
    return entry


async def dialled_numbers(server: LiveServer) -> list[str]:
    """Every number the simulator's carrier API was asked to ring."""
    async with httpx.AsyncClient(base_url=server.url) as http:
        response = await http.get("/simulator/calls")
    assert response.status_code == 200
    return [call["to"] for call in response.json()]


async def test_a_number_listed_after_its_call_was_queued_is_never_dialled(
    server: LiveServer,
) -> None:
    agent_id = await server.agent(FROM, **MACHINE)
    await callee(server, "+15550190", script=["Hello?"])
    await server.services.jobs.stop()  # the call waits, queued, while the number is listed
    placed = await place(server, agent_id=agent_id, to="+15550190")
    entry = await list_number(server, "+15550190")
    await server.services.jobs.start()
    call = await server.finished_call(placed["id"], seconds=20)
    assert (call.status, call.end_reason) == (CallStatus.FAILED, "dnc")
    assert call.placed_at is None and call.carrier_call_id is None and call.answered_at is None
    async with server.services.sessions() as session:
        events = [(e.type, e.data) for e in await calls.events_of(session, call.id)]
    assert [name for name, _ in events] == ["dnc_blocked", "call_ended"]
    assert events[0][1] == {"number": "+15550190", "scope": "workspace", "dnc_id": entry["id"]}
    assert events[1][1] == {"reason": "dnc"}
    assert "+15550190" not in await dialled_numbers(server)
    assert await server.services.slots.in_use(server.workspace_id) == 0


async def test_batch_rows_on_the_list_are_reported_at_upload_or_end_dnc_undialled(
    server: LiveServer,
) -> None:
    agent_id = await server.agent(FROM, **QUIET)
    await callee(server, "*", outcomes=[{"outcome": "busy", "ring_seconds": 0.02}])
    await list_number(server, "+15550191")
    await server.services.jobs.stop()  # nothing is dialled until the later listing is made
    response = await upload(
        server,
        "phone\n+15550191\n+15550192\n+15550193\n",
        agent_id,
        max_attempts=3,
        retry_after_seconds=0,
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["row_errors"] == [
        {"line": 2, "reason": "on the do-not-call list", "field": "phone"}
    ]
    assert created["progress"]["rows"] == 2
    await list_number(server, "+15550192")  # after the upload, before its row's turn
    await server.services.jobs.start()
    batch = await finished(server, created["id"], seconds=60)
    rows = {row["phone"]: row for row in batch["rows"]}
    assert set(rows) == {"+15550192", "+15550193"}
    listed = rows["+15550192"]
    # Refused at dial time: done with outcome dnc, and not retried though "failed" would be.
    assert (listed["status"], listed["outcome"], listed["attempts"]) == ("done", "dnc", 1)
    assert (rows["+15550193"]["outcome"], rows["+15550193"]["attempts"]) == ("busy", 3)
    assert batch["progress"]["by_outcome"] == {"busy": 1, "dnc": 1}
    async with server.services.sessions() as session:
        call = await calls.get_call(session, server.workspace_id, listed["call_id"])
    assert (call.status, call.end_reason, call.placed_at) == (CallStatus.FAILED, "dnc", None)
    dialled = await dialled_numbers(server)
    assert "+15550191" not in dialled and "+15550192" not in dialled
    assert dialled.count("+15550193") == 3
    assert (await batch_of(server, created["id"]))["status"] == "completed"
