"""Distributed mode as deployed: two ``switchboard serve`` processes and a ``switchboard worker``
on PostgreSQL and Redis run a batch of 100 numbers. No number is dialled twice, and a worker
killed with SIGKILL mid-batch loses no row once another worker runs.

Server A hosts the simulator (the fake carrier API and its callees, who answer some calls and
hold short conversations); server B takes the API requests; the worker places the calls and
pumps the batch. Call slots live in Redis, so a call admitted by one process and streamed by
another is counted once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from redis.asyncio import Redis

from switchboard.voice.slots import RedisCallSlots
from tests.conftest import REDIS_URL, _own_database, wait_until
from tests.e2e.live import fake_agent, free_port

pytestmark = pytest.mark.redis

ROWS = 100


@pytest.fixture(params=[pytest.param("postgres", marks=pytest.mark.postgres)])
def postgres_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A PostgreSQL database of this test's own, migrated."""
    yield from _own_database(request, tmp_path, migrated=True)


@dataclass
class Deployment:
    env: dict[str, str]
    a: str  # server A's URL (the simulator lives here)
    b: str  # server B's URL
    key: str
    processes: dict[str, asyncio.subprocess.Process]

    async def start(self, name: str, *args: str, public_url: str | None = None) -> None:
        env = dict(self.env)
        if public_url:
            env["SWITCHBOARD_PUBLIC_URL"] = public_url
        self.processes[name] = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "switchboard.cli",
            *args,
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )

    async def stop_all(self) -> None:
        for process in self.processes.values():
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                await asyncio.wait_for(process.wait(), timeout=20)
            except TimeoutError:
                process.kill()
                await process.wait()


async def command_output(env: dict[str, str], *args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "switchboard.cli",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode == 0, stderr.decode()
    return stdout.decode().strip()


async def healthy(url: str) -> bool:
    try:
        async with httpx.AsyncClient(timeout=2) as http:
            return (await http.get(f"{url}/health")).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
async def deployment(postgres_url: str, tmp_path: Path) -> AsyncIterator[Deployment]:
    if REDIS_URL is None:
        pytest.skip("SWITCHBOARD_TEST_REDIS_URL is not set: Redis test not run")
    redis = Redis.from_url(REDIS_URL)
    await redis.flushdb()  # db 15 is the tests' own
    await redis.aclose()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")},
        "SWITCHBOARD_DATABASE_URL": postgres_url,
        "SWITCHBOARD_REDIS_URL": REDIS_URL,
        "SWITCHBOARD_JOBS": "procrastinate",
        "SWITCHBOARD_SECRET_KEY": Fernet.generate_key().decode(),
        "SWITCHBOARD_DATA_DIR": str(tmp_path / "data"),
    }
    await command_output(env, "migrate")
    key = await command_output(env, "keys", "create", "--workspace", "dist", "--role", "owner")
    port_a, port_b = free_port(), free_port()
    a, b = f"http://127.0.0.1:{port_a}", f"http://127.0.0.1:{port_b}"
    deployed = Deployment(env, a, b, key.splitlines()[-1], {})
    serve = ("serve", "--host", "127.0.0.1", "--no-warm-up")
    await deployed.start("a", *serve, "--port", str(port_a), public_url=a)
    await deployed.start("b", *serve, "--port", str(port_b), public_url=b)
    # The worker places calls through the simulator on A, with A's URLs for the callbacks.
    await deployed.start("worker", "worker", public_url=a)
    try:
        for url in (a, b):
            await wait_until(lambda u=url: healthy(u), seconds=60, what=f"{url} up", every=0.2)
        yield deployed
    finally:
        await deployed.stop_all()


async def test_a_batch_survives_a_killed_worker_and_dials_each_number_once(
    deployment: Deployment,
) -> None:
    auth = {"Authorization": f"Bearer {deployment.key}"}
    async with (
        httpx.AsyncClient(base_url=deployment.b, headers=auth, timeout=30) as b,
        httpx.AsyncClient(base_url=deployment.a, timeout=30) as a,
    ):
        agent = await b.post(
            "/api/v1/agents",
            json={
                "name": "Reminders",
                "system_prompt": "Be brief.",
                **fake_agent(["hello"], [{"text": "Bye!", "tool_calls": [{"name": "end_call"}]}]),
            },
        )
        assert agent.status_code == 201, agent.text
        agent_id = agent.json()["id"]
        number = await b.post(
            "/api/v1/numbers",
            json={"number": "+15550400", "carrier": "simulator", "agent_id": agent_id},
        )
        assert number.status_code == 201, number.text
        configured = await a.put(
            "/simulator/numbers/*",
            json={
                "outcomes": [
                    {"outcome": "busy", "weight": 4, "ring_seconds": 0.05},
                    {"outcome": "no_answer", "weight": 4, "ring_seconds": 0.05},
                    {"outcome": "answer", "weight": 1, "ring_seconds": 0.05},
                ],
                "script": ["Hello?"],
                "seed": 11,
            },
        )
        assert configured.status_code == 200, configured.text
        rows = "phone\n" + "".join(f"+1555041{n:04d}\n" for n in range(ROWS))
        created = await b.post(
            "/api/v1/batches",
            data={"agent_id": agent_id, "concurrency": "5", "max_attempts": "1"},
            files={"file": ("rows.csv", rows.encode(), "text/csv")},
        )
        assert created.status_code == 201, created.text
        batch_id = created.json()["id"]

        async def progress() -> dict[str, Any]:
            found: dict[str, Any] = (await b.get(f"/api/v1/batches/{batch_id}")).json()
            return found

        async def a_third_done() -> bool:
            return (await progress())["progress"]["finished"] >= ROWS // 3

        await wait_until(a_third_done, seconds=120, what="a third of the batch", every=0.2)
        worker = deployment.processes["worker"]
        worker.send_signal(signal.SIGKILL)  # mid-batch: jobs it held are left running
        await worker.wait()
        await deployment.start("worker", "worker", public_url=deployment.a)

        async def done() -> bool:
            batch = await progress()
            return batch["status"] == "completed" and batch["finished_at"] is not None

        await wait_until(done, seconds=240, what="the batch finishing", every=1.0)
        batch = await progress()
        placed = (await a.get("/simulator/calls")).json()
        workspace_id = (await b.get("/api/v1/workspace")).json()["id"]

    async def slots_free() -> bool:
        assert REDIS_URL is not None
        redis = Redis.from_url(REDIS_URL)
        try:
            return await RedisCallSlots(redis, server_limit=1).in_use(workspace_id) == 0
        finally:
            await redis.aclose()

    # Every slot, taken by the worker and held by the server that ran the call, is given back.
    await wait_until(slots_free, seconds=10, what="the workspace's slots freed", every=0.2)
    assert batch["progress"]["finished"] == ROWS
    assert all(row["status"] == "done" and row["call_id"] for row in batch["rows"])
    dialled = Counter(call["to"] for call in placed if call["to"].startswith("+1555041"))
    assert len(dialled) == ROWS and set(dialled.values()) == {1}, dialled.most_common(3)
    assert batch["max_live_seen"] <= 5
    outcomes = batch["progress"]["by_outcome"]
    assert sum(outcomes.values()) == ROWS and outcomes.get("completed", 0) > 0
    print(f"distributed batch outcomes: {outcomes}")
