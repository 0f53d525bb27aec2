"""Runner fixtures: the same behaviour tests run on every runner and database.

``open_queue`` opens a new ``Services`` per call (its own engine and pool), so
two queues on one database behave as two processes would.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Protocol

import pytest

from switchboard.jobs import JobQueue, TaskRegistry
from switchboard.jobs.distributed import ProcrastinateQueue
from switchboard.jobs.embedded import EmbeddedQueue
from switchboard.services import Services
from tests.conftest import settings_for

# (runner, database) pairs: procrastinate exists on PostgreSQL only.
RUNNERS = pytest.mark.parametrize(
    ("runner", "database_url"),
    [
        ("embedded", "sqlite"),
        pytest.param("embedded", "postgres", marks=pytest.mark.postgres),
        pytest.param("procrastinate", "postgres", marks=pytest.mark.postgres),
    ],
    indirect=["database_url"],
)
ON_POSTGRES = pytest.mark.parametrize(
    "database_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)

# Fast clocks for tests; production uses each runner's module defaults.
POLL_SECONDS = 0.05
GRACE_SECONDS = 0.2
LEASE_SECONDS = 1.0  # embedded: a dead runner's job is free again after this
STALLED_SECONDS = 1.0  # procrastinate: a silent worker is dead after this


class OpenQueue(Protocol):
    async def __call__(
        self, registry: TaskRegistry, *, concurrency: int = 4, start: bool = True
    ) -> JobQueue: ...


def make_queue(
    runner: str, services: Services, registry: TaskRegistry, concurrency: int = 4
) -> JobQueue:
    if runner == "embedded":
        return EmbeddedQueue(
            services,
            registry,
            concurrency=concurrency,
            lease_seconds=LEASE_SECONDS,
            poll_seconds=POLL_SECONDS,
            grace_seconds=GRACE_SECONDS,
        )
    return ProcrastinateQueue(
        services,
        registry,
        work=True,
        concurrency=concurrency,
        poll_seconds=POLL_SECONDS,
        grace_seconds=GRACE_SECONDS,
        stalled_seconds=STALLED_SECONDS,
    )


@pytest.fixture
def runner() -> str:
    return "embedded"


@pytest.fixture
async def open_queue(runner: str, database_url: str, tmp_path: Path) -> AsyncIterator[OpenQueue]:
    opened: list[tuple[Services, JobQueue]] = []

    async def open_one(
        registry: TaskRegistry, *, concurrency: int = 4, start: bool = True
    ) -> JobQueue:
        services = await Services.open(settings_for(database_url, tmp_path), run_migrations=False)
        queue = make_queue(runner, services, registry, concurrency)
        opened.append((services, queue))
        if start:
            await queue.start()
        return queue

    yield open_one
    for services, queue in reversed(opened):
        await queue.stop()
        await services.close()


async def state_of(queue: JobQueue, job_id: str) -> Any:
    state = await queue.get(job_id)
    assert state is not None, f"no job {job_id}"
    return state
