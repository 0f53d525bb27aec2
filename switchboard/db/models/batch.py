"""Batch jobs: a list of numbers one agent calls, with concurrency, retries and a schedule.

Each row is one number to reach. A row is claimed for dialling with a
conditional UPDATE (``pending`` to ``dialing``), and the call of each attempt
has an id derived from the row and the attempt, so however many processes
pump a batch, and however often one crashes, a number is dialled once per
attempt.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from switchboard.db.base import ID_LENGTH, Base, TimestampMixin, id_column, utcnow
from switchboard.db.types import JSONType, UTCDateTime, str_enum


class BatchStatus(StrEnum):
    RUNNING = "running"  # dialling (or waiting for start_at)
    PAUSED = "paused"  # no new dials; calls in progress go on
    CANCELED = "canceled"  # no new dials, pending rows canceled
    COMPLETED = "completed"  # every row reached a final outcome


class RowStatus(StrEnum):
    PENDING = "pending"  # waiting for its turn (or its retry time)
    DIALING = "dialing"  # a call of this row is live
    DONE = "done"  # a final outcome: answered, or out of attempts
    CANCELED = "canceled"  # the batch was canceled, or ended at end_at, before it was reached


class Batch(TimestampMixin, Base):
    __tablename__ = "batches"

    id: Mapped[str] = id_column("bat")
    workspace_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    agent_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("agents.id", ondelete="CASCADE")
    )
    name: Mapped[str] = mapped_column(String(120), default="")
    status: Mapped[BatchStatus] = mapped_column(
        str_enum(BatchStatus, "batch_status"), default=BatchStatus.RUNNING
    )
    # How each call is placed: from, machine detection, voicemail message, ring timeout.
    dial: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    concurrency: Mapped[int] = mapped_column(default=1)
    max_attempts: Mapped[int] = mapped_column(default=1)
    retry_on: Mapped[list[str]] = mapped_column(JSONType, default=list)
    retry_after_seconds: Mapped[int] = mapped_column(default=300)
    start_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    end_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    row_errors: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    max_live_seen: Mapped[int] = mapped_column(default=0)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class BatchRow(Base):
    __tablename__ = "batch_rows"
    __table_args__ = (
        UniqueConstraint("batch_id", "line"),
        Index("ix_batch_rows_batch_status", "batch_id", "status"),
    )

    id: Mapped[str] = id_column("row")
    batch_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("batches.id", ondelete="CASCADE")
    )
    line: Mapped[int]  # the CSV line it came from
    phone: Mapped[str] = mapped_column(String(32))
    variables: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    timezone: Mapped[str | None] = mapped_column(String(64), default=None)
    status: Mapped[RowStatus] = mapped_column(
        str_enum(RowStatus, "batch_row_status"), default=RowStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    call_id: Mapped[str | None] = mapped_column(String(ID_LENGTH), default=None)
    outcome: Mapped[str | None] = mapped_column(String(32), default=None)  # last call's status
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
