"""Batch jobs end to end, offline: a CSV uploaded to the API, rows dialled by the pump job
through the simulator's carrier API, retries, concurrency, pause and cancel, and the
``switchboard batch`` command following one to its end.

SQLite only here; the distributed run (PostgreSQL, Redis, several processes) is in
``test_distributed_batch``.
"""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import datetime
from typing import Any

import httpx

from switchboard.db.models import Call
from tests.conftest import wait_until
from tests.e2e.live import LiveServer, fake_agent
from tests.e2e.test_outbound import FROM, callee, caller

QUIET = fake_agent(["hello"], [{"text": "Hi, bye!", "tool_calls": [{"name": "end_call"}]}])


async def upload(
    server: LiveServer, csv_text: str, agent_id: str, **options: Any
) -> httpx.Response:
    async with caller(server) as http:
        return await http.post(
            "/api/v1/batches",
            data={"agent_id": agent_id, **{k: str(v) for k, v in options.items()}},
            files={"file": ("rows.csv", csv_text.encode(), "text/csv")},
        )


async def batch_of(server: LiveServer, batch_id: str) -> dict[str, Any]:
    async with caller(server) as http:
        found: dict[str, Any] = (await http.get(f"/api/v1/batches/{batch_id}")).json()
    return found


async def finished(server: LiveServer, batch_id: str, seconds: float = 90) -> dict[str, Any]:
    async def done() -> bool:
        batch = await batch_of(server, batch_id)
        return batch["status"] in ("completed", "canceled") and batch["finished_at"] is not None

    await wait_until(done, seconds=seconds, what=f"batch {batch_id} finishing", every=0.5)
    return await batch_of(server, batch_id)


def most_at_once(calls: list[Call]) -> int:
    """The most calls live at one instant, from their records (created to ended)."""
    edges: list[tuple[datetime, int]] = []
    for call in calls:
        assert call.ended_at is not None
        edges += [(call.created_at, 1), (call.ended_at, -1)]
    live = peak = 0
    for _, step in sorted(edges, key=lambda e: (e[0], e[1])):  # ends before starts on ties
        live += step
        peak = max(peak, live)
    return peak


async def batch_calls(server: LiveServer, batch_id: str) -> list[Call]:
    from sqlalchemy import select

    async with server.services.sessions() as session:
        rows = await session.scalars(select(Call).where(Call.workspace_id == server.workspace_id))
        return [c for c in rows if (c.dial or {}).get("batch_id") == batch_id]


async def test_a_batch_of_200_rows_reports_the_bad_and_finishes_the_rest(
    server: LiveServer,
) -> None:
    agent_id = await server.agent(FROM, **QUIET, variables={"first_name": {"type": "string"}})
    # Nobody answers: busy, no answer or a failure, drawn repeatably; each ring is short.
    await callee(
        server,
        "*",
        outcomes=[
            {"outcome": "busy", "weight": 2, "ring_seconds": 0.02},
            {"outcome": "no_answer", "weight": 2, "ring_seconds": 0.02},
            {"outcome": "fail", "weight": 1, "ring_seconds": 0.02},
        ],
        seed=7,
    )
    lines = ["phone,first_name,timezone"]
    lines += [f"+1555030{n:04d},Caller {n},America/New_York" for n in range(197)]
    lines.insert(50, "not-a-number,Nobody,")  # line 51
    lines.insert(100, "+15550399999,Elsewhere,Mars/Olympus")  # line 101: unknown zone
    lines.insert(150, "+15550300007,Again,")  # line 151: a number already listed
    response = await upload(
        server,
        "\n".join(lines) + "\n",
        agent_id,
        concurrency=5,
        max_attempts=2,
        retry_after_seconds=0,
        name="reminders",
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["progress"]["rows"] == 197
    errors = {e["line"]: e for e in created["row_errors"]}
    assert set(errors) == {51, 101, 151}
    assert errors[51]["field"] == "phone" and errors[101]["field"] == "timezone"
    assert "duplicate of line 9" in errors[151]["reason"]
    batch = await finished(server, created["id"])
    assert batch["status"] == "completed"
    assert batch["progress"]["finished"] == 197
    assert sum(batch["progress"]["by_outcome"].values()) == 197
    assert set(batch["progress"]["by_outcome"]) <= {"busy", "no_answer", "failed"}
    calls = await batch_calls(server, created["id"])
    retried = [row for row in batch["rows"] if row["attempts"] == 2]
    assert len(calls) == 197 + len(retried) and retried  # each retry is its own call
    assert all(row["call_id"] for row in batch["rows"])
    assert len({c.to_number for c in calls}) == 197
    peak = most_at_once(calls)
    assert peak <= 5 and batch["max_live_seen"] <= 5
    print(f"most calls of the batch live at once: {peak} (limit 5)")


async def test_busy_and_unanswered_rows_are_retried_until_someone_answers(
    server: LiveServer,
) -> None:
    agent_id = await server.agent(FROM, **QUIET)
    await callee(
        server,
        "+15550310001",
        sequence=["busy", "no_answer", "answer"],
        outcomes=[{"outcome": "answer", "ring_seconds": 0.02}],
        script=["Hello?"],
    )
    response = await upload(
        server, "phone\n+15550310001\n", agent_id, max_attempts=3, retry_after_seconds=0
    )
    batch = await finished(server, response.json()["id"], seconds=60)
    (row,) = batch["rows"]
    assert (row["status"], row["outcome"], row["attempts"]) == ("done", "completed", 3)
    calls = sorted(await batch_calls(server, batch["id"]), key=lambda c: c.created_at)
    assert [c.status.value for c in calls] == ["busy", "no_answer", "completed"]


async def test_a_paused_batch_dials_nothing_until_resumed_and_a_canceled_one_stops(
    server: LiveServer,
) -> None:
    agent_id = await server.agent(FROM, **QUIET)
    await callee(server, "*", outcomes=[{"outcome": "busy", "ring_seconds": 0.02}])
    rows = "phone\n" + "".join(f"+1555032{n:04d}\n" for n in range(6))
    created = (await upload(server, rows, agent_id, concurrency=1)).json()
    async with caller(server) as http:
        paused = (await http.post(f"/api/v1/batches/{created['id']}/pause")).json()
        assert paused["status"] == "paused"

        async def quiet() -> bool:
            batch = await batch_of(server, created["id"])
            return batch["progress"]["by_status"]["dialing"] == 0

        await wait_until(quiet, seconds=20, what="the paused batch's live call ending")
        before = len(await batch_calls(server, created["id"]))
        await asyncio.sleep(1.5)  # the pump would have dialled again by now were it not paused
        assert len(await batch_calls(server, created["id"])) == before
        resumed = await http.post(f"/api/v1/batches/{created['id']}/resume")
        assert resumed.json()["status"] == "running"
        canceled = (await http.post(f"/api/v1/batches/{created['id']}/cancel")).json()
        assert canceled["status"] == "canceled"
        again = await http.post(f"/api/v1/batches/{created['id']}/resume")
        assert again.status_code == 409
    batch = await finished(server, created["id"])
    assert batch["progress"]["by_status"]["canceled"] >= 1
    assert batch["progress"]["finished"] == 6


async def test_bad_uploads_are_refused_as_a_whole(server: LiveServer) -> None:
    agent_id = await server.agent(FROM, **QUIET)
    cases = [
        ("name,city\nAda,Paris\n", "file", "no 'phone' column"),
        ("phone\nnope\nalso-nope\n", "file", "no row can be called"),
        ("phone\n", "file", "no rows"),
    ]
    for text, field, words in cases:
        response = await upload(server, text, agent_id)
        assert response.status_code == 422, response.text
        assert response.json()["field"] == field and words in response.json()["detail"]
    async with caller(server) as http:
        not_text = await http.post(
            "/api/v1/batches",
            data={"agent_id": agent_id},
            files={"file": ("rows.csv", b"\xff\xfe\x00garbage", "text/csv")},
        )
        bad_option = await http.post(
            "/api/v1/batches",
            data={"agent_id": agent_id, "concurrency": "0"},
            files={"file": ("rows.csv", b"phone\n+15550330000\n", "text/csv")},
        )
        no_file = await http.post("/api/v1/batches", data={"agent_id": agent_id})
    assert not_text.status_code == 422 and not_text.json()["field"] == "file"
    assert bad_option.status_code == 422 and bad_option.json()["field"] == "concurrency"
    assert no_file.status_code == 422
    async with caller(server) as http:
        assert (await http.get("/api/v1/batches")).json()["data"] == []


async def test_the_batch_command_follows_a_batch_to_its_end(
    server: LiveServer, tmp_path: Any
) -> None:
    agent_id = await server.agent(FROM, **QUIET)
    await callee(server, "*", outcomes=[{"outcome": "no_answer", "ring_seconds": 0.02}])
    csv_file = tmp_path / "rows.csv"
    csv_file.write_text("phone\n+15550340000\n+15550340001\nbad\n")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "switchboard.cli",
        "batch",
        str(csv_file),
        "--agent",
        agent_id,
        "--server",
        server.address,
        "--wait",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "SWITCHBOARD_API_KEY": server.key, "COLUMNS": "120"},
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=120)
    output = stderr.decode()
    assert process.returncode == 0, output
    batch_id = stdout.decode().strip()
    assert batch_id.startswith("bat_")
    assert "2 rows queued" in output and "rows refused" in output
    assert "finished: no_answer 2" in output
    assert (await batch_of(server, batch_id))["status"] == "completed"
