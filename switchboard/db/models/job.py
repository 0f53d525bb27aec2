"""Background jobs: the embedded runner's queue, and the ids the distributed runner was given.

A job id is chosen by whoever enqueues (``dial:{batch}:{row}:{attempt}``) and
is the row's primary key, so the same id enqueued twice is one job, in any
process, before, during and after it runs. Rows are kept when a job finishes
for that reason.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from switchboard.db.base import ID_LENGTH, Base, TimestampMixin, utcnow
from switchboard.db.types import JSONType, UTCDateTime, str_enum

JOB_ID_LENGTH = 200
TASK_NAME_LENGTH = 128


class JobStatus(StrEnum):
    QUEUED = "queued"  # waiting for its ``run_at`` (first run or a retry)
    RUNNING = "running"  # leased by a runner until ``lease_expires_at``
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # out of attempts; ``last_error`` says why
    CANCELLED = "cancelled"


class Job(TimestampMixin, Base):
    """One job of the embedded (in-process) runner.

    A runner claims a due job with a conditional UPDATE that sets a lease; it
    renews the lease while the job runs, so a lease that expires means the
    runner died and any runner may claim the job again.
    """

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_status_run_at", "status", "run_at"),)

    id: Mapped[str] = mapped_column(String(JOB_ID_LENGTH), primary_key=True)
    task: Mapped[str] = mapped_column(String(TASK_NAME_LENGTH))
    args: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    status: Mapped[JobStatus] = mapped_column(
        str_enum(JobStatus, "job_status"), default=JobStatus.QUEUED
    )
    attempts: Mapped[int] = mapped_column(default=0)  # runs started, this one included
    run_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    leased_by: Mapped[str | None] = mapped_column(String(ID_LENGTH), default=None)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class JobId(Base):
    """An id the distributed runner (procrastinate) was given, kept after the job is gone.

    Procrastinate's queueing lock refuses a second job with the same id only
    while the first is waiting; this row refuses it for good. It is inserted in
    the same transaction as procrastinate's job.
    """

    __tablename__ = "job_ids"

    id: Mapped[str] = mapped_column(String(JOB_ID_LENGTH), primary_key=True)
    task: Mapped[str] = mapped_column(String(TASK_NAME_LENGTH))
    procrastinate_job_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
