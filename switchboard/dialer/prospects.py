"""A campaign's prospects: imported from CSV, each with its zones and first due time.

Columns: ``phone`` (required), ``name``, ``timezone`` (an IANA zone; else the
zones the number belongs to), ``priority`` (an integer, higher first),
``expires_at`` (ISO 8601 with a zone), and any of the agent's variables. Bad
rows are reported with their line and reason and the good ones kept; a number
listed twice, in the file or already in the campaign, is merged into one
prospect (the later row's name, priority, expiry and variables win; its calls
so far and its state are kept).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard.agents.schema import AgentConfig
from switchboard.calls.outbound import callee_number, checked_variables, plan_dialing
from switchboard.db.base import utcnow
from switchboard.db.models import Campaign, Prospect, ProspectState
from switchboard.dialer.csv_file import (
    EXTRA,
    PHONE,
    TIMEZONE,
    TOO_MANY_CELLS,
    BadRow,
    records,
    typed_variables,
)
from switchboard.dialer.dispositions import DNC_DISPOSITION
from switchboard.dialer.dnc import blocked_numbers
from switchboard.dialer.windows import CallingHours, next_open, prospect_zones
from switchboard.errors import InvalidInput
from switchboard.telephony.carrier import Carrier

_CHUNK = 500  # numbers per IN (...): under SQLite's bound-parameter limit
OWN_COLUMNS = frozenset({PHONE, "name", TIMEZONE, "priority", "expires_at"})


@dataclass(frozen=True)
class ProspectRow:
    line: int
    phone: str
    name: str
    zones: tuple[str, ...]
    priority: int
    expires_at: datetime | None
    variables: dict[str, Any]


@dataclass
class Imported:
    added: int = 0
    merged: int = 0
    errors: list[BadRow] = field(default_factory=list)


def read_prospects(
    data: bytes, config: AgentConfig, carrier: type[Carrier], default_zone: str
) -> tuple[list[ProspectRow], list[BadRow], int]:
    """Every row of ``data``: the good as prospects (merged by number), the bad reported,
    and how many rows were read."""
    good: dict[str, ProspectRow] = {}
    bad: list[BadRow] = []
    read = 0
    for line, cells in records(data):
        read += 1
        row = _read(line, cells, config, carrier, default_zone)
        if isinstance(row, BadRow):
            bad.append(row)
        else:
            good[row.phone] = row  # a later row for the same number wins
    return list(good.values()), bad, read


def _read(
    line: int,
    cells: dict[str, str],
    config: AgentConfig,
    carrier: type[Carrier],
    default_zone: str,
) -> ProspectRow | BadRow:
    if EXTRA in cells:
        return BadRow(line, TOO_MANY_CELLS)
    try:
        phone = callee_number(cells.get(PHONE, ""), carrier)
    except InvalidInput as exc:
        return BadRow(line, exc.message, PHONE)
    try:
        zones = prospect_zones(phone, cells.get(TIMEZONE) or None, default_zone)
        priority = _priority(cells.get("priority", ""))
        expires_at = _expiry(cells.get("expires_at", ""))
        extra = {k: v for k, v in cells.items() if k not in OWN_COLUMNS and k}
        variables = checked_variables(config, typed_variables(config.variables, extra))
    except InvalidInput as exc:
        return BadRow(line, exc.message, exc.field)
    return ProspectRow(
        line, phone, cells.get("name", "")[:120], zones, priority, expires_at, variables
    )


def _priority(text: str) -> int:
    if not text:
        return 0
    try:
        value = int(text)
    except ValueError as exc:
        raise InvalidInput("priority must be a whole number", field="priority") from exc
    if not -1000 <= value <= 1000:
        raise InvalidInput("priority must be between -1000 and 1000", field="priority")
    return value


def _expiry(text: str) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise InvalidInput("expires_at must be an ISO 8601 time", field="expires_at") from exc
    if value.tzinfo is None:
        raise InvalidInput("expires_at needs a time zone (…Z or …+01:00)", field="expires_at")
    return value


async def import_prospects(
    session: AsyncSession, campaign: Campaign, rows: list[ProspectRow], now: datetime | None = None
) -> tuple[int, int]:
    """Store ``rows`` in ``campaign``, merging numbers it has already; how many were merged,
    and how many new ones were on a do-not-call list (stored as ``dnc``, never dialled).

    A new prospect is first due when its window next opens; one whose window never opens
    again, or whose expiry has passed, is stored expired.
    """
    now = now or utcnow()
    hours = CallingHours.model_validate(campaign.hours)
    existing: dict[str, Prospect] = {}
    listed: set[str] = set()
    phones = [row.phone for row in rows]
    for start in range(0, len(phones), _CHUNK):
        chunk = phones[start : start + _CHUNK]
        found = await session.scalars(
            select(Prospect).where(Prospect.campaign_id == campaign.id, Prospect.phone.in_(chunk))
        )
        existing.update((p.phone, p) for p in found)
    listed = await blocked_numbers(
        session, campaign.workspace_id, [p for p in phones if p not in existing], campaign.id
    )
    for row in rows:
        prospect = existing.get(row.phone)
        if prospect is None:
            prospect = Prospect(campaign_id=campaign.id, phone=row.phone, next_due_at=now)
            prospect.state = _first_state(hours, row, now, listed, prospect)
            session.add(prospect)
        prospect.name = row.name
        prospect.timezones = list(row.zones)
        prospect.priority = row.priority
        prospect.expires_at = row.expires_at
        prospect.variables = row.variables
    await session.commit()
    return len(existing), len(listed)


def _first_state(
    hours: CallingHours, row: ProspectRow, now: datetime, listed: set[str], prospect: Prospect
) -> ProspectState:
    if row.phone in listed:
        prospect.disposition = DNC_DISPOSITION
        return ProspectState.DNC
    if row.expires_at is not None and row.expires_at <= now:
        return ProspectState.EXPIRED
    due = next_open(hours, row.zones, now, number=row.phone)
    if due is None:
        return ProspectState.EXPIRED
    prospect.next_due_at = due
    return ProspectState.PENDING


@dataclass(frozen=True)
class Upload:
    """What one prospect CSV came to."""

    rows: int
    added: int
    merged: int
    on_dnc: int
    errors: list[BadRow]


async def upload_prospects(
    session: AsyncSession,
    campaign: Campaign,
    data: bytes,
    *,
    simulator_enabled: bool,
    now: datetime | None = None,
) -> Upload:
    """Read ``data`` against the campaign's agent and carrier, and store its good rows."""
    plan = await plan_dialing(
        session,
        campaign.workspace_id,
        agent_id=campaign.agent_id,
        from_number=campaign.from_numbers[0] if campaign.from_numbers else None,
        machine_detection=campaign.dial.get("machine_detection", "off"),
        voicemail_message=campaign.dial.get("voicemail_message"),
        ring_timeout_seconds=int(campaign.dial.get("ring_timeout_seconds", 30)),
        simulator_enabled=simulator_enabled,
    )
    rows, bad, read = read_prospects(data, plan.config, plan.carrier, campaign.default_timezone)
    merged, on_dnc = await import_prospects(session, campaign, rows, now)
    return Upload(read, len(rows) - merged, merged, on_dnc, bad)


async def list_prospects(
    session: AsyncSession,
    campaign_id: str,
    *,
    state: ProspectState | None,
    limit: int,
    after: str | None,
) -> list[Prospect]:
    """A campaign's prospects in the order they were added (ids are time-ordered)."""
    query = select(Prospect).where(Prospect.campaign_id == campaign_id)
    if state is not None:
        query = query.where(Prospect.state == state)
    if after:
        query = query.where(Prospect.id > after)
    return list(await session.scalars(query.order_by(Prospect.id).limit(limit)))
