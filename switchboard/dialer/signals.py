"""Waking a batch's pump: on a schedule, and as soon as one of its calls ends.

Kept apart from the pump so the places where calls end (the media socket,
the carrier's callbacks) can wake it without importing the dialer.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from switchboard.db.base import new_id, utcnow
from switchboard.jobs.queue import JobQueue

PUMP_TASK = "batches.pump"


async def wake_pump(jobs: JobQueue, batch_id: str, *, reason: str | None = None) -> None:
    """Run ``batch_id``'s pump now: once per ``reason`` (an ended call's id), or, without
    one, once more whatever ran before (the batch was created, resumed or canceled)."""
    job_id = f"pump:{batch_id}:{reason or new_id('wake')}"
    await jobs.enqueue(PUMP_TASK, {"batch_id": batch_id}, job_id=job_id)


async def schedule_tick(jobs: JobQueue, batch_id: str, delay_seconds: int) -> None:
    """The pump's next look in ``delay_seconds``: one run per batch and second, however
    many runs ask for it."""
    at = utcnow() + timedelta(seconds=delay_seconds)
    job_id = f"pump:{batch_id}:tick-{int(at.timestamp())}"
    await jobs.enqueue(PUMP_TASK, {"batch_id": batch_id}, job_id=job_id, run_at=at)


async def call_ended(jobs: JobQueue, dial: dict[str, Any] | None, call_id: str) -> None:
    """A call ended: if a batch placed it, its pump can dial the next row now."""
    batch_id = (dial or {}).get("batch_id")
    if batch_id:
        await wake_pump(jobs, str(batch_id), reason=f"ended-{call_id}")
