"""The batch pump: a job that looks at a batch once a second and dials what is due.

Each run does three things, all safe to repeat and to run in several
processes at once:

1. It settles rows whose call has ended: the call's status becomes the row's
   outcome (``dnc`` for a call its placing job refused because the number was
   on the do-not-call list by then), and a retryable outcome (busy, no
   answer, failed) with attempts left sends the row back to ``pending`` after
   a backoff.
2. It dials due rows while fewer than ``concurrency`` are live: each row is
   claimed with a conditional UPDATE that also gives it the id of this
   attempt's call, so a crash between claim and call is repaired by the next
   run creating that very call, never a second one.
3. It schedules itself again in a second while anything is left to do, and
   marks the batch completed when nothing is.

A call is placed by its own job (``place:{call_id}``), enqueued again by each
run until it has run: the id makes that one job.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard.calls.states import FINAL
from switchboard.db.base import new_id, utcnow
from switchboard.db.models import Batch, BatchRow, BatchStatus, Call, CallStatus, RowStatus
from switchboard.dialer.attempts import Attempt, enqueue_placing, keep_placing, record_call
from switchboard.dialer.dnc import END_REASON as DNC_END_REASON
from switchboard.dialer.signals import PUMP_TASK, schedule_tick
from switchboard.jobs.queue import JobQueue
from switchboard.jobs.tasks import JobContext, Retry, task
from switchboard.services import Services
from switchboard.telephony.dial_jobs import place_job_id

log = logging.getLogger(__name__)

TICK_SECONDS = 1
MAX_BACKOFF_SECONDS = 86_400
OUTCOMES = {
    CallStatus.COMPLETED: "completed",
    CallStatus.TRANSFERRED: "transferred",
    CallStatus.BUSY: "busy",
    CallStatus.NO_ANSWER: "no_answer",
    CallStatus.FAILED: "failed",
    CallStatus.CANCELED: "canceled",
    CallStatus.REJECTED: "failed",
}
DNC_OUTCOME = "dnc"  # the number was on the do-not-call list when its turn came


@task(PUMP_TASK, retry=Retry(max_attempts=3, base_seconds=1.0, max_seconds=5.0))
async def pump_batch(ctx: JobContext, *, batch_id: str) -> None:
    services, jobs = ctx.services, ctx.jobs
    async with services.sessions() as session:
        batch = await session.get(Batch, batch_id)
    if batch is None:
        return
    await _settle(services, jobs, batch)
    if batch.status is BatchStatus.RUNNING:
        await _dial_due(services, jobs, batch)
    if await _finished(services, batch):
        return
    await schedule_tick(jobs, batch_id, TICK_SECONDS)


async def _settle(services: Services, jobs: JobQueue, batch: Batch) -> None:
    """Give each live row's call its due: its outcome once ended, its job while queued."""
    now = utcnow()
    async with services.sessions() as session:
        live = list(
            await session.execute(
                select(BatchRow, Call)
                .outerjoin(Call, Call.id == BatchRow.call_id)
                .where(BatchRow.batch_id == batch.id, BatchRow.status == RowStatus.DIALING)
            )
        )
    for row, call in live:
        if call is None:  # claimed, then the process died before the call was recorded
            await _start_call(services, jobs, batch, row)
        elif call.status in FINAL:
            await _record_outcome(services, batch, row, call)
        else:
            await keep_placing(services, jobs, call, place_job_id(call.id), now)


async def _record_outcome(services: Services, batch: Batch, row: BatchRow, call: Call) -> None:
    outcome = OUTCOMES.get(call.status, call.status.value)
    if call.end_reason == DNC_END_REASON:  # refused at dial time: never dialled, never retried
        outcome = DNC_OUTCOME
    retry = outcome in batch.retry_on and row.attempts < batch.max_attempts
    values: dict[str, object] = {"outcome": outcome}
    if retry and batch.status in (BatchStatus.RUNNING, BatchStatus.PAUSED):
        backoff = min(batch.retry_after_seconds * 2 ** (row.attempts - 1), MAX_BACKOFF_SECONDS)
        values.update(
            status=RowStatus.PENDING, next_attempt_at=utcnow() + timedelta(seconds=backoff)
        )
    else:
        values["status"] = RowStatus.DONE
    async with services.sessions() as session:
        await session.execute(
            update(BatchRow)
            .where(
                BatchRow.id == row.id,
                BatchRow.status == RowStatus.DIALING,
                BatchRow.call_id == call.id,
            )
            .values(**values)
        )
        await session.commit()


async def _dial_due(services: Services, jobs: JobQueue, batch: Batch) -> None:
    now = utcnow()
    if batch.start_at is not None and now < batch.start_at:
        return
    if batch.end_at is not None and now >= batch.end_at:
        async with services.sessions() as session:
            await session.execute(
                update(BatchRow)
                .where(BatchRow.batch_id == batch.id, BatchRow.status == RowStatus.PENDING)
                .values(status=RowStatus.CANCELED, outcome="expired")
            )
            await session.commit()
        return
    async with services.sessions() as session:
        live = await _live_rows(session, batch.id)
        free = batch.concurrency - live
        if free <= 0:
            return
        due = list(
            await session.scalars(
                select(BatchRow)
                .where(
                    BatchRow.batch_id == batch.id,
                    BatchRow.status == RowStatus.PENDING,
                    BatchRow.next_attempt_at <= now,
                )
                .order_by(BatchRow.next_attempt_at, BatchRow.line)
                .limit(free)
            )
        )
    for row in due:
        claimed = await _claim(services, batch, row)
        if claimed is not None:
            await _start_call(services, jobs, batch, claimed)
    async with services.sessions() as session:
        live = await _live_rows(session, batch.id)
        await session.execute(
            update(Batch)
            .where(Batch.id == batch.id, Batch.max_live_seen < live)
            .values(max_live_seen=live)
        )
        await session.commit()


async def _live_rows(session: AsyncSession, batch_id: str) -> int:
    count = await session.scalar(
        select(func.count())
        .select_from(BatchRow)
        .where(BatchRow.batch_id == batch_id, BatchRow.status == RowStatus.DIALING)
    )
    return int(count or 0)


async def _claim(services: Services, batch: Batch, row: BatchRow) -> BatchRow | None:
    """Take ``row`` for its next attempt, naming the attempt's call; None if another run did,
    or if the batch already has ``concurrency`` rows live.

    Pump runs may overlap (a tick and an ended call's wake-up), so the limit is checked
    in the claim itself: one UPDATE whose condition counts the live rows, with the batch
    row locked first where the database has row locks (PostgreSQL), so claimers take
    turns; SQLite runs one writer at a time anyway.
    """
    call_id = new_id("call")
    live = (
        select(func.count())
        .select_from(BatchRow)
        .where(BatchRow.batch_id == batch.id, BatchRow.status == RowStatus.DIALING)
        .scalar_subquery()
    )
    async with services.sessions() as session:
        await session.execute(select(Batch.id).where(Batch.id == batch.id).with_for_update())
        result = await session.execute(
            update(BatchRow)
            .where(
                BatchRow.id == row.id,
                BatchRow.status == RowStatus.PENDING,
                live < batch.concurrency,
            )
            .values(status=RowStatus.DIALING, attempts=BatchRow.attempts + 1, call_id=call_id)
        )
        await session.commit()
        if not result.rowcount:  # type: ignore[attr-defined]
            return None
        return await session.get(BatchRow, row.id)


async def _start_call(services: Services, jobs: JobQueue, batch: Batch, row: BatchRow) -> None:
    """Record the claimed attempt's call (unless a previous run did) and ask for it to be placed."""
    assert row.call_id is not None
    error = await record_call(
        services,
        Attempt(
            workspace_id=batch.workspace_id,
            agent_id=batch.agent_id,
            dial=batch.dial,
            from_number=batch.dial.get("from"),
            to=row.phone,
            variables=row.variables,
            call_id=row.call_id,
            batch_id=batch.id,
        ),
    )
    if error is not None:  # the agent or its number changed since the upload
        async with services.sessions() as session:
            await session.execute(
                update(BatchRow)
                .where(BatchRow.id == row.id)
                .values(status=RowStatus.DONE, outcome="failed", last_error=error)
            )
            await session.commit()
        return
    await enqueue_placing(jobs, row.call_id, place_job_id(row.call_id))


async def _finished(services: Services, batch: Batch) -> bool:
    """Whether nothing is left to do: then a running (or canceled) batch is marked done."""
    async with services.sessions() as session:
        open_rows = await session.scalar(
            select(func.count())
            .select_from(BatchRow)
            .where(
                BatchRow.batch_id == batch.id,
                BatchRow.status.in_([RowStatus.PENDING, RowStatus.DIALING]),
            )
        )
        if open_rows:
            return batch.status is BatchStatus.PAUSED and not await _live_rows(session, batch.id)
        if batch.status is BatchStatus.RUNNING:
            await session.execute(
                update(Batch)
                .where(Batch.id == batch.id, Batch.status == BatchStatus.RUNNING)
                .values(status=BatchStatus.COMPLETED, finished_at=utcnow())
            )
        elif batch.finished_at is None:
            await session.execute(
                update(Batch).where(Batch.id == batch.id).values(finished_at=utcnow())
            )
        await session.commit()
    log.info("batch %s finished", batch.id)
    return True
