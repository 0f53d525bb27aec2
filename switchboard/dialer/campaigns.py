"""Campaigns: creating, changing and steering one, and its live statistics.

The dialling itself is the hopper's (``switchboard.dialer.hopper``); this
module checks what a workspace asks for (the agent, the numbers to call from
and their carriers' accounts, calling hours that open at least once, the
disposition set) and reports what happened.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard.agents.schema import MAX_GREETING_CHARS
from switchboard.calls.outbound import plan_dialing
from switchboard.db.models import Call, Campaign, CampaignStatus, Prospect, ProspectState
from switchboard.db.owned import get_owned, move_owned, page_owned
from switchboard.dialer.dispositions import DispositionFlags, disposition_set
from switchboard.dialer.pacing import abandon_rate
from switchboard.dialer.windows import CallingHours, require_opening
from switchboard.errors import InvalidInput
from switchboard.schema_base import Identifier
from switchboard.telephony.carrier import MachineDetection

ABANDON_WINDOW = timedelta(days=30)


class CampaignIn(BaseModel):
    """A campaign as ``POST /api/v1/campaigns`` takes it."""

    model_config = ConfigDict(extra="forbid")

    agent_id: str = Field(max_length=40)
    name: str = Field(min_length=1, max_length=120)
    from_numbers: list[str] = Field(
        default_factory=list,
        max_length=10,
        description="workspace numbers to call from, in turn; default: the agent's first number",
    )
    hours: CallingHours = Field(
        default_factory=CallingHours,
        description="calling hours per weekday and dates off, in each prospect's local time",
    )
    default_timezone: str = Field(
        default="America/New_York",
        description="for numbers whose zone cannot be told and rows that name none",
    )
    max_attempts: int = Field(default=3, ge=1, le=20)
    min_gap_seconds: int = Field(default=3600, ge=0, le=7 * 86_400)
    max_concurrent: int = Field(default=2, ge=1, le=200)
    calls_per_second: float = Field(default=1.0, gt=0, le=50)
    abandon_target: float = Field(default=0.03, ge=0, le=0.1)
    dispositions: dict[Identifier, DispositionFlags] = Field(default_factory=dict, max_length=50)
    machine_detection: MachineDetection = "detect"
    voicemail_message: str | None = Field(default=None, max_length=MAX_GREETING_CHARS)
    ring_timeout_seconds: int = Field(default=30, ge=5, le=120)
    ends_at: datetime | None = Field(
        default=None, description="prospects not reached by then expire"
    )

    @field_validator("default_timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA time zone {value!r}") from exc
        return value

    @field_validator("ends_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("give a time zone (e.g. 2026-12-31T21:00:00Z)")
        return value


class CampaignPatch(BaseModel):
    """Fields to change; the hours, limits and dispositions apply from the next tick."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=120)
    hours: CallingHours | None = None
    max_attempts: int | None = Field(default=None, ge=1, le=20)
    min_gap_seconds: int | None = Field(default=None, ge=0, le=7 * 86_400)
    max_concurrent: int | None = Field(default=None, ge=1, le=200)
    calls_per_second: float | None = Field(default=None, gt=0, le=50)
    dispositions: dict[Identifier, DispositionFlags] | None = None
    ends_at: datetime | None = None


async def create_campaign(
    session: AsyncSession, workspace_id: str, body: CampaignIn, *, simulator_enabled: bool
) -> Campaign:
    require_opening(body.hours)
    numbers: list[str | None] = [*body.from_numbers] or [None]
    plans = [
        await plan_dialing(
            session,
            workspace_id,
            agent_id=body.agent_id,
            from_number=number,
            machine_detection=body.machine_detection,
            voicemail_message=body.voicemail_message,
            ring_timeout_seconds=body.ring_timeout_seconds,
            simulator_enabled=simulator_enabled,
        )
        for number in numbers
    ]
    campaign = Campaign(
        workspace_id=workspace_id,
        agent_id=plans[0].agent.id,
        name=body.name,
        from_numbers=[plan.number.number for plan in plans],
        hours=body.hours.model_dump(mode="json"),
        default_timezone=body.default_timezone,
        max_attempts=body.max_attempts,
        min_gap_seconds=body.min_gap_seconds,
        max_concurrent=body.max_concurrent,
        calls_per_second=body.calls_per_second,
        abandon_target=body.abandon_target,
        dispositions={k: v.model_dump() for k, v in body.dispositions.items()},
        dial=plans[0].dial,
        ends_at=body.ends_at,
    )
    session.add(campaign)
    await session.commit()
    return campaign


async def get_campaign(session: AsyncSession, workspace_id: str, campaign_id: str) -> Campaign:
    return await get_owned(session, Campaign, workspace_id, campaign_id, "campaign")


async def list_campaigns(
    session: AsyncSession, workspace_id: str, *, limit: int, after: str | None
) -> list[Campaign]:
    return await page_owned(session, Campaign, workspace_id, limit=limit, after=after)


async def update_campaign(
    session: AsyncSession, workspace_id: str, campaign_id: str, patch: CampaignPatch
) -> Campaign:
    campaign = await get_campaign(session, workspace_id, campaign_id)
    changes = patch.model_dump(exclude_unset=True)
    if "hours" in changes:
        hours = require_opening(CallingHours.model_validate(changes["hours"]))
        changes["hours"] = hours.model_dump(mode="json")
        # No prospect is rescheduled here: the hopper checks each one's window when it is
        # due, so narrower hours are kept at once, and wider ones from each next due time.
    for name, value in changes.items():
        if value is None and name != "ends_at":
            raise InvalidInput("may not be null", field=name)
        if name == "dispositions":
            value = {k: DispositionFlags.model_validate(v).model_dump() for k, v in value.items()}
        setattr(campaign, name, value)
    await session.commit()
    return campaign


async def move_campaign(
    session: AsyncSession,
    workspace_id: str,
    campaign_id: str,
    new: CampaignStatus,
    allowed_from: set[CampaignStatus],
) -> Campaign:
    cleared = {"last_error": None} if new is CampaignStatus.RUNNING else {}
    return await move_owned(
        session, Campaign, workspace_id, campaign_id, "campaign", new, allowed_from, **cleared
    )


def dispositions_of(campaign: Campaign) -> dict[str, DispositionFlags]:
    return disposition_set(
        {k: DispositionFlags.model_validate(v) for k, v in (campaign.dispositions or {}).items()}
    )


async def stats(session: AsyncSession, campaign: Campaign, now: datetime) -> dict[str, Any]:
    """Dialled, answered, machine, abandoned, prospects per state and disposition, and the
    abandonment rate over the last 30 days (answered calls the agent did not speak to
    within two seconds, of all answered)."""
    machine = or_(Call.answered_by.like("machine%"), Call.answered_by == "fax")
    totals = (
        await session.execute(
            select(
                func.count(),
                func.count(Call.answered_at),
                _count_if(machine),
                _count_if(Call.abandoned.is_(True)),
            ).where(Call.campaign_id == campaign.id)
        )
    ).one()
    answered_30d, abandoned_30d = await abandonment(session, campaign.id, now)
    rows = await session.execute(
        select(Prospect.state, Prospect.disposition, func.count())
        .where(Prospect.campaign_id == campaign.id)
        .group_by(Prospect.state, Prospect.disposition)
    )
    states: Counter[str] = Counter()
    dispositions: Counter[str] = Counter()
    for state, disposition, count in rows:
        states[ProspectState(state).value] += count
        if disposition:
            dispositions[disposition] += count
    return {
        "prospects": sum(states.values()),
        "by_state": {s.value: states[s.value] for s in ProspectState},
        "dialed": int(totals[0]),
        "answered": int(totals[1]),
        "machine": int(totals[2]),
        "abandoned": int(totals[3]),
        "by_disposition": dict(sorted(dispositions.items())),
        "answered_30d": answered_30d,
        "abandoned_30d": abandoned_30d,
        "abandonment_rate_30d": abandon_rate(answered_30d, abandoned_30d),
    }


async def abandonment(session: AsyncSession, campaign_id: str, now: datetime) -> tuple[int, int]:
    """Answered and abandoned calls of the campaign over the last 30 days
    (``ix_calls_campaign_answered``)."""
    row = (
        await session.execute(
            select(func.count(), _count_if(Call.abandoned.is_(True))).where(
                Call.campaign_id == campaign_id, Call.answered_at >= now - ABANDON_WINDOW
            )
        )
    ).one()
    return int(row[0]), int(row[1])


def _count_if(condition: Any) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)
