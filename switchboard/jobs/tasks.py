"""Tasks: named ``async`` functions a job runs, registered once, known to every runner.

A task takes a :class:`JobContext` and keyword arguments that survive JSON::

    @task("postcall.analyse", retry=Retry(max_attempts=3))
    async def analyse(ctx: JobContext, *, call_id: str) -> None: ...

Both runners read the same registration: its name, its :class:`Retry` policy
and, for a periodic task, its cron schedule. A worker process imports every
module in :data:`TASK_MODULES` so it knows every task before it runs one.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from croniter import croniter

if TYPE_CHECKING:
    from switchboard.jobs.queue import JobQueue
    from switchboard.services import Services

# Every module that registers tasks, one line each: a worker imports them all.
TASK_MODULES: tuple[str, ...] = (
    "switchboard.telephony.dial_jobs",  # calls.place
    "switchboard.dialer.pump",  # batches.pump
    "switchboard.dialer.hopper",  # campaigns.tick
    "switchboard.jobs.prune",  # jobs.prune
)

MAX_ERROR_LENGTH = 2000

TaskFunction = Callable[..., Awaitable[None]]


class UnknownTask(LookupError):
    """A job names a task no module registered (a typo, or a module missing from TASK_MODULES)."""


@dataclass(frozen=True)
class Retry:
    """How many runs a task gets, and how long it waits after each failure.

    After failed run ``n`` the job waits ``base_seconds * 2 ** (n - 1)``
    seconds, never more than ``max_seconds``; after run ``max_attempts`` it
    fails for good.
    """

    max_attempts: int = 5
    base_seconds: float = 2.0
    max_seconds: float = 600.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if not 0 <= self.base_seconds <= self.max_seconds:
            raise ValueError("need 0 <= base_seconds <= max_seconds")

    def delay_after(self, attempt: int) -> float | None:
        """Seconds to wait after failed run ``attempt`` (1-based); None when none are left."""
        if attempt >= self.max_attempts:
            return None
        # The exponent is capped so a large attempt number cannot overflow a float.
        return min(self.max_seconds, self.base_seconds * 2.0 ** min(attempt - 1, 64))


@dataclass(frozen=True)
class JobContext:
    """What a running job gets besides its arguments."""

    services: Services  # the process's database, settings, Redis, HTTP client
    jobs: JobQueue  # the queue running this job, to enqueue follow-ups
    job_id: str
    attempt: int  # 1 for the first run


@dataclass(frozen=True)
class Task:
    """A registered task; calling it runs the function directly (handy in tests)."""

    name: str
    function: TaskFunction
    retry: Retry = Retry()
    cron: str | None = None  # periodic: 5 fields, or 6 with seconds last (``*/10 * * * * *``)

    def __call__(self, ctx: JobContext, **args: Any) -> Awaitable[None]:
        return self.function(ctx, **args)


@dataclass
class TaskRegistry:
    """Tasks by name. The package-wide one is :data:`TASKS`; tests may build their own."""

    tasks: dict[str, Task] = field(default_factory=dict)

    def task(
        self, name: str, *, retry: Retry | None = None, cron: str | None = None
    ) -> Callable[[TaskFunction], Task]:
        """Register the decorated ``async def`` as task ``name``."""

        def register(function: TaskFunction) -> Task:
            if name in self.tasks:
                raise ValueError(f"task {name!r} is already registered")
            if cron is not None and not croniter.is_valid(cron):
                raise ValueError(f"task {name!r}: {cron!r} is not a cron schedule")
            registered = Task(name=name, function=function, retry=retry or Retry(), cron=cron)
            self.tasks[name] = registered
            return registered

        return register

    def get(self, task: str | Task) -> Task:
        name = task if isinstance(task, str) else task.name
        try:
            return self.tasks[name]
        except KeyError:
            raise UnknownTask(f"no task named {name!r} is registered") from None

    def __iter__(self) -> Iterator[Task]:
        return iter(self.tasks.values())

    def periodic(self) -> list[Task]:
        return [t for t in self.tasks.values() if t.cron is not None]


TASKS = TaskRegistry()
task = TASKS.task


def import_task_modules(modules: tuple[str, ...] = TASK_MODULES) -> None:
    """Import every module that registers tasks, so a runner knows them all."""
    for module in modules:
        importlib.import_module(module)


def checked_args(args: Mapping[str, Any] | None) -> dict[str, Any]:
    """``args`` as a plain dict, refused at enqueue time if JSON cannot carry it."""
    plain = dict(args or {})
    try:
        json.dumps(plain, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"job arguments must be JSON-serialisable: {exc}") from None
    return plain


def checked_run_at(run_at: datetime | None) -> datetime | None:
    """``run_at`` refused if it is naive: a time without a zone is a bug waiting to happen."""
    if run_at is not None and run_at.utcoffset() is None:
        raise ValueError("run_at must be timezone-aware (use datetime.now(UTC) + ...)")
    return run_at


def periodic_job_id(task: Task, timestamp: int) -> str:
    """The id of a periodic task's run at ``timestamp`` (Unix seconds): one run per tick."""
    return f"{task.name}@{timestamp}"


def describe_error(exc: BaseException) -> str:
    """The error as stored on a job: its type and message, bounded."""
    text = f"{type(exc).__name__}: {exc}"
    return text[:MAX_ERROR_LENGTH]
