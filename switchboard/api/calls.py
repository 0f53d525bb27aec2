"""/api/v1/calls: call records, their transcripts, events and recordings."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, status
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field

from switchboard.api.deps import Developer, PageDep, ServicesDep, SessionDep, Viewer
from switchboard.api.schemas import ListResponse
from switchboard.calls import service
from switchboard.calls.outbound import OutboundCallIn, create_outbound_call
from switchboard.db.models import Call, CallDirection, CallStatus
from switchboard.errors import NotFound
from switchboard.telephony import browser_calls, dial
from switchboard.telephony.dial_jobs import place_job_id, place_queued_call

router = APIRouter(prefix="/calls", tags=["calls"])


class CallOut(BaseModel):
    id: str
    agent_id: str | None
    agent_version: int | None
    direction: CallDirection
    carrier: str
    from_number: str
    to_number: str
    status: CallStatus
    end_reason: str | None
    created_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None
    duration_seconds: float | None
    has_recording: bool
    usage: dict[str, Any]
    latency: dict[str, Any]
    answered_by: str | None = Field(description="outbound: human, machine_*, fax or unknown")
    error: dict[str, Any] | None = Field(
        description="the carrier's code and message when placing the call failed"
    )
    machine_detection: str | None = Field(description="outbound: off, detect or leave_message")


class TurnOut(BaseModel):
    index: int
    role: str
    text: str
    started_at: datetime
    ended_at: datetime | None
    interrupted: bool


class EventOut(BaseModel):
    seq: int
    type: str
    at: datetime
    data: dict[str, Any]


def call_out(call: Call) -> CallOut:
    duration = None
    if call.answered_at and call.ended_at:
        duration = round((call.ended_at - call.answered_at).total_seconds(), 2)
    return CallOut(
        id=call.id,
        agent_id=call.agent_id,
        agent_version=call.agent_version,
        direction=call.direction,
        carrier=call.carrier,
        from_number=call.from_number,
        to_number=call.to_number,
        status=call.status,
        end_reason=call.end_reason,
        created_at=call.created_at,
        answered_at=call.answered_at,
        ended_at=call.ended_at,
        duration_seconds=duration,
        has_recording=bool(call.recording_path),
        usage=call.usage,
        latency=call.latency,
        answered_by=call.answered_by,
        error=call.error,
        machine_detection=(call.dial or {}).get("machine_detection"),
    )


@router.get("")
async def list_calls(
    session: SessionDep,
    principal: Viewer,
    page: PageDep,
    status: CallStatus | None = None,
    agent_id: str | None = None,
) -> ListResponse[CallOut]:
    """Newest first."""
    rows = await service.list_calls(
        session,
        principal.workspace_id,
        limit=page.limit,
        after=page.after,
        status=status,
        agent_id=agent_id,
    )
    return ListResponse.page([call_out(c) for c in rows], page.limit, rows[-1].id if rows else None)


class BrowserCallIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agent_id: str


class BrowserCallOut(BaseModel):
    call_id: str
    token: str = Field(description='send it first on the socket: {"type": "start", "token": ...}')
    media_url: str
    expires_in: int
    sample_rate: int


@router.post("/browser", status_code=status.HTTP_201_CREATED)
async def start_browser_call(
    body: BrowserCallIn, principal: Developer, services: ServicesDep
) -> BrowserCallOut:
    """Call an agent from a web page: 16-bit PCM at 16 kHz both ways over ``media_url``."""
    call = await browser_calls.start_browser_call(services, principal, body.agent_id)
    return BrowserCallOut(**asdict(call))


@router.post("", status_code=status.HTTP_201_CREATED)
async def place_call(
    body: OutboundCallIn, session: SessionDep, principal: Developer, services: ServicesDep
) -> CallOut:
    """Call ``to`` with an agent: checked and queued here, placed through the carrier of the
    ``from`` number by a job; follow its ``status`` (queued, ringing, in_progress, ...)."""
    call = await create_outbound_call(
        session,
        principal.workspace_id,
        body,
        simulator_enabled=services.settings.simulator_enabled,
    )
    await services.jobs.enqueue(
        place_queued_call, {"call_id": call.id}, job_id=place_job_id(call.id)
    )
    return call_out(call)


@router.post("/{call_id}/hangup")
async def hang_up_call(
    call_id: str, session: SessionDep, principal: Developer, services: ServicesDep
) -> CallOut:
    """End a live call: a queued one is cancelled, a ringing or answered one hung up."""
    call = await service.get_call(session, principal.workspace_id, call_id)
    await dial.hang_up(services, call)
    async with services.sessions() as fresh:
        return call_out(await service.get_call(fresh, principal.workspace_id, call_id))


@router.get("/{call_id}")
async def get_call(call_id: str, session: SessionDep, principal: Viewer) -> CallOut:
    return call_out(await service.get_call(session, principal.workspace_id, call_id))


@router.get("/{call_id}/transcript")
async def get_transcript(call_id: str, session: SessionDep, principal: Viewer) -> list[TurnOut]:
    await service.get_call(session, principal.workspace_id, call_id)
    return [
        TurnOut(
            index=t.index,
            role=t.role,
            text=t.text,
            started_at=t.started_at,
            ended_at=t.ended_at,
            interrupted=t.interrupted,
        )
        for t in await service.transcript_of(session, call_id)
    ]


@router.get("/{call_id}/events")
async def get_events(call_id: str, session: SessionDep, principal: Viewer) -> list[EventOut]:
    await service.get_call(session, principal.workspace_id, call_id)
    return [
        EventOut(seq=e.seq, type=e.type, at=e.at, data=e.data)
        for e in await service.events_of(session, call_id)
    ]


@router.get("/{call_id}/recording", response_class=FileResponse)
async def get_recording(
    call_id: str, session: SessionDep, principal: Viewer, services: ServicesDep
) -> FileResponse:
    """The stereo WAV: caller on the left channel, agent on the right."""
    call = await service.get_call(session, principal.workspace_id, call_id)
    path = Path(call.recording_path) if call.recording_path else None
    root = services.settings.recordings_dir.resolve()
    if path is None or not path.resolve().is_relative_to(root) or not path.exists():
        raise NotFound("recording of call", call_id)
    return FileResponse(path, media_type="audio/wav", filename=f"{call_id}.wav")
