"""The distributed runner: procrastinate on PostgreSQL; ``switchboard worker`` runs the jobs.

Each registered task becomes a procrastinate task whose retry strategy is the
task's :class:`~switchboard.jobs.tasks.Retry`; periodic tasks are procrastinate
periodic tasks. A job id is procrastinate's ``queueing_lock``, which refuses a
second job with that id while the first waits; to refuse it for good, the id
is also inserted into ``job_ids`` in the same transaction as procrastinate's
job (a duplicate inserts nothing, and nothing is deferred).

A worker that dies mid-job stops sending heartbeats; its jobs are put back by
a periodic task (and by every worker as it starts) once the heartbeat is
``STALLED_SECONDS`` old, or failed if that was their last allowed run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

import procrastinate
import psycopg
from procrastinate.exceptions import AlreadyEnqueued
from procrastinate.jobs import Job as ProcrastinateJob
from procrastinate.jobs import Status
from procrastinate.retry import BaseRetryStrategy, RetryDecision
from procrastinate.schema import SchemaManager
from sqlalchemy.engine import make_url

from switchboard.db.base import utcnow
from switchboard.db.models import JobStatus
from switchboard.errors import ConfigurationError
from switchboard.jobs.queue import (
    CONCURRENCY,
    GRACE_SECONDS,
    POLL_SECONDS,
    JobQueue,
    JobState,
)
from switchboard.jobs.tasks import (
    TASKS,
    JobContext,
    Retry,
    Task,
    TaskRegistry,
    checked_args,
    checked_run_at,
    describe_error,
    periodic_job_id,
)

if TYPE_CHECKING:
    from switchboard.services import Services

log = logging.getLogger(__name__)

STALLED_SECONDS = 30.0  # a worker silent this long is presumed dead; heartbeat every third
STALLED_CRON = "* * * * *"  # how often a worker looks for jobs of dead workers
RETRY_STALLED_TASK = "switchboard.jobs.retry_stalled"
# Advisory lock keys: one process at a time applies procrastinate's schema / puts back jobs.
SCHEMA_LOCK_KEY = 0x5B0A_0D06
STALLED_LOCK_KEY = 0x5B0A_0D07

PROCRASTINATE_STATUS = {
    Status.TODO.value: JobStatus.QUEUED,
    Status.DOING.value: JobStatus.RUNNING,
    Status.ABORTING.value: JobStatus.RUNNING,
    Status.SUCCEEDED.value: JobStatus.SUCCEEDED,
    Status.FAILED.value: JobStatus.FAILED,
    Status.CANCELLED.value: JobStatus.CANCELLED,
    Status.ABORTED.value: JobStatus.CANCELLED,
}

CLAIM_ID = (
    "INSERT INTO job_ids (id, task, created_at) VALUES (%(id)s, %(task)s, now())"
    " ON CONFLICT (id) DO NOTHING"
)
LINK_ID = "UPDATE job_ids SET procrastinate_job_id = %(job)s WHERE id = %(id)s"
FIND_ID = "SELECT procrastinate_job_id, last_error FROM job_ids WHERE id = %(id)s"
RECORD_ERROR = "UPDATE job_ids SET last_error = %(error)s WHERE id = %(id)s"


def psycopg_conninfo(database_url: str) -> str:
    """Our SQLAlchemy URL (``postgresql+asyncpg://...``) as a libpq URI for psycopg."""
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        raise ConfigurationError(
            "SWITCHBOARD_JOBS=procrastinate needs PostgreSQL (set SWITCHBOARD_DATABASE_URL)"
        )
    query = dict(url.query)
    ssl = query.pop("ssl", None)  # asyncpg's name for libpq's sslmode
    if ssl is not None:
        query.setdefault("sslmode", ssl)
    return url.set(drivername="postgresql", query=query).render_as_string(hide_password=False)


async def apply_procrastinate_schema(database_url: str) -> None:
    """Create procrastinate's tables and functions unless they exist; safe to race."""
    connect = psycopg.AsyncConnection.connect(psycopg_conninfo(database_url))
    async with await connect as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK_KEY,))
        found = await (await conn.execute("SELECT to_regclass('procrastinate_jobs')")).fetchone()
        if found is None or found[0] is None:
            # No parameters: psycopg sends the script as one simple query.
            await conn.execute(SchemaManager.get_schema())
            log.info("applied procrastinate's schema")


class Backoff(BaseRetryStrategy):
    """A task's :class:`Retry` as procrastinate's retry strategy.

    A run cut short by a stopping worker (cancelled) is put back at once.
    """

    def __init__(self, retry: Retry) -> None:
        self.retry = retry

    def get_retry_decision(
        self, *, exception: BaseException, job: ProcrastinateJob
    ) -> RetryDecision | None:
        if isinstance(exception, asyncio.CancelledError):
            return RetryDecision(retry_at=utcnow())
        delay = self.retry.delay_after(job.attempts + 1)
        if delay is None:
            return None
        return RetryDecision(retry_at=utcnow() + timedelta(seconds=delay))


class ProcrastinateQueue(JobQueue):
    """Enqueues into procrastinate; with ``work=True``, ``start`` also runs a worker here."""

    def __init__(
        self,
        services: Services,
        registry: TaskRegistry = TASKS,
        *,
        work: bool = False,
        concurrency: int = CONCURRENCY,
        poll_seconds: float = POLL_SECONDS,
        grace_seconds: float = GRACE_SECONDS,
        stalled_seconds: float = STALLED_SECONDS,
    ) -> None:
        self.services = services
        self.registry = registry
        self.work = work
        self.concurrency = concurrency
        self.poll_seconds = poll_seconds
        self.grace_seconds = grace_seconds
        self.stalled_seconds = stalled_seconds
        self.connector = procrastinate.PsycopgConnector(
            conninfo=psycopg_conninfo(services.settings.resolved_database_url),
            min_size=1,
            max_size=concurrency + 2,
        )
        self.app = procrastinate.App(connector=self.connector)
        for task in registry:
            self._add(task)
        self._add_stalled_retry()
        self._opened = False
        self._open_lock = asyncio.Lock()
        self._worker: asyncio.Task[None] | None = None

    async def _create(
        self, task: str | Task, jobs: Mapping[str, Mapping[str, Any]], run_at: datetime | None
    ) -> int:
        """Defer the jobs whose ids are free, in one transaction; how many were created."""
        registered = self.registry.get(task)
        checked = {job_id: checked_args(args) for job_id, args in jobs.items()}
        schedule_at = checked_run_at(run_at)
        await self._open()
        created = 0
        async with self.connector.pool.connection() as conn, conn.transaction():
            for job_id, kwargs in checked.items():
                deferrer = self.app.configure_task(
                    registered.name,
                    queueing_lock=job_id,
                    schedule_at=schedule_at,
                    connection=conn,
                )
                try:
                    async with conn.transaction():  # a savepoint: one refusal spares the rest
                        claim = await conn.execute(
                            CLAIM_ID, {"id": job_id, "task": registered.name}
                        )
                        if claim.rowcount == 0:
                            continue
                        procrastinate_id = await deferrer.defer_async(**kwargs)
                        await conn.execute(LINK_ID, {"job": procrastinate_id, "id": job_id})
                except AlreadyEnqueued:
                    continue  # deferred outside this interface with the same queueing lock
                created += 1
        return created

    async def cancel(self, job_id: str) -> bool:
        found = await self._find(job_id)
        if found is None or found[0] is None:
            return False
        return await self.app.job_manager.cancel_job_by_id_async(found[0])

    async def get(self, job_id: str) -> JobState | None:
        found = await self._find(job_id)
        if found is None or found[0] is None:
            return None
        procrastinate_id, last_error = found
        jobs = list(await self.app.job_manager.list_jobs_async(id=procrastinate_id))
        if not jobs:
            return None  # its procrastinate record was deleted
        job = jobs[0]
        status = PROCRASTINATE_STATUS[job.status or Status.TODO.value]
        return JobState(status=status, attempts=job.attempts, last_error=last_error)

    async def prune(self, older_than: timedelta) -> None:
        # Procrastinate's own records of every succeeded job; the ids stay in ``job_ids``.
        await self._open()
        await self.app.job_manager.delete_old_jobs(nb_hours=int(older_than.total_seconds() // 3600))

    async def start(self) -> None:
        await self._open()
        if self.work and self._worker is None:
            self._worker = asyncio.create_task(
                self.run_worker(install_signal_handlers=False), name="procrastinate-worker"
            )

    async def stop(self) -> None:
        if self._worker is not None:
            # Cancelling makes procrastinate stop gracefully: running jobs get the grace period.
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None
        async with self._open_lock:
            if self._opened:
                await self.app.close_async()
                self._opened = False

    async def run_worker(self, *, install_signal_handlers: bool = True) -> None:
        """Run jobs here until cancelled, or until SIGTERM/SIGINT if handlers are installed."""
        await self._open()
        await self.retry_stalled_jobs()  # a restart resumes the jobs its predecessor left
        await self.app.run_worker_async(
            name=f"switchboard-{socket.gethostname()}-{os.getpid()}",
            concurrency=self.concurrency,
            fetch_job_polling_interval=self.poll_seconds,
            shutdown_graceful_timeout=self.grace_seconds,
            update_heartbeat_interval=self.stalled_seconds / 3,
            stalled_worker_timeout=self.stalled_seconds,
            install_signal_handlers=install_signal_handlers,
        )

    async def retry_stalled_jobs(self) -> None:
        """Put back the jobs of workers that stopped sending heartbeats (or fail them).

        One process at a time (an advisory lock): two workers starting together
        must not both put back a job that a third has meanwhile fetched.
        """
        await self._open()
        async with self.connector.pool.connection() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (STALLED_LOCK_KEY,))
            stalled = await self.app.job_manager.get_stalled_jobs(
                seconds_since_heartbeat=self.stalled_seconds
            )
            for job in stalled:
                try:
                    await self._put_back(job)
                except Exception:
                    log.exception("could not put back stalled job %s", job.call_string)

    async def _put_back(self, job: ProcrastinateJob) -> None:
        task = self.registry.tasks.get(job.task_name)
        max_attempts = task.retry.max_attempts if task is not None else 1
        if job.attempts + 1 < max_attempts:
            log.warning("job %s: its worker stopped; running it again", job.call_string)
            await self.app.job_manager.retry_job(job)
            return
        log.warning("job %s: its worker stopped on its last run; failed", job.call_string)
        await self.app.job_manager.finish_job(job, status=Status.FAILED, delete_job=False)
        if job.queueing_lock is not None:
            error = f"its worker stopped during run {job.attempts + 1}"
            await self._record_error(job.queueing_lock, error)

    async def _open(self) -> None:
        async with self._open_lock:
            if not self._opened:
                await apply_procrastinate_schema(self.services.settings.resolved_database_url)
                await self.app.open_async()
                self._opened = True

    async def _find(self, job_id: str) -> tuple[int | None, str | None] | None:
        await self._open()
        async with self.connector.pool.connection() as conn:
            row = await (await conn.execute(FIND_ID, {"id": job_id})).fetchone()
        return None if row is None else (row[0], row[1])

    async def _record_error(self, job_id: str, error: str) -> None:
        try:
            await self.connector.execute_query_async(RECORD_ERROR, id=job_id, error=error)
        except Exception:
            log.exception("could not record the error of job %s", job_id)

    def _add(self, task: Task) -> None:
        """Register ``task`` with procrastinate, wrapped to receive our JobContext."""

        async def run(context: procrastinate.JobContext, /, **args: Any) -> None:
            job = context.job
            # A periodic run carries its tick; a run enqueued by hand carries its id.
            tick = args.pop("timestamp", None) if task.cron is not None else None
            if tick is not None:
                job_id = periodic_job_id(task, int(tick))
            else:
                job_id = job.queueing_lock or str(job.id)
            ctx = JobContext(
                services=self.services, jobs=self, job_id=job_id, attempt=job.attempts + 1
            )
            try:
                await task.function(ctx, **args)
            except Exception as exc:
                await self._record_error(job_id, describe_error(exc))
                raise

        added = self.app.task(name=task.name, pass_context=True, retry=Backoff(task.retry))(run)
        if task.cron is not None:
            # ``run`` takes procrastinate's ``timestamp`` argument in ``**args``.
            self.app.periodic(cron=task.cron)(cast(Any, added))

    def _add_stalled_retry(self) -> None:
        async def retry_stalled(timestamp: int) -> None:
            await self.retry_stalled_jobs()

        added = self.app.task(name=RETRY_STALLED_TASK, queueing_lock=RETRY_STALLED_TASK)(
            retry_stalled
        )
        self.app.periodic(cron=STALLED_CRON)(added)
