"""Batch jobs: creating one from a CSV, showing its progress, pausing, resuming, cancelling.

Dialling is the pump's (``switchboard.dialer.pump``); this module only
changes what the pump reads: a batch's status and its rows.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard.agents.schema import MAX_GREETING_CHARS
from switchboard.calls.outbound import plan_dialing
from switchboard.db.base import utcnow
from switchboard.db.models import Batch, BatchRow, BatchStatus, RowStatus
from switchboard.db.owned import get_owned, move_owned, page_owned
from switchboard.dialer.csv_rows import read_rows, set_aside
from switchboard.dialer.dnc import blocked_numbers
from switchboard.errors import InvalidInput
from switchboard.telephony.carrier import MachineDetection

RETRYABLE = ("busy", "no_answer", "failed")


class BatchOptions(BaseModel):
    """How a batch dials (the form fields beside its CSV)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    agent_id: str = Field(max_length=40)
    name: str = Field(default="", max_length=120)
    from_number: str | None = Field(default=None, alias="from", max_length=32)
    concurrency: int = Field(default=2, ge=1, le=100)
    max_attempts: int = Field(default=1, ge=1, le=10)
    retry_on: list[str] = Field(default_factory=lambda: list(RETRYABLE), max_length=3)
    retry_after_seconds: int = Field(default=300, ge=0, le=86_400)
    start_at: datetime | None = None
    end_at: datetime | None = None
    machine_detection: MachineDetection = "off"
    voicemail_message: str | None = Field(default=None, max_length=MAX_GREETING_CHARS)
    ring_timeout_seconds: int = Field(default=30, ge=5, le=120)

    @field_validator("retry_on")
    @classmethod
    def _known_outcomes(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(RETRYABLE))
        if unknown:
            raise ValueError(f"only {list(RETRYABLE)} can be retried, not {unknown}")
        return list(dict.fromkeys(value))

    @field_validator("start_at", "end_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("give a time zone (e.g. 2026-12-01T09:00:00Z)")
        return value


async def create_batch(
    session: AsyncSession,
    workspace_id: str,
    options: BatchOptions,
    csv_data: bytes,
    *,
    simulator_enabled: bool,
) -> Batch:
    """Check the options and every row; store the good rows and the report of the bad (a
    number on the do-not-call list is a bad row; the pump asks the list again at dial time)."""
    if options.start_at and options.end_at and options.end_at <= options.start_at:
        raise InvalidInput("end_at must be after start_at", field="end_at")
    plan = await plan_dialing(
        session,
        workspace_id,
        agent_id=options.agent_id,
        from_number=options.from_number,
        machine_detection=options.machine_detection,
        voicemail_message=options.voicemail_message,
        ring_timeout_seconds=options.ring_timeout_seconds,
        simulator_enabled=simulator_enabled,
    )
    good, bad = read_rows(csv_data, plan.config, plan.carrier)
    listed = await blocked_numbers(session, workspace_id, (row.phone for row in good))
    good, bad = set_aside(good, bad, listed)
    if not good:
        raise InvalidInput(
            f"no row can be called ({len(bad)} bad rows; the first: line"
            f" {bad[0].line}: {bad[0].reason})"
            if bad
            else "the CSV has no rows",
            field="file",
        )
    batch = Batch(
        workspace_id=workspace_id,
        agent_id=plan.agent.id,
        name=options.name,
        dial={**plan.dial, "from": plan.number.number},
        concurrency=options.concurrency,
        max_attempts=options.max_attempts,
        retry_on=options.retry_on,
        retry_after_seconds=options.retry_after_seconds,
        start_at=options.start_at,
        end_at=options.end_at,
        row_errors=[row.as_json() for row in bad],
    )
    session.add(batch)
    await session.flush()
    start = options.start_at or utcnow()
    session.add_all(
        BatchRow(
            batch_id=batch.id,
            line=row.line,
            phone=row.phone,
            variables=row.variables,
            timezone=row.timezone,
            next_attempt_at=start,
        )
        for row in good
    )
    await session.commit()
    return batch


async def get_batch(session: AsyncSession, workspace_id: str, batch_id: str) -> Batch:
    return await get_owned(session, Batch, workspace_id, batch_id, "batch")


async def list_batches(
    session: AsyncSession, workspace_id: str, *, limit: int, after: str | None
) -> list[Batch]:
    return await page_owned(session, Batch, workspace_id, limit=limit, after=after)


async def batch_rows(session: AsyncSession, batch_id: str) -> list[BatchRow]:
    rows = await session.scalars(
        select(BatchRow).where(BatchRow.batch_id == batch_id).order_by(BatchRow.line)
    )
    return list(rows)


async def progress(session: AsyncSession, batch_id: str) -> dict[str, Any]:
    """Rows per status, and rows per outcome (the last call's status) among the finished."""
    counts = await session.execute(
        select(BatchRow.status, BatchRow.outcome, func.count())
        .where(BatchRow.batch_id == batch_id)
        .group_by(BatchRow.status, BatchRow.outcome)
    )
    by_status: Counter[str] = Counter()
    by_outcome: Counter[str] = Counter()
    for status, outcome, count in counts:
        by_status[str(status.value if hasattr(status, "value") else status)] += count
        if status in (RowStatus.DONE, RowStatus.CANCELED) and outcome:
            by_outcome[outcome] += count
    total = sum(by_status.values())
    finished = by_status[RowStatus.DONE.value] + by_status[RowStatus.CANCELED.value]
    return {
        "rows": total,
        "finished": finished,
        "by_status": {s.value: by_status[s.value] for s in RowStatus},
        "by_outcome": dict(sorted(by_outcome.items())),
    }


async def pause_batch(session: AsyncSession, workspace_id: str, batch_id: str) -> Batch:
    """No new dials until resumed; calls already live go on."""
    return await _move(session, workspace_id, batch_id, BatchStatus.PAUSED, {BatchStatus.RUNNING})


async def resume_batch(session: AsyncSession, workspace_id: str, batch_id: str) -> Batch:
    return await _move(session, workspace_id, batch_id, BatchStatus.RUNNING, {BatchStatus.PAUSED})


async def cancel_batch(session: AsyncSession, workspace_id: str, batch_id: str) -> Batch:
    """No more dials: rows not reached are canceled; calls already live go on to their end."""
    batch = await _move(
        session,
        workspace_id,
        batch_id,
        BatchStatus.CANCELED,
        {BatchStatus.RUNNING, BatchStatus.PAUSED},
    )
    await session.execute(
        update(BatchRow)
        .where(BatchRow.batch_id == batch_id, BatchRow.status == RowStatus.PENDING)
        .values(status=RowStatus.CANCELED, outcome="canceled")
    )
    await session.commit()
    return batch


async def _move(
    session: AsyncSession,
    workspace_id: str,
    batch_id: str,
    new: BatchStatus,
    allowed_from: set[BatchStatus],
) -> Batch:
    return await move_owned(session, Batch, workspace_id, batch_id, "batch", new, allowed_from)
