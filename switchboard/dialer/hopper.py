"""The hopper: once a second, each campaign settles its ended calls and dials who is due.

A tick, per campaign:

1. **Settle.** A prospect whose call has ended gets its next state from the
   call's disposition (the agent's, else the outcome's) by
   ``switchboard.dialer.schedule.after_call``: final, due again (a retry after
   the minimum gap, a callback at its booked time, each moved to the next
   opening of its window), expired, or do-not-call. An answered call the agent
   did not speak to within two seconds of the callee's greeting is marked
   abandoned.
2. **Expire** the pending prospects past their expiry, or all of them once
   the campaign's end has passed.
3. **Select** the due: one indexed query (``ix_prospects_due``: pending,
   ``next_due_at`` passed, highest priority first) for as many as pacing
   allows (``switchboard.dialer.pacing``).
4. **Dial** each that ``before_dial`` allows (its window open now, not on a
   do-not-call list, not expired; the others are moved to when they may be
   dialled, or ended): the prospect is claimed with a conditional UPDATE that
   names this attempt's call, the call is recorded, and its placing job
   ``dial:{campaign}:{prospect}:{attempt}`` is enqueued. A crash after the
   claim is repaired by the next tick from the ids already fixed, never by a
   second dial.

Ticks never overlap: on PostgreSQL a transaction-scoped advisory lock is held
for the tick (every worker runs the periodic job; one at a time gets the
lock), in embedded mode a process lock does the same. The selection is what
makes a tick cheap at a million prospects: ``next_due_at`` already says when
each prospect's window opens, so the query reads only the rows it dials.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard.calls import service as calls
from switchboard.calls.states import FINAL
from switchboard.db.base import new_id, utcnow
from switchboard.db.engine import is_sqlite
from switchboard.db.models import (
    Call,
    CallEvent,
    CallStatus,
    Campaign,
    CampaignStatus,
    Prospect,
    ProspectState,
    Workspace,
)
from switchboard.dialer import pacing
from switchboard.dialer.attempts import (
    Attempt,
    enqueue_placings,
    keep_placing,
    record_calls,
)
from switchboard.dialer.campaigns import abandonment, dispositions_of
from switchboard.dialer.dispositions import Outcome, Rules
from switchboard.dialer.dnc import END_REASON as DNC_END_REASON
from switchboard.dialer.dnc import DncSource, add_number, blocked_numbers
from switchboard.dialer.schedule import Facts, Verdict, after_call, before_dial
from switchboard.dialer.windows import CallingHours
from switchboard.jobs.queue import JobQueue
from switchboard.jobs.tasks import JobContext, Retry, task
from switchboard.services import Services
from switchboard.telephony.carrier import is_machine

log = logging.getLogger(__name__)

TICK_TASK = "campaigns.tick"
TICK_CRON = "* * * * * *"  # every second (the sixth field is seconds)
RATE_REFRESH = timedelta(seconds=60)  # how long a campaign's 30-day abandonment rate is reused
SELECT_ROUNDS = 4  # selections per tick when due prospects turn out closed or listed
_process_lock = asyncio.Lock()
_LOCK_KEY = int.from_bytes(hashlib.sha256(b"switchboard.hopper").digest()[:4], "big")
_TICKED = (CampaignStatus.RUNNING, CampaignStatus.PAUSED, CampaignStatus.STOPPED)


def dial_job_id(campaign_id: str, prospect_id: str, attempt: int) -> str:
    return f"dial:{campaign_id}:{prospect_id}:{attempt}"


@task(TICK_TASK, retry=Retry(max_attempts=1), cron=TICK_CRON)
async def hopper_tick(ctx: JobContext) -> None:
    await tick(ctx.services, ctx.jobs)


async def tick(services: Services, jobs: JobQueue, now: datetime | None = None) -> bool:
    """One tick over every campaign with work left; False if another tick held the lock."""
    async with _exclusive(services) as mine:
        if not mine:
            return False
        async with services.sessions() as session:
            campaigns = list(
                await session.scalars(
                    select(Campaign).where(
                        Campaign.status.in_(_TICKED), Campaign.finished_at.is_(None)
                    )
                )
            )
        for campaign in campaigns:
            try:
                await tick_campaign(services, jobs, campaign, now or utcnow())
            except Exception:
                log.exception("campaign %s: tick failed; the next one tries again", campaign.id)
    return True


@contextlib.asynccontextmanager
async def _exclusive(services: Services) -> AsyncIterator[bool]:
    if is_sqlite(services.settings.resolved_database_url):
        if _process_lock.locked():
            yield False
            return
        async with _process_lock:
            yield True
        return
    async with services.sessions() as session, session.begin():
        got = await session.scalar(
            text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": _LOCK_KEY}
        )
        yield bool(got)


async def tick_campaign(
    services: Services, jobs: JobQueue, campaign: Campaign, now: datetime
) -> None:
    await _settle(services, jobs, campaign, now)
    await _expire(services, campaign, now)
    if campaign.status is CampaignStatus.RUNNING:
        await _dial_due(services, jobs, campaign, now)
    await _finish_if_done(services, campaign, now)


def _facts(campaign: Campaign, prospect: Prospect) -> Facts:
    ends = [at for at in (prospect.expires_at, campaign.ends_at) if at is not None]
    return Facts(
        prospect.phone, tuple(prospect.timezones), min(ends, default=None), prospect.attempts
    )


# -- settling -------------------------------------------------------------------------------


async def _settle(services: Services, jobs: JobQueue, campaign: Campaign, now: datetime) -> None:
    async with services.sessions() as session:
        live = list(
            await session.execute(
                select(Prospect, Call)
                .outerjoin(Call, Call.id == Prospect.call_id)
                .where(Prospect.campaign_id == campaign.id, Prospect.state == ProspectState.DIALING)
            )
        )
    if not live:
        return
    rules = Rules(
        dispositions_of(campaign),
        campaign.max_attempts,
        timedelta(seconds=campaign.min_gap_seconds),
    )
    hours = CallingHours.model_validate(campaign.hours)
    ended = []
    for prospect, call in live:
        if call is None:  # claimed, then the process died before the call was recorded
            await _start_calls(services, jobs, campaign, [prospect])
        elif call.status not in FINAL:
            job_id = dial_job_id(campaign.id, prospect.id, prospect.attempts)
            await keep_placing(services, jobs, call, job_id, now)
        else:
            ended.append((prospect, call))
    if ended:
        await _settle_ended(services, campaign, rules, hours, ended, now)


async def _settle_ended(
    services: Services,
    campaign: Campaign,
    rules: Rules,
    hours: CallingHours,
    ended: list[tuple[Prospect, Call]],
    now: datetime,
) -> None:
    """Give each prospect whose call ended its next state, in one transaction."""
    async with services.sessions() as session:
        listed = await blocked_numbers(
            session, campaign.workspace_id, [p.phone for p, _ in ended], campaign.id
        )
        for prospect, call in ended:
            await _judge_abandoned(session, call)
            verdict = after_call(
                rules,
                hours,
                _facts(campaign, prospect),
                outcome="dnc" if prospect.phone in listed else outcome_of(call),
                chosen=prospect.disposition,
                callback_at=prospect.callback_at,
                now=now,
            )
            if verdict.add_to_dnc:
                await add_number(
                    session,
                    campaign.workspace_id,
                    prospect.phone,
                    scope=campaign.id,
                    source=DncSource.DISPOSITION,
                    reason=f"disposition {verdict.disposition}",
                    call_id=call.id,
                )
            await session.execute(
                update(Prospect)
                .where(
                    Prospect.id == prospect.id,
                    Prospect.state == ProspectState.DIALING,
                    Prospect.call_id == call.id,
                )
                .values(
                    state=verdict.state,
                    disposition=verdict.disposition,
                    next_due_at=verdict.due_at or prospect.next_due_at,
                    callback_at=None,
                )
            )
        await session.commit()


def outcome_of(call: Call) -> Outcome:
    """What an ended campaign call came to, before any disposition the agent set."""
    if call.end_reason == DNC_END_REASON:
        return "dnc"
    if is_machine(call.answered_by):
        return "machine"
    if call.status in (CallStatus.COMPLETED, CallStatus.TRANSFERRED):
        return "completed"
    return {
        CallStatus.BUSY: "busy",
        CallStatus.NO_ANSWER: "no_answer",
        CallStatus.CANCELED: "canceled",
    }.get(call.status, "failed")  # type: ignore[return-value]


async def _judge_abandoned(session: AsyncSession, call: Call) -> None:
    """Mark an answered call abandoned if the agent did not speak within two seconds of the
    callee's greeting (or of the answer, if the callee said nothing first).

    A machine is not a person kept waiting; a callee who hung up within the two seconds
    left before anyone could have answered them.
    """
    if call.answered_at is None or call.abandoned is not None:
        return
    abandoned = False
    if not is_machine(call.answered_by):
        turns = await calls.transcript_of(session, call.id)
        agent = next((t for t in turns if t.role == "agent"), None)
        heard, callee_first = call.answered_at, False
        for turn in turns:
            if turn.role == "user" and (agent is None or turn.started_at < agent.started_at):
                heard, callee_first = turn.ended_at or turn.started_at, True
                break
        budget = timedelta(seconds=pacing.ABANDON_SECONDS)
        if agent is None:
            abandoned = (call.ended_at or heard) - heard > budget
        elif callee_first:
            # A reply's turn starts when the LLM is asked, not when its first words are heard:
            # the wait is the one the call measured, from the callee's last word to that sound.
            waited = await _first_reply_wait(session, call.id)
            abandoned = (agent.started_at - heard if waited is None else waited) > budget
        else:
            abandoned = agent.started_at - heard > budget
    await session.execute(update(Call).where(Call.id == call.id).values(abandoned=abandoned))
    call.abandoned = abandoned


async def _first_reply_wait(session: AsyncSession, call_id: str) -> timedelta | None:
    """How long the callee waited for the agent's first words after speaking: the call's first
    ``latency`` event (recorded as those words start playing); None if it has none."""
    data = await session.scalar(
        select(CallEvent.data)
        .where(CallEvent.call_id == call_id, CallEvent.type == "latency")
        .order_by(CallEvent.seq)
        .limit(1)
    )
    waited = (data or {}).get("voice_to_voice_ms")
    return None if waited is None else timedelta(milliseconds=float(waited))


async def _expire(services: Services, campaign: Campaign, now: datetime) -> None:
    """Pending prospects past their expiry (``ix_prospects_expiry`` reads only those), or
    all of them once the campaign's end has passed."""
    query = update(Prospect).where(
        Prospect.campaign_id == campaign.id, Prospect.state == ProspectState.PENDING
    )
    if campaign.ends_at is None or campaign.ends_at > now:
        query = query.where(Prospect.expires_at <= now)
    async with services.sessions() as session:
        await session.execute(query.values(state=ProspectState.EXPIRED))
        await session.commit()


# -- dialling -------------------------------------------------------------------------------


async def _dial_due(services: Services, jobs: JobQueue, campaign: Campaign, now: datetime) -> None:
    limits = pacing.Limits(
        campaign.max_concurrent, campaign.calls_per_second, campaign.abandon_target
    )
    stored = dict(campaign.pacing or {})
    async with services.sessions() as session:
        live = await _count(session, campaign.id, ProspectState.DIALING)
        workspace_free = await _workspace_free(services, session, campaign.workspace_id)
        rate = await _abandon_rate(session, campaign, stored, now)
    bucket = pacing.Bucket(
        float(stored.get("tokens", limits.burst)),
        datetime.fromisoformat(stored["at"]) if stored.get("at") else None,
    )
    free, bucket = pacing.capacity(
        limits, bucket, live=live, workspace_free=workspace_free, abandon_rate=rate, now=now
    )
    started = 0
    hours = CallingHours.model_validate(campaign.hours)
    for _ in range(SELECT_ROUNDS):
        if started >= free:
            break
        async with services.sessions() as session:
            due = await select_due(session, campaign.id, now, free - started)
            listed = await blocked_numbers(
                session, campaign.workspace_id, [p.phone for p in due], campaign.id
            )
        if not due:
            break
        verdicts = [
            (p, before_dial(hours, _facts(campaign, p), now, on_dnc=p.phone in listed)) for p in due
        ]
        claimed = await _claim(services, verdicts)
        started += await _start_calls(services, jobs, campaign, claimed)
        if campaign.status is not CampaignStatus.RUNNING:
            break
    stored.update(tokens=pacing.spend(bucket, started).tokens, at=now.isoformat())
    async with services.sessions() as session:
        await session.execute(
            update(Campaign).where(Campaign.id == campaign.id).values(pacing=stored)
        )
        await session.commit()


async def select_due(
    session: AsyncSession, campaign_id: str, now: datetime, limit: int
) -> list[Prospect]:
    """The campaign's due prospects, highest priority first, then the longest waiting:
    one read of ``ix_prospects_due`` that stops after ``limit`` rows."""
    return list(
        await session.scalars(
            select(Prospect)
            .where(
                Prospect.campaign_id == campaign_id,
                Prospect.state == ProspectState.PENDING,
                Prospect.next_due_at <= now,
            )
            .order_by(Prospect.priority.desc(), Prospect.next_due_at)
            .limit(limit)
        )
    )


async def _claim(services: Services, verdicts: list[tuple[Prospect, Verdict]]) -> list[Prospect]:
    """In one transaction: claim each prospect that may be dialled now for its next attempt
    (naming the attempt's call id), and move the others to when they may be, or end them.

    Two executemany UPDATEs, each conditional on the prospect still being pending, then one
    read of which claims took: a prospect claimed elsewhere first keeps the other call id.
    """
    moves: list[dict[str, Any]] = []
    claims: dict[str, Prospect] = {}
    for prospect, verdict in verdicts:
        if verdict.dial_now:
            prospect.call_id = new_id("call")
            claims[prospect.id] = prospect
        else:
            moves.append(
                {
                    "id": prospect.id,
                    "state": verdict.state,
                    "next_due_at": verdict.due_at or prospect.next_due_at,
                    "disposition": verdict.disposition or prospect.disposition,
                }
            )
    pending = (
        update(Prospect)
        .where(Prospect.state == ProspectState.PENDING)
        .execution_options(synchronize_session=None)
    )
    async with services.sessions() as session:
        if moves:
            await session.execute(pending, moves)
        if not claims:
            await session.commit()
            return []
        await session.execute(
            pending,
            [
                {
                    "id": p.id,
                    "state": ProspectState.DIALING,
                    "attempts": p.attempts + 1,
                    "call_id": p.call_id,
                    "disposition": None,
                    "callback_at": None,
                }
                for p in claims.values()
            ],
        )
        taken = await session.execute(
            select(Prospect.id, Prospect.call_id).where(Prospect.id.in_(list(claims)))
        )
        claimed = [claims[id_] for id_, call_id in taken if call_id == claims[id_].call_id]
        await session.commit()
    for prospect in claimed:
        prospect.state = ProspectState.DIALING
        prospect.attempts += 1
    return claimed


async def _start_calls(
    services: Services, jobs: JobQueue, campaign: Campaign, claimed: list[Prospect]
) -> int:
    """Record the claimed attempts' calls (those a previous tick did not) and enqueue their
    dials; how many were started.

    If the campaign can no longer dial (its agent was deactivated, its number released)
    the attempts are given back and the campaign paused with the reason: nobody is failed
    for the workspace's own change.
    """
    numbers: list[str | None] = [*campaign.from_numbers] or [None]
    attempts = {}
    for prospect in claimed:
        assert prospect.call_id is not None
        attempts[prospect.call_id] = Attempt(
            workspace_id=campaign.workspace_id,
            agent_id=campaign.agent_id,
            dial=campaign.dial,
            from_number=numbers[(prospect.attempts - 1) % len(numbers)],
            to=prospect.phone,
            variables={"name": prospect.name, **prospect.variables},
            call_id=prospect.call_id,
            campaign_id=campaign.id,
        )
    errors = await record_calls(services, list(attempts.values()))
    placing = {
        dial_job_id(campaign.id, p.id, p.attempts): p.call_id
        for p in claimed
        if p.call_id is not None and p.call_id not in errors
    }
    await enqueue_placings(jobs, placing)
    if errors:
        refused = [p for p in claimed if p.call_id in errors]
        await _give_back(services, campaign, refused, next(iter(errors.values())))
    return len(placing)


async def _give_back(
    services: Services, campaign: Campaign, refused: list[Prospect], error: str
) -> None:
    """Attempts that could not be recorded go back to pending; the campaign pauses."""
    log.warning("campaign %s paused: %s", campaign.id, error)
    async with services.sessions() as session:
        for prospect in refused:
            await session.execute(
                update(Prospect)
                .where(Prospect.id == prospect.id, Prospect.call_id == prospect.call_id)
                .values(state=ProspectState.PENDING, attempts=Prospect.attempts - 1, call_id=None)
            )
        await session.execute(
            update(Campaign)
            .where(Campaign.id == campaign.id, Campaign.status == CampaignStatus.RUNNING)
            .values(status=CampaignStatus.PAUSED, last_error=error)
        )
        await session.commit()
    campaign.status = CampaignStatus.PAUSED


# -- counting -------------------------------------------------------------------------------


async def _count(session: AsyncSession, campaign_id: str, state: ProspectState) -> int:
    found = await session.scalar(
        select(func.count())
        .select_from(Prospect)
        .where(Prospect.campaign_id == campaign_id, Prospect.state == state)
    )
    return int(found or 0)


async def _workspace_free(services: Services, session: AsyncSession, workspace_id: str) -> int:
    """Call slots the workspace has free, less its calls queued to be placed (each of which
    will take one): the workspace limit across all its campaigns and batches."""
    workspace = await session.get(Workspace, workspace_id)
    assert workspace is not None
    queued = await session.scalar(
        select(func.count())
        .select_from(Call)
        .where(
            Call.status == CallStatus.QUEUED,
            Call.workspace_id == workspace_id,
            Call.placed_at.is_(None),
        )
    )
    in_use = await services.slots.in_use(workspace_id)
    return workspace.max_concurrent_calls - in_use - int(queued or 0)


async def _abandon_rate(
    session: AsyncSession, campaign: Campaign, stored: dict[str, Any], now: datetime
) -> float | None:
    """The campaign's abandonment rate over 30 days, counted at most once a minute."""
    at = stored.get("rate_at")
    if at is not None and now - datetime.fromisoformat(at) < RATE_REFRESH:
        rate: float | None = stored.get("rate")
        return rate
    answered, abandoned = await abandonment(session, campaign.id, now)
    rate = pacing.abandon_rate(answered, abandoned)
    stored.update(rate=rate, rate_at=now.isoformat())
    return rate


async def _finish_if_done(services: Services, campaign: Campaign, now: datetime) -> None:
    """A running campaign with nobody pending or live is completed; a stopped one is
    finished once its last live call is settled."""
    open_states = (
        [ProspectState.DIALING]
        if campaign.status is CampaignStatus.STOPPED
        else [ProspectState.PENDING, ProspectState.DIALING]
    )
    if campaign.status is CampaignStatus.PAUSED:
        return
    async with services.sessions() as session:
        left = await session.scalar(
            select(
                exists().where(Prospect.campaign_id == campaign.id, Prospect.state.in_(open_states))
            )
        )
        if left:
            return
        any_prospect = await session.scalar(
            select(exists().where(Prospect.campaign_id == campaign.id))
        )
        if not any_prospect and campaign.status is CampaignStatus.RUNNING:
            return  # nothing uploaded yet: not done, just empty
        values: dict[str, Any] = {"finished_at": now}
        if campaign.status is CampaignStatus.RUNNING:
            values["status"] = CampaignStatus.COMPLETED
        await session.execute(
            update(Campaign)
            .where(Campaign.id == campaign.id, Campaign.status == campaign.status)
            .values(**values)
        )
        await session.commit()
    log.info("campaign %s finished", campaign.id)
