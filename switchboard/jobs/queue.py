"""The one job interface, and the choice of runner by ``SWITCHBOARD_JOBS``.

``inprocess`` (the default): jobs live in the ``jobs`` table and run inside
``switchboard serve``. ``procrastinate``: jobs live in procrastinate's tables on
PostgreSQL; ``serve`` only enqueues and ``switchboard worker`` runs them.
Callers cannot tell the two apart.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from switchboard.db.base import new_id
from switchboard.db.models import JobStatus
from switchboard.jobs.tasks import TASKS, Task, TaskRegistry, import_task_modules

if TYPE_CHECKING:
    from switchboard.config import Settings
    from switchboard.services import Services

# Defaults both runners share.
CONCURRENCY = 4  # jobs one process runs at once
POLL_SECONDS = 1.0  # how soon a job enqueued elsewhere, or come due, is seen
GRACE_SECONDS = 10.0  # how long a stopping runner lets running jobs finish before putting them back


@dataclass(frozen=True)
class JobState:
    """Where a job is: its status, the runs it has had and the last error it raised."""

    status: JobStatus
    attempts: int
    last_error: str | None


class JobQueue(ABC):
    """Enqueue jobs by task and id; ``start`` runs them here if this process runs jobs."""

    registry: TaskRegistry

    async def enqueue(
        self,
        task: str | Task,
        args: Mapping[str, Any] | None = None,
        *,
        job_id: str | None = None,
        run_at: datetime | None = None,
    ) -> bool:
        """Enqueue one run of ``task`` with ``args`` (JSON), not before ``run_at``.

        ``job_id`` is the caller's idempotency key: if a job with that id was
        ever enqueued (waiting, running or finished, in any process), nothing
        is created and the result is False. Without it a fresh id is made.
        Raises ``UnknownTask`` for an unregistered task.
        """
        return await self._create(task, {job_id or new_id("job"): args or {}}, run_at) == 1

    async def enqueue_many(self, task: str | Task, jobs: Mapping[str, Mapping[str, Any]]) -> int:
        """Enqueue one run of ``task`` per ``{job_id: args}``, as ``enqueue`` would each, in
        one transaction: a dialer starts many calls a tick. Returns how many were created."""
        return await self._create(task, jobs, None) if jobs else 0

    @abstractmethod
    async def _create(
        self, task: str | Task, jobs: Mapping[str, Mapping[str, Any]], run_at: datetime | None
    ) -> int:
        """Create the jobs whose ids are free, in one transaction; how many it created."""

    @abstractmethod
    async def cancel(self, job_id: str) -> bool:
        """Cancel a job that has not started; False if it is running, finished or unknown.

        The id stays taken: enqueueing it again is refused.
        """

    @abstractmethod
    async def get(self, job_id: str) -> JobState | None:
        """The job's state, or None if no job has this id."""

    @abstractmethod
    async def prune(self, older_than: timedelta) -> None:
        """Forget the succeeded runs of periodic tasks finished more than ``older_than`` ago.

        A periodic task running every second leaves 86,400 rows a day; its runs
        are worth nothing once finished. A runner may also forget the state of
        other finished jobs (``get`` returns None), never their ids: enqueueing
        a pruned id is still refused.
        """

    @abstractmethod
    async def start(self) -> None:
        """Start running jobs in this process (if this kind of queue does here)."""

    @abstractmethod
    async def stop(self) -> None:
        """Stop running jobs and release connections; safe to call twice or unstarted.

        A job cut short is put back to run again, without counting the run.
        """


def create_job_queue(services: Services, registry: TaskRegistry = TASKS) -> JobQueue:
    """The queue ``SWITCHBOARD_JOBS`` asks for, knowing every task. Not started yet."""
    import_task_modules()
    if services.settings.jobs == "procrastinate":
        from switchboard.jobs.distributed import ProcrastinateQueue

        return ProcrastinateQueue(services, registry)
    from switchboard.jobs.embedded import EmbeddedQueue

    return EmbeddedQueue(services, registry)


async def prepare_job_storage(settings: Settings) -> None:
    """Create the runner's own tables where migrations do not (procrastinate's schema).

    Idempotent; ``switchboard migrate`` calls it, and a procrastinate queue
    calls it when it starts.
    """
    if settings.jobs == "procrastinate":
        from switchboard.jobs.distributed import apply_procrastinate_schema

        await apply_procrastinate_schema(settings.resolved_database_url)
