"""The embedded runner: jobs in the ``jobs`` table, run by an asyncio worker in this process.

A job is claimed by a conditional UPDATE (due, or leased by a runner whose
lease expired) that takes a lease; it works the same on SQLite and
PostgreSQL, and two runners on one database never claim the same job. While
a job runs its lease is renewed, so an expired lease means its runner died:
the next claim (at start, or any poll) takes it up again. Enqueueing here
wakes the worker at once; polling finds jobs enqueued by other processes, and
the worker also wakes for the next ``run_at`` it knows of.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from croniter import croniter
from sqlalchemy import Row, and_, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from switchboard.db.base import new_id, utcnow
from switchboard.db.engine import transaction
from switchboard.db.models import Job, JobStatus
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

LEASE_SECONDS = 30.0  # a runner silent this long is presumed dead; renewed every third of it
MIN_WAIT_SECONDS = 0.01


class EmbeddedQueue(JobQueue):
    """Enqueues into the ``jobs`` table; once started, runs them here."""

    def __init__(
        self,
        services: Services,
        registry: TaskRegistry = TASKS,
        *,
        concurrency: int = CONCURRENCY,
        lease_seconds: float = LEASE_SECONDS,
        poll_seconds: float = POLL_SECONDS,
        grace_seconds: float = GRACE_SECONDS,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.services = services
        self.registry = registry
        self.concurrency = concurrency
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        self.grace_seconds = grace_seconds
        self.runner_id = new_id("run")
        self._wake = asyncio.Event()
        self._running: dict[str, asyncio.Task[None]] = {}
        self._worker: asyncio.Task[None] | None = None
        self._scheduler: asyncio.Task[None] | None = None
        self._renewer: asyncio.Task[None] | None = None

    async def _create(
        self, task: str | Task, jobs: Mapping[str, Mapping[str, Any]], run_at: datetime | None
    ) -> int:
        """One INSERT of the jobs whose ids are free; how many it created."""
        registered = self.registry.get(task)
        now = utcnow()
        insert = postgresql.insert if self._dialect == "postgresql" else sqlite.insert
        statement = (
            insert(Job)
            .values(
                [
                    {
                        "id": job_id,
                        "task": registered.name,
                        "args": checked_args(args),
                        "status": JobStatus.QUEUED,
                        "attempts": 0,
                        "run_at": checked_run_at(run_at) or now,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for job_id, args in jobs.items()
                ]
            )
            .on_conflict_do_nothing(index_elements=["id"])
            .returning(Job.id)
        )
        async with transaction(self.services.sessions) as session:
            created = len((await session.execute(statement)).all())
        if created:
            self._wake.set()
        return created

    async def cancel(self, job_id: str) -> bool:
        now = utcnow()
        statement = (
            update(Job)
            .where(Job.id == job_id, Job.status == JobStatus.QUEUED)
            .values(status=JobStatus.CANCELLED, finished_at=now, updated_at=now)
            .returning(Job.id)
        )
        async with transaction(self.services.sessions) as session:
            return (await session.execute(statement)).scalar() is not None

    async def get(self, job_id: str) -> JobState | None:
        async with self.services.sessions() as session:
            job = await session.get(Job, job_id)
        if job is None:
            return None
        return JobState(status=job.status, attempts=job.attempts, last_error=job.last_error)

    async def prune(self, older_than: timedelta) -> None:
        # Only periodic runs: a one-off job's row is what keeps its id taken.
        periodic = [t.name for t in self.registry.periodic()]
        if not periodic:
            return
        statement = delete(Job).where(
            Job.task.in_(periodic),
            Job.status == JobStatus.SUCCEEDED,
            Job.finished_at < utcnow() - older_than,
        )
        async with transaction(self.services.sessions) as session:
            await session.execute(statement)

    async def start(self) -> None:
        if self._worker is not None:
            return
        self._worker = asyncio.create_task(self._work(), name="jobs-worker")
        self._renewer = asyncio.create_task(self._renew_leases(), name="jobs-lease-renewer")
        if self.registry.periodic():
            self._scheduler = asyncio.create_task(self._schedule(), name="jobs-scheduler")

    async def stop(self) -> None:
        # Claim nothing more, give running jobs the grace period, then put the rest back.
        await _cancel(self._worker, self._scheduler)
        self._worker = self._scheduler = None
        running = list(self._running.values())
        if running:
            _, late = await asyncio.wait(running, timeout=self.grace_seconds)
            for job in late:
                job.cancel()
            await asyncio.gather(*running, return_exceptions=True)
        await _cancel(self._renewer)
        self._renewer = None

    @property
    def _dialect(self) -> str:
        return self.services.engine.dialect.name

    async def _work(self) -> None:
        while True:
            self._wake.clear()
            wait = self.poll_seconds
            free = self.concurrency - len(self._running)
            if free > 0:
                try:
                    claimed = await self._claim(free)
                    for row in claimed:
                        self._launch(row)
                    if len(claimed) < free:
                        wait = min(wait, await self._seconds_to_next_due())
                except Exception:
                    log.exception("claiming jobs failed; trying again in %.1f s", wait)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(wait, MIN_WAIT_SECONDS)):
                    await self._wake.wait()

    def _claimable(self, now: datetime) -> Any:
        due = and_(Job.status == JobStatus.QUEUED, Job.run_at <= now)
        abandoned = and_(Job.status == JobStatus.RUNNING, Job.lease_expires_at < now)
        # A runner takes only tasks it knows: another process may know more.
        return and_(or_(due, abandoned), Job.task.in_(list(self.registry.tasks)))

    async def _claim(self, limit: int) -> list[Row[Any]]:
        now = utcnow()
        claimable = self._claimable(now)
        candidates = select(Job.id).where(claimable).order_by(Job.run_at).limit(limit)
        # The condition is repeated on the UPDATE itself: a row another runner claimed
        # between the sub-select and the update no longer matches, on either database.
        statement = (
            update(Job)
            .where(Job.id.in_(candidates), claimable)
            .values(
                status=JobStatus.RUNNING,
                leased_by=self.runner_id,
                lease_expires_at=now + timedelta(seconds=self.lease_seconds),
                attempts=Job.attempts + 1,
                updated_at=now,
            )
            .returning(Job.id, Job.task, Job.args, Job.attempts)
            .execution_options(synchronize_session=False)
        )
        async with transaction(self.services.sessions) as session:
            return list((await session.execute(statement)).all())

    async def _seconds_to_next_due(self) -> float:
        statement = select(func.min(Job.run_at)).where(
            Job.status == JobStatus.QUEUED, Job.task.in_(list(self.registry.tasks))
        )
        async with self.services.sessions() as session:
            next_due = await session.scalar(statement)
        if next_due is None:
            return self.poll_seconds
        return (next_due - utcnow()).total_seconds()

    def _launch(self, row: Row[Any]) -> None:
        job_id, name, args, attempt = row.id, row.task, row.args, row.attempts
        running = asyncio.create_task(self._run(name, job_id, args, attempt), name=f"job {job_id}")
        self._running[job_id] = running

        def done(_: asyncio.Task[None]) -> None:
            self._running.pop(job_id, None)
            self._wake.set()

        running.add_done_callback(done)

    async def _run(self, name: str, job_id: str, args: dict[str, Any], attempt: int) -> None:
        task = self.registry.get(name)
        if attempt > task.retry.max_attempts:
            # Claimed again after its lease expired on its last allowed run.
            error = f"its runner stopped during run {attempt - 1} (the lease expired)"
            await self._settle(job_id, JobStatus.FAILED, error=error)
            return
        context = JobContext(services=self.services, jobs=self, job_id=job_id, attempt=attempt)
        try:
            await task.function(context, **args)
        except asyncio.CancelledError:
            await self._settle(job_id, JobStatus.QUEUED, uncount=True)
            raise
        except Exception as exc:
            delay = task.retry.delay_after(attempt)
            log.warning(
                "job %s (%s) failed on run %d%s",
                job_id,
                name,
                attempt,
                "; giving up" if delay is None else f"; again in {delay:.1f} s",
                exc_info=exc,
            )
            if delay is None:
                await self._settle(job_id, JobStatus.FAILED, error=describe_error(exc))
            else:
                retry_at = utcnow() + timedelta(seconds=delay)
                await self._settle(
                    job_id, JobStatus.QUEUED, error=describe_error(exc), run_at=retry_at
                )
        else:
            await self._settle(job_id, JobStatus.SUCCEEDED)

    async def _settle(
        self,
        job_id: str,
        status: JobStatus,
        *,
        error: str | None = None,
        run_at: datetime | None = None,
        uncount: bool = False,
    ) -> None:
        """Record how a run ended, if this runner still holds the job's lease."""
        now = utcnow()
        values: dict[str, Any] = {
            "status": status,
            "leased_by": None,
            "lease_expires_at": None,
            "updated_at": now,
        }
        if error is not None:
            values["last_error"] = error
        if status is JobStatus.QUEUED:
            values["run_at"] = run_at or now
        else:
            values["finished_at"] = now
        if uncount:  # a run cut short by shutdown is not the task's failure
            values["attempts"] = Job.attempts - 1
        statement = (
            update(Job)
            .where(
                Job.id == job_id,
                Job.leased_by == self.runner_id,
                Job.status == JobStatus.RUNNING,
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        try:
            async with transaction(self.services.sessions) as session:
                await session.execute(statement)
        except Exception:
            # The lease will expire and another claim will run the job again.
            log.exception("could not record job %s as %s", job_id, status.value)

    async def _renew_leases(self) -> None:
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            if not self._running:
                continue
            now = utcnow()
            statement = (
                update(Job)
                .where(Job.leased_by == self.runner_id, Job.status == JobStatus.RUNNING)
                .values(lease_expires_at=now + timedelta(seconds=self.lease_seconds))
                .execution_options(synchronize_session=False)
            )
            try:
                async with transaction(self.services.sessions) as session:
                    await session.execute(statement)
            except Exception:
                log.exception("could not renew job leases")

    async def _schedule(self) -> None:
        """Enqueue each periodic task at its ticks; the id makes it one run per tick."""
        schedules = [(t, t.cron) for t in self.registry.periodic() if t.cron is not None]
        while True:
            now = time.time()
            ticks = [(t, int(croniter(cron, now).get_next(float))) for t, cron in schedules]
            tick = min(at for _, at in ticks)
            await asyncio.sleep(max(0.0, tick - time.time()))
            for task, at in ticks:
                if at != tick:
                    continue
                job_id = periodic_job_id(task, tick)
                try:
                    await self.enqueue(
                        task, job_id=job_id, run_at=datetime.fromtimestamp(tick, UTC)
                    )
                except Exception:
                    log.exception("could not enqueue periodic job %s", job_id)


async def _cancel(*tasks: asyncio.Task[None] | None) -> None:
    for running in tasks:
        if running is not None:
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running
