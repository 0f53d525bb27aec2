"""/api/v1/batches: a CSV of numbers called by an agent, with concurrency, retries, a schedule."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, UploadFile, status
from pydantic import BaseModel, Field

from switchboard.api.deps import Developer, PageDep, ServicesDep, SessionDep, Viewer
from switchboard.api.schemas import ListResponse
from switchboard.db.models import Batch, BatchRow, BatchStatus, RowStatus
from switchboard.dialer import batches as service
from switchboard.dialer.signals import wake_pump
from switchboard.errors import InvalidInput

router = APIRouter(prefix="/batches", tags=["batches"])
MAX_CSV_BYTES = 900_000  # under the 1 MB request cap, with room for the form fields


class BatchRowOut(BaseModel):
    line: int
    phone: str
    status: RowStatus
    attempts: int
    outcome: str | None
    call_id: str | None
    last_error: str | None


class BatchOut(BaseModel):
    id: str
    name: str
    agent_id: str
    status: BatchStatus
    concurrency: int
    max_attempts: int
    retry_on: list[str]
    retry_after_seconds: int
    start_at: datetime | None
    end_at: datetime | None
    dial: dict[str, Any]
    progress: dict[str, Any] = Field(description="rows per status, finished rows per outcome")
    row_errors: list[dict[str, Any]] = Field(description="CSV rows refused: line and reason")
    max_live_seen: int = Field(description="the most calls of this batch live at once")
    created_at: datetime
    finished_at: datetime | None
    rows: list[BatchRowOut] | None = None


async def batch_out(session: SessionDep, batch: Batch, *, with_rows: bool = False) -> BatchOut:
    rows = await service.batch_rows(session, batch.id) if with_rows else None
    return BatchOut(
        id=batch.id,
        name=batch.name,
        agent_id=batch.agent_id,
        status=batch.status,
        concurrency=batch.concurrency,
        max_attempts=batch.max_attempts,
        retry_on=batch.retry_on,
        retry_after_seconds=batch.retry_after_seconds,
        start_at=batch.start_at,
        end_at=batch.end_at,
        dial=batch.dial,
        progress=await service.progress(session, batch.id),
        row_errors=batch.row_errors,
        max_live_seen=batch.max_live_seen,
        created_at=batch.created_at,
        finished_at=batch.finished_at,
        rows=None if rows is None else [_row_out(r) for r in rows],
    )


def _row_out(row: BatchRow) -> BatchRowOut:
    return BatchRowOut(
        line=row.line,
        phone=row.phone,
        status=row.status,
        attempts=row.attempts,
        outcome=row.outcome,
        call_id=row.call_id,
        last_error=row.last_error,
    )


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_batch(
    file: Annotated[UploadFile, File(description="CSV: phone, [timezone], [variables...]")],
    agent_id: Annotated[str, Form()],
    session: SessionDep,
    principal: Developer,
    services: ServicesDep,
    name: Annotated[str, Form()] = "",
    from_number: Annotated[str | None, Form(alias="from")] = None,
    concurrency: Annotated[int, Form()] = 2,
    max_attempts: Annotated[int, Form()] = 1,
    retry_on: Annotated[str, Form(description="comma-separated: busy,no_answer,failed")] = (
        "busy,no_answer,failed"
    ),
    retry_after_seconds: Annotated[int, Form()] = 300,
    start_at: Annotated[datetime | None, Form()] = None,
    end_at: Annotated[datetime | None, Form()] = None,
    machine_detection: Annotated[str, Form()] = "off",
    voicemail_message: Annotated[str | None, Form()] = None,
    ring_timeout_seconds: Annotated[int, Form()] = 30,
) -> BatchOut:
    """Check every row: bad rows come back in ``row_errors`` (line and reason), good rows
    are dialled by the batch's own schedule and concurrency, under the workspace's limit."""
    data = await file.read(MAX_CSV_BYTES + 1)
    if len(data) > MAX_CSV_BYTES:
        raise InvalidInput(f"the CSV is over {MAX_CSV_BYTES} bytes", field="file")
    options = service.BatchOptions.model_validate(
        {
            "agent_id": agent_id,
            "name": name,
            "from": from_number or None,
            "concurrency": concurrency,
            "max_attempts": max_attempts,
            "retry_on": [part.strip() for part in retry_on.split(",") if part.strip()],
            "retry_after_seconds": retry_after_seconds,
            "start_at": start_at,
            "end_at": end_at,
            "machine_detection": machine_detection,
            "voicemail_message": voicemail_message or None,
            "ring_timeout_seconds": ring_timeout_seconds,
        }
    )
    batch = await service.create_batch(
        session,
        principal.workspace_id,
        options,
        data,
        simulator_enabled=services.settings.simulator_enabled,
    )
    await wake_pump(services.jobs, batch.id)
    return await batch_out(session, batch)


@router.get("")
async def list_batches(
    session: SessionDep, principal: Viewer, page: PageDep
) -> ListResponse[BatchOut]:
    rows = await service.list_batches(
        session, principal.workspace_id, limit=page.limit, after=page.after
    )
    return ListResponse.page(
        [await batch_out(session, b) for b in rows], page.limit, rows[-1].id if rows else None
    )


@router.get("/{batch_id}")
async def get_batch(batch_id: str, session: SessionDep, principal: Viewer) -> BatchOut:
    """Progress (rows per status and outcome) and every row's outcome and call."""
    batch = await service.get_batch(session, principal.workspace_id, batch_id)
    return await batch_out(session, batch, with_rows=True)


@router.post("/{batch_id}/pause")
async def pause_batch(batch_id: str, session: SessionDep, principal: Developer) -> BatchOut:
    """No new dials until resumed; calls already live go on."""
    batch = await service.pause_batch(session, principal.workspace_id, batch_id)
    return await batch_out(session, batch)


@router.post("/{batch_id}/resume")
async def resume_batch(
    batch_id: str, session: SessionDep, principal: Developer, services: ServicesDep
) -> BatchOut:
    batch = await service.resume_batch(session, principal.workspace_id, batch_id)
    await wake_pump(services.jobs, batch.id)
    return await batch_out(session, batch)


@router.post("/{batch_id}/cancel")
async def cancel_batch(
    batch_id: str, session: SessionDep, principal: Developer, services: ServicesDep
) -> BatchOut:
    """Rows not reached yet are canceled; calls already live go on to their end."""
    batch = await service.cancel_batch(session, principal.workspace_id, batch_id)
    await wake_pump(services.jobs, batch.id)
    return await batch_out(session, batch)
