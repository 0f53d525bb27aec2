"""Background jobs: one small interface, two runners chosen by ``SWITCHBOARD_JOBS``.

Register a task with :func:`task`, enqueue it through a :class:`JobQueue`
(``services.jobs``) with an id of your choosing; the same id is one job, ever.
See ``queue.py`` for the interface, ``embedded.py`` and ``distributed.py``
for the runners.
"""

from switchboard.jobs.queue import JobQueue, JobState, create_job_queue, prepare_job_storage
from switchboard.jobs.tasks import TASKS, JobContext, Retry, Task, TaskRegistry, UnknownTask, task

__all__ = [
    "TASKS",
    "JobContext",
    "JobQueue",
    "JobState",
    "Retry",
    "Task",
    "TaskRegistry",
    "UnknownTask",
    "create_job_queue",
    "prepare_job_storage",
    "task",
]
