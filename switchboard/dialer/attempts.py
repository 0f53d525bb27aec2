"""One attempt to reach a number, shared by batches and campaigns.

A batch row or a prospect is claimed for an attempt by naming the attempt's
call id first; then its call is recorded (``record_call``) and its placing job
enqueued under a fixed id. Every step can be repeated by the next run after a
crash (``keep_placing``): the call is recorded once (its id is the key), the
job enqueued once (its id is the key), and the carrier asked once (the call's
``placed_at``, set by the job that asks).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard.calls.outbound import DialPlan, plan_dialing, queue_call
from switchboard.db.models import Call, CallStatus
from switchboard.errors import SwitchboardError
from switchboard.jobs.queue import JobQueue
from switchboard.services import Services
from switchboard.telephony.dial_jobs import place_queued_call
from switchboard.telephony.ringing import finish_unanswered

# A call marked as being placed that never got further: its job died mid-request (a carrier
# request times out after 10 s, so a minute is well past any request still in flight).
PLACEMENT_STALL = timedelta(minutes=1)
STALLED_REASON = "placement_interrupted"


@dataclass(frozen=True)
class Attempt:
    """Who is called, by which agent and how, under which call id."""

    workspace_id: str
    agent_id: str
    dial: dict[str, Any]  # machine detection, voicemail message, ring timeout
    from_number: str | None
    to: str
    variables: dict[str, Any]
    call_id: str
    batch_id: str | None = None
    campaign_id: str | None = None


async def record_call(services: Services, attempt: Attempt) -> str | None:
    """Record the attempt's queued call unless it exists; the reason it cannot be dialled
    (the agent or its numbers changed since), or None."""
    return (await record_calls(services, [attempt])).get(attempt.call_id)


async def record_calls(services: Services, attempts: Sequence[Attempt]) -> dict[str, str]:
    """Record the attempts' queued calls that do not exist yet, in one transaction; the
    reason each that cannot be dialled cannot, by call id.

    Each distinct agent, number and dial policy is checked once (``plan_dialing``),
    not once per call: a tick dials many prospects of one campaign.
    """
    errors: dict[str, str] = {}
    if not attempts:
        return errors
    async with services.sessions() as session:
        existing = set(
            await session.scalars(select(Call.id).where(Call.id.in_([a.call_id for a in attempts])))
        )
        plans: dict[tuple[str, str, str | None, str], DialPlan | str] = {}
        for attempt in attempts:
            if attempt.call_id in existing:
                continue
            key = (
                attempt.workspace_id,
                attempt.agent_id,
                attempt.from_number,
                json.dumps(attempt.dial, sort_keys=True),
            )
            if key not in plans:
                plans[key] = await _plan(services, session, attempt)
            plan = plans[key]
            if isinstance(plan, str):
                errors[attempt.call_id] = plan
                continue
            await queue_call(
                session,
                plan,
                to=attempt.to,
                variables=attempt.variables,
                call_id=attempt.call_id,
                batch_id=attempt.batch_id,
                campaign_id=attempt.campaign_id,
                commit=False,
            )
        try:
            await session.commit()
        except IntegrityError:  # another run recorded one of them just now: go one by one
            await session.rollback()
            if len(attempts) == 1:
                return errors
            for attempt in attempts:
                errors.update(await record_calls(services, [attempt]))
    return errors


async def _plan(services: Services, session: AsyncSession, attempt: Attempt) -> DialPlan | str:
    try:
        return await plan_dialing(
            session,
            attempt.workspace_id,
            agent_id=attempt.agent_id,
            from_number=attempt.from_number,
            machine_detection=attempt.dial.get("machine_detection", "off"),
            voicemail_message=attempt.dial.get("voicemail_message"),
            ring_timeout_seconds=int(attempt.dial.get("ring_timeout_seconds", 30)),
            simulator_enabled=services.settings.simulator_enabled,
        )
    except SwitchboardError as exc:
        return exc.message


async def enqueue_placing(jobs: JobQueue, call_id: str, job_id: str) -> None:
    await enqueue_placings(jobs, {job_id: call_id})


async def enqueue_placings(jobs: JobQueue, calls: dict[str, str]) -> None:
    """Enqueue the placing job of each call (``{job_id: call_id}``) in one transaction."""
    await jobs.enqueue_many(place_queued_call, {job: {"call_id": c} for job, c in calls.items()})


async def keep_placing(
    services: Services, jobs: JobQueue, call: Call, job_id: str, now: datetime
) -> None:
    """A live attempt's call that is still queued: enqueue its job again (a no-op once it
    was), or end the call if its placing stalled (the carrier may or may not have been
    asked: never ask twice)."""
    if call.status is not CallStatus.QUEUED:
        return  # ringing or talking: the call's own webhooks and session move it on
    if call.placed_at is None:
        await enqueue_placing(jobs, call.id, job_id)
    elif call.placed_at < now - PLACEMENT_STALL:
        await finish_unanswered(services, call.id, CallStatus.FAILED, STALLED_REASON)
