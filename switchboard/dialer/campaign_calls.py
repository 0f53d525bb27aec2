"""What a campaign call's agent may record about its prospect: a disposition, a callback.

The agent's ``set_disposition`` and ``schedule_callback`` tools
(``switchboard.voice.campaign_tools``) write here, during the call; the hopper
reads both when the call has ended (``switchboard.dialer.schedule.after_call``).
Each write names the call, so a late tool result of an earlier attempt cannot
touch a later one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard.db.models import Call, Campaign, Prospect, ProspectState
from switchboard.dialer.campaigns import dispositions_of
from switchboard.dialer.dispositions import OUTCOME_DISPOSITIONS, DispositionFlags
from switchboard.dialer.windows import CallingHours, is_open, next_open
from switchboard.errors import InvalidInput


@dataclass(frozen=True)
class CampaignCall:
    """A campaign call's prospect, and the campaign's rules the agent's tools apply."""

    call_id: str
    prospect_id: str
    phone: str
    zones: tuple[str, ...]
    hours: CallingHours
    dispositions: dict[str, DispositionFlags]

    @property
    def choosable(self) -> dict[str, DispositionFlags]:
        """The dispositions the agent may set: all but those only an outcome gives
        (busy, no answer, machine, failed), which describe calls nobody spoke on."""
        outcome_only = set(OUTCOME_DISPOSITIONS.values()) - {"completed"}
        return {k: v for k, v in self.dispositions.items() if k not in outcome_only}

    @property
    def callback_name(self) -> str:
        return next(k for k, v in self.dispositions.items() if v.callback)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.zones[0])


async def campaign_call(session: AsyncSession, call: Call) -> CampaignCall | None:
    """The campaign side of ``call``; None for a call of no campaign (or no prospect)."""
    if call.campaign_id is None:
        return None
    campaign = await session.get(Campaign, call.campaign_id)
    row = (
        await session.execute(
            select(Prospect.id, Prospect.phone, Prospect.timezones).where(
                Prospect.campaign_id == call.campaign_id, Prospect.call_id == call.id
            )
        )
    ).first()
    if campaign is None or row is None:
        return None
    return CampaignCall(
        call_id=call.id,
        prospect_id=row.id,
        phone=row.phone,
        zones=tuple(row.timezones),
        hours=CallingHours.model_validate(campaign.hours),
        dispositions=dispositions_of(campaign),
    )


async def set_disposition(session: AsyncSession, context: CampaignCall, name: str) -> None:
    """Record the agent's ``name`` for this call's prospect (the last one set wins)."""
    if name not in context.choosable:
        raise InvalidInput(
            f"unknown disposition; choose one of {sorted(context.choosable)}", field="disposition"
        )
    await _update(session, context, disposition=name)


async def book_callback(
    session: AsyncSession, context: CampaignCall, at: datetime, now: datetime
) -> datetime:
    """Book a callback at ``at`` (naive: the prospect's own clock); the instant booked.

    A time in the past or outside the prospect's calling window is refused with
    the next time that is open, for the agent to offer instead.
    """
    when = at if at.tzinfo is not None else at.replace(tzinfo=context.zone)
    if when <= now:
        raise InvalidInput("that time has passed; ask for a later one", field="at")
    if not is_open(context.hours, context.zones, when, number=context.phone):
        opens = next_open(context.hours, context.zones, when, number=context.phone)
        offer = (
            "no time in the next year is open"
            if opens is None
            else f"the next time that is open is {local_text(context, opens)}"
        )
        raise InvalidInput(f"we may not call then; {offer}", field="at")
    await _update(session, context, disposition=context.callback_name, callback_at=when)
    return when


def local_text(context: CampaignCall, moment: datetime) -> str:
    """``moment`` as the prospect's clock shows it, for the agent to say."""
    local = moment.astimezone(context.zone)
    return local.strftime("%A %d %B %Y, %H:%M ") + (local.tzname() or context.zones[0])


async def _update(session: AsyncSession, context: CampaignCall, **values: object) -> None:
    await session.execute(
        update(Prospect)
        .where(
            Prospect.id == context.prospect_id,
            Prospect.call_id == context.call_id,
            Prospect.state == ProspectState.DIALING,
        )
        .values(**values)
    )
    await session.commit()
