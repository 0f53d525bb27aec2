"""Distributed mode as deployed runs the 1,000-prospect campaign of ``campaign_plan``: a
``switchboard serve`` (the API, the simulator's carrier API and its callees, the carrier's
webhooks and the calls' media) and two ``switchboard worker`` processes (the hopper's
periodic tick, one at a time under PostgreSQL's advisory lock, and the placing jobs) on
PostgreSQL and Redis. Early on, one worker is killed with SIGKILL while it is placing a
call; the other finishes, putting back the killed one's jobs once its heartbeat is stale.

Every prospect ends final with the disposition the embedded run gives it
(``test_campaign_scale``: both are the plan's), no (prospect, attempt) is dialled twice and
no number more often than planned. The one thing a kill may change is an attempt whose
placing it cut short after the call was marked as being placed (the carrier may or may
not have been asked): it is never placed again, and ends ``failed``
(``campaign_plan.ending``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import AsyncIterator, Iterator
from functools import partial
from pathlib import Path

import asyncpg
import httpx
import pytest
from cryptography.fernet import Fernet
from redis.asyncio import Redis

from switchboard.voice.slots import RedisCallSlots
from tests.conftest import REDIS_URL, _asyncpg_dsn, _own_database, wait_until
from tests.e2e import campaign_plan as plan
from tests.e2e.live import free_port
from tests.e2e.test_distributed_batch import Deployment, command_output, healthy

pytestmark = pytest.mark.redis

KILL_AFTER_FINAL = 50  # prospects final when a worker is killed: some, far from all
KILL_TRIES = 3
PLACING = "calls.place"


@pytest.fixture(params=[pytest.param("postgres", marks=pytest.mark.postgres)])
def postgres_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A PostgreSQL database of this test's own, migrated."""
    yield from _own_database(request, tmp_path, migrated=True)


@pytest.fixture
async def deployment(postgres_url: str, tmp_path: Path) -> AsyncIterator[Deployment]:
    """One server (``a``, hosting the simulator) and two workers, ``w1`` and ``w2``."""
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
        # Each process's own call limit (20 by default) would hold pacing below the plan's.
        "SWITCHBOARD_MAX_CONCURRENT_CALLS": str(plan.WORKSPACE_CALLS),
    }
    await command_output(env, "migrate")
    key = await command_output(env, "keys", "create", "--workspace", "dist", "--role", "owner")
    port = free_port()
    a = f"http://127.0.0.1:{port}"
    deployed = Deployment(env, a, a, key.splitlines()[-1], {})
    await deployed.start(
        "a", "serve", "--host", "127.0.0.1", "--no-warm-up", "--port", str(port), public_url=a
    )
    # The workers place calls through the simulator on A, with A's URLs for the callbacks.
    # w1 starts first, so that the first worker procrastinate registers is w1.
    await deployed.start("w1", "worker", public_url=a)
    try:
        await wait_until(lambda: healthy(a), seconds=60, what=f"{a} up", every=0.2)
        async with connected(postgres_url) as db:
            await wait_until(lambda: workers(db, 1), seconds=60, what="w1 up", every=0.2)
        await deployed.start("w2", "worker", public_url=a)
        yield deployed
    finally:
        await deployed.stop_all()


@contextlib.asynccontextmanager
async def connected(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(_asyncpg_dsn(database_url))
    try:
        yield conn
    finally:
        await conn.close()


async def workers(db: asyncpg.Connection, count: int) -> bool:
    return int(await db.fetchval("SELECT count(*) FROM procrastinate_workers")) >= count


async def placing(db: asyncpg.Connection, worker_id: int) -> int:
    """The placing jobs that worker ``worker_id`` is running (or was, if it is dead)."""
    found = await db.fetchval(
        "SELECT count(*) FROM procrastinate_jobs"
        " WHERE status = 'doing' AND task_name = $1 AND worker_id = $2",
        PLACING,
        worker_id,
    )
    return int(found)


async def kill_w1_while_placing(deployment: Deployment, db: asyncpg.Connection) -> int:
    """SIGKILL w1 while it is placing a call (its carrier request may be on the way); how
    many placing jobs it left running. Should the one seen end just before the signal,
    another w1 is started and killed the same way."""
    w1 = int(await db.fetchval("SELECT min(id) FROM procrastinate_workers"))  # see the fixture
    for _ in range(KILL_TRIES):
        await wait_until(partial(_placing_now, db, w1), seconds=60, what="w1 placing", every=0.002)
        worker = deployment.processes["w1"]
        worker.send_signal(signal.SIGKILL)  # the jobs it held are left running
        await worker.wait()
        left = await placing(db, w1)
        if left:
            return left
        newest = await _newest(db)
        await deployment.start("w1", "worker", public_url=deployment.a)
        await wait_until(partial(_newer, db, newest), seconds=60, what="w1 again", every=0.2)
        w1 = await _newest(db)
    pytest.fail(f"w1 was never killed while placing a call in {KILL_TRIES} tries")


async def _placing_now(db: asyncpg.Connection, worker_id: int) -> bool:
    return await placing(db, worker_id) > 0


async def _newest(db: asyncpg.Connection) -> int:
    return int(await db.fetchval("SELECT max(id) FROM procrastinate_workers"))


async def _newer(db: asyncpg.Connection, worker_id: int) -> bool:
    return await _newest(db) > worker_id


async def resumed_placings(db: asyncpg.Connection) -> int:
    """Placing jobs that started more than once: a killed worker's, put back once its
    heartbeat went stale (and any retried for want of a free call slot)."""
    found = await db.fetchval(
        "SELECT count(*) FROM (SELECT e.job_id FROM procrastinate_events e"
        " JOIN procrastinate_jobs j ON j.id = e.job_id"
        " WHERE j.task_name = $1 AND e.type = 'started'"
        " GROUP BY e.job_id HAVING count(*) > 1) AS again",
        PLACING,
    )
    return int(found)


async def test_a_campaign_on_two_workers_survives_a_killed_one_and_ends_as_planned(
    deployment: Deployment, postgres_url: str
) -> None:
    auth = {"Authorization": f"Bearer {deployment.key}"}
    async with (
        httpx.AsyncClient(base_url=deployment.a, headers=auth, timeout=30) as api,
        httpx.AsyncClient(base_url=deployment.a, timeout=30) as simulator,
    ):
        await plan.set_up_callees(simulator)
        started = time.monotonic()
        campaign_id = await plan.start_campaign(api, plan.DISTRIBUTED_PACING)

        async def some_final() -> bool:
            return await plan.final_count(api, campaign_id) >= KILL_AFTER_FINAL

        await wait_until(some_final, seconds=120, what="some prospects final", every=0.5)
        async with connected(postgres_url) as db:
            left_running = await kill_w1_while_placing(deployment, db)
        final_at_kill = await plan.final_count(api, campaign_id)
        killed_at = time.monotonic() - started
        assert final_at_kill < plan.PROSPECTS
        await plan.until_finished(api, simulator, campaign_id, seconds=240)
        took = time.monotonic() - started
        run = await plan.collect(api, simulator, campaign_id)
        workspace_id = (await api.get("/api/v1/workspace")).json()["id"]

    async def slots_free() -> bool:
        assert REDIS_URL is not None
        redis = Redis.from_url(REDIS_URL)
        try:
            return await RedisCallSlots(redis, server_limit=1).in_use(workspace_id) == 0
        finally:
            await redis.aclose()

    # Every slot is given back, the ones the killed worker took too (their calls ended).
    await wait_until(slots_free, seconds=40, what="the workspace's slots freed", every=0.5)
    async with connected(postgres_url) as db:
        resumed = await resumed_placings(db)
    dispositions = plan.check(run, crashed=True)
    cut = plan.cut_short(run)
    assert all(dispositions[number] == "failed" for number in cut)
    same = {number: d for number, d in plan.DISPOSITIONS.items() if number not in cut}
    assert {number: d for number, d in dispositions.items() if number not in cut} == same
    print(
        f"distributed: {plan.PROSPECTS} prospects, {len(run.calls)} dials in {took:.1f} s"
        f" ({len(run.calls) / took:.1f} dials/s); w1 killed at {killed_at:.1f} s with"
        f" {final_at_kill} final, placing {left_running} call(s); placing jobs run again:"
        f" {resumed}; placings cut short: {len(cut)};"
        f" abandoned: {run.campaign['stats']['abandoned']}"
    )
