"""The job that places a queued outbound call (``switchboard.telephony.dial``).

Its id is ``place:{call_id}``: enqueued twice, it runs once, and ``place_call``
itself does nothing for a call that is no longer queued, so a duplicate
delivery never dials twice. When the workspace is at its call limit the job
is retried with backoff; when the retries run out the call fails
(``capacity``) instead of waiting forever.
"""

from __future__ import annotations

from switchboard.db.models import CallStatus
from switchboard.jobs.tasks import JobContext, Retry, task
from switchboard.telephony.dial import NoFreeSlot, place_call
from switchboard.telephony.ringing import finish_unanswered

PLACE_RETRY = Retry(max_attempts=20, base_seconds=1.0, max_seconds=30.0)


def place_job_id(call_id: str) -> str:
    return f"place:{call_id}"


@task("calls.place", retry=PLACE_RETRY)
async def place_queued_call(ctx: JobContext, *, call_id: str) -> None:
    try:
        await place_call(ctx.services, call_id)
    except NoFreeSlot:
        if ctx.attempt >= PLACE_RETRY.max_attempts:
            await finish_unanswered(ctx.services, call_id, CallStatus.FAILED, "capacity")
            return
        raise
