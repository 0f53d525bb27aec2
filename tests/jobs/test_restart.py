"""A runner that dies mid-job (SIGKILL) leaves the job to the next runner: restart resumes."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path

from cryptography.fernet import Fernet

from switchboard.db.models import JobStatus
from switchboard.jobs import JobQueue
from switchboard.jobs.distributed import ProcrastinateQueue
from switchboard.jobs.embedded import EmbeddedQueue
from switchboard.services import Services
from tests.conftest import settings_for, wait_until
from tests.jobs.conftest import ON_POSTGRES
from tests.jobs.worker_tasks import kill, spawn

EMBEDDED_CHILD = (
    "import asyncio, tests.jobs.worker_tasks as w; asyncio.run(w.run_embedded_runner())"
)
WORKER_CHILD = (
    "import typer, tests.jobs.worker_tasks; from switchboard.jobs.cli import worker;"
    " typer.run(worker)"
)


def child_env(database_url: str, tmp_path: Path, jobs: str) -> dict[str, str]:
    return {
        "SWITCHBOARD_DATABASE_URL": database_url,
        "SWITCHBOARD_DATA_DIR": str(tmp_path / "child"),
        "SWITCHBOARD_SECRET_KEY": Fernet.generate_key().decode(),
        "SWITCHBOARD_JOBS": jobs,
    }


async def test_an_embedded_runner_killed_mid_job_is_resumed_by_the_next(
    database_url: str, tmp_path: Path
) -> None:
    started, done, log = tmp_path / "started", tmp_path / "done", tmp_path / "child.log"
    services = await Services.open(settings_for(database_url, tmp_path), run_migrations=False)
    successor = EmbeddedQueue(services, poll_seconds=0.05)
    try:
        args = {"started": str(started), "done": str(done)}
        assert await successor.enqueue("tests.hang", args, job_id="hang:1")
        child = await spawn(EMBEDDED_CHILD, child_env(database_url, tmp_path, "inprocess"), log)

        await wait_until(_exists(started), seconds=20, what=f"the child's run ({log})")
        assert await kill(child, signal.SIGKILL) == -signal.SIGKILL
        state = await successor.get("hang:1")
        assert state is not None and state.status is JobStatus.RUNNING  # leased by the dead

        await successor.start()  # its first claim takes the job once the lease has expired
        await wait_until(_exists(done), seconds=10, what="the job to run again")
        assert done.read_text() == "2"
        await wait_until(_status(successor, "hang:1", JobStatus.SUCCEEDED), what="success")
    finally:
        await successor.stop()
        await services.close()


@ON_POSTGRES
async def test_a_killed_switchboard_worker_leaves_its_job_to_the_next_worker(
    database_url: str, tmp_path: Path
) -> None:
    started, done, log = tmp_path / "started", tmp_path / "done", tmp_path / "worker.log"
    services = await Services.open(settings_for(database_url, tmp_path), run_migrations=False)
    successor = ProcrastinateQueue(services, work=True, poll_seconds=0.05, stalled_seconds=1.0)
    try:
        args = {"started": str(started), "done": str(done)}
        assert await successor.enqueue("tests.hang", args, job_id="hang:1")
        child = await spawn(WORKER_CHILD, child_env(database_url, tmp_path, "procrastinate"), log)

        await wait_until(_exists(started), seconds=20, what=f"the worker's run ({log})")
        assert await kill(child, signal.SIGKILL) == -signal.SIGKILL

        async def presumed_dead() -> bool:
            stalled = await successor.app.job_manager.get_stalled_jobs(seconds_since_heartbeat=1)
            return any(job.queueing_lock == "hang:1" for job in stalled)

        await wait_until(presumed_dead, what="the dead worker's heartbeat to age")
        await successor.start()  # a starting worker puts back the jobs of dead ones
        await wait_until(_exists(done), seconds=10, what="the job to run again")
        assert done.read_text() == "2"
        await wait_until(_status(successor, "hang:1", JobStatus.SUCCEEDED), what="success")
    finally:
        await successor.stop()
        await services.close()


@ON_POSTGRES
async def test_switchboard_worker_runs_jobs_and_stops_cleanly_on_sigterm(
    database_url: str, tmp_path: Path
) -> None:
    touched, log = tmp_path / "touched", tmp_path / "worker.log"
    services = await Services.open(settings_for(database_url, tmp_path), run_migrations=False)
    queue = ProcrastinateQueue(services)  # enqueues only, as `serve` does
    try:
        child = await spawn(WORKER_CHILD, child_env(database_url, tmp_path, "procrastinate"), log)
        assert await queue.enqueue("tests.touch", {"path": str(touched)}, job_id="touch:1")

        await wait_until(_exists(touched), seconds=20, what=f"the worker's run ({log})")
        assert touched.read_text() == "touch:1 1"
        assert await kill(child, signal.SIGTERM) == 0, log.read_text()
        await wait_until(_status(queue, "touch:1", JobStatus.SUCCEEDED), what="success")
    finally:
        await queue.stop()
        await services.close()


def _exists(path: Path) -> Callable[[], Awaitable[bool]]:
    """The file is there with something in it (``write_text`` creates it empty first)."""

    def written() -> bool:
        return path.exists() and path.stat().st_size > 0

    async def check() -> bool:
        return await asyncio.to_thread(written)

    return check


def _status(queue: JobQueue, job_id: str, status: JobStatus) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        state = await queue.get(job_id)
        return state is not None and state.status is status

    return check
