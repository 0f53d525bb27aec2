"""/api/v1/campaigns: prospects called over days at lawful local hours, with dispositions.

Creating, changing and steering a campaign and uploading its prospects is a
developer's work; reading them a viewer's. The dialling is the hopper's
(``switchboard.dialer.hopper``), which picks up each change at its next tick.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, File, Query, UploadFile, status
from pydantic import BaseModel, Field

from switchboard.api.deps import Developer, PageDep, ServicesDep, SessionDep, Viewer
from switchboard.api.schemas import ListResponse
from switchboard.db.base import utcnow
from switchboard.db.models import Campaign, CampaignStatus, Prospect, ProspectState
from switchboard.dialer import campaigns as service
from switchboard.dialer.prospects import list_prospects, upload_prospects
from switchboard.errors import InvalidInput

router = APIRouter(prefix="/campaigns", tags=["campaigns"])
MAX_CSV_BYTES = 900_000  # under the 1 MB request cap, with room for the form fields


class CampaignOut(BaseModel):
    id: str
    name: str
    agent_id: str
    status: CampaignStatus
    from_numbers: list[str]
    hours: dict[str, Any] = Field(description="weekly intervals and dates off, prospect-local")
    default_timezone: str
    max_attempts: int
    min_gap_seconds: int
    max_concurrent: int
    calls_per_second: float
    abandon_target: float
    dispositions: dict[str, Any] = Field(description="the whole set: defaults and the campaign's")
    dial: dict[str, Any]
    ends_at: datetime | None
    last_error: str | None = Field(description="why the dialer paused it, until resumed")
    created_at: datetime
    finished_at: datetime | None
    stats: dict[str, Any] | None = None


class ProspectOut(BaseModel):
    id: str
    phone: str
    name: str
    timezones: list[str]
    priority: int
    variables: dict[str, Any]
    state: ProspectState
    attempts: int
    next_due_at: datetime
    expires_at: datetime | None
    callback_at: datetime | None
    call_id: str | None
    disposition: str | None
    last_error: str | None


class UploadOut(BaseModel):
    rows: int = Field(description="data rows read")
    added: int
    merged: int = Field(description="numbers the campaign had already (or listed twice)")
    on_dnc: int = Field(description="new numbers already on a do-not-call list: never dialled")
    row_errors: list[dict[str, Any]] = Field(description="rows refused: line, reason, field")


async def campaign_out(
    session: SessionDep, campaign: Campaign, *, with_stats: bool = False
) -> CampaignOut:
    return CampaignOut(
        id=campaign.id,
        name=campaign.name,
        agent_id=campaign.agent_id,
        status=campaign.status,
        from_numbers=campaign.from_numbers,
        hours=campaign.hours,
        default_timezone=campaign.default_timezone,
        max_attempts=campaign.max_attempts,
        min_gap_seconds=campaign.min_gap_seconds,
        max_concurrent=campaign.max_concurrent,
        calls_per_second=campaign.calls_per_second,
        abandon_target=campaign.abandon_target,
        dispositions={k: v.model_dump() for k, v in service.dispositions_of(campaign).items()},
        dial=campaign.dial,
        ends_at=campaign.ends_at,
        last_error=campaign.last_error,
        created_at=campaign.created_at,
        finished_at=campaign.finished_at,
        stats=await service.stats(session, campaign, utcnow()) if with_stats else None,
    )


def prospect_out(prospect: Prospect) -> ProspectOut:
    return ProspectOut.model_validate(prospect, from_attributes=True)


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_campaign(
    body: service.CampaignIn, session: SessionDep, principal: Developer, services: ServicesDep
) -> CampaignOut:
    """A running campaign with no prospects yet: upload them to ``/{id}/prospects``."""
    campaign = await service.create_campaign(
        session, principal.workspace_id, body, simulator_enabled=services.settings.simulator_enabled
    )
    return await campaign_out(session, campaign)


@router.get("")
async def list_campaigns(
    session: SessionDep, principal: Viewer, page: PageDep
) -> ListResponse[CampaignOut]:
    rows = await service.list_campaigns(
        session, principal.workspace_id, limit=page.limit, after=page.after
    )
    return ListResponse.page(
        [await campaign_out(session, c) for c in rows], page.limit, rows[-1].id if rows else None
    )


@router.get("/{campaign_id}")
async def get_campaign(campaign_id: str, session: SessionDep, principal: Viewer) -> CampaignOut:
    """The campaign with its live stats (dialled, answered, machine, abandoned, per
    disposition, and the abandonment rate over the last 30 days)."""
    campaign = await service.get_campaign(session, principal.workspace_id, campaign_id)
    return await campaign_out(session, campaign, with_stats=True)


@router.patch("/{campaign_id}")
async def update_campaign(
    campaign_id: str, body: service.CampaignPatch, session: SessionDep, principal: Developer
) -> CampaignOut:
    campaign = await service.update_campaign(session, principal.workspace_id, campaign_id, body)
    return await campaign_out(session, campaign)


@router.post("/{campaign_id}/pause")
async def pause_campaign(
    campaign_id: str, session: SessionDep, principal: Developer
) -> CampaignOut:
    """No new dials until resumed; calls already live go on and are settled."""
    campaign = await service.move_campaign(
        session,
        principal.workspace_id,
        campaign_id,
        CampaignStatus.PAUSED,
        {CampaignStatus.RUNNING},
    )
    return await campaign_out(session, campaign)


@router.post("/{campaign_id}/resume")
async def resume_campaign(
    campaign_id: str, session: SessionDep, principal: Developer
) -> CampaignOut:
    campaign = await service.move_campaign(
        session,
        principal.workspace_id,
        campaign_id,
        CampaignStatus.RUNNING,
        {CampaignStatus.PAUSED},
    )
    return await campaign_out(session, campaign)


@router.post("/{campaign_id}/stop")
async def stop_campaign(campaign_id: str, session: SessionDep, principal: Developer) -> CampaignOut:
    """For good: nobody else is dialled; calls already live go on to their end."""
    campaign = await service.move_campaign(
        session,
        principal.workspace_id,
        campaign_id,
        CampaignStatus.STOPPED,
        {CampaignStatus.RUNNING, CampaignStatus.PAUSED},
    )
    return await campaign_out(session, campaign)


@router.get("/{campaign_id}/stats")
async def campaign_stats(
    campaign_id: str, session: SessionDep, principal: Viewer
) -> dict[str, Any]:
    campaign = await service.get_campaign(session, principal.workspace_id, campaign_id)
    return await service.stats(session, campaign, utcnow())


@router.post("/{campaign_id}/prospects")
async def upload(
    campaign_id: str,
    file: Annotated[
        UploadFile,
        File(
            description="CSV: phone, [name], [timezone], [priority], [expires_at], [variables...]"
        ),
    ],
    session: SessionDep,
    principal: Developer,
    services: ServicesDep,
) -> UploadOut:
    """Bad rows come back in ``row_errors`` (line, reason, field); good rows are kept, and
    a number the campaign has already is merged into its prospect."""
    campaign = await service.get_campaign(session, principal.workspace_id, campaign_id)
    if campaign.status in (CampaignStatus.STOPPED, CampaignStatus.COMPLETED):
        raise InvalidInput(f"the campaign is {campaign.status.value}", field="campaign_id")
    data = await file.read(MAX_CSV_BYTES + 1)
    if len(data) > MAX_CSV_BYTES:
        raise InvalidInput(f"the CSV is over {MAX_CSV_BYTES} bytes", field="file")
    done = await upload_prospects(
        session, campaign, data, simulator_enabled=services.settings.simulator_enabled
    )
    return UploadOut(
        rows=done.rows,
        added=done.added,
        merged=done.merged,
        on_dnc=done.on_dnc,
        row_errors=[row.as_json() for row in done.errors],
    )


@router.get("/{campaign_id}/prospects")
async def prospects(
    campaign_id: str,
    session: SessionDep,
    principal: Viewer,
    page: PageDep,
    state: Annotated[ProspectState | None, Query()] = None,
) -> ListResponse[ProspectOut]:
    campaign = await service.get_campaign(session, principal.workspace_id, campaign_id)
    rows = await list_prospects(
        session, campaign.id, state=state, limit=page.limit, after=page.after
    )
    return ListResponse.page(
        [prospect_out(p) for p in rows], page.limit, rows[-1].id if rows else None
    )
