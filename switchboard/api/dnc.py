"""/api/v1/dnc: the do-not-call list, for the whole workspace or one of its campaigns.

Listing and adding are everyday work (viewer, developer); taking a number off
the list lets it be called again, so that needs an admin.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Response, UploadFile, status
from pydantic import BaseModel, ConfigDict, Field, field_validator

from switchboard.api.deps import Admin, Developer, PageDep, SessionDep, Viewer
from switchboard.api.schemas import ListResponse
from switchboard.db.models import DncEntry
from switchboard.dialer import dnc as service
from switchboard.errors import InvalidInput

router = APIRouter(prefix="/dnc", tags=["dnc"])
MAX_CSV_BYTES = 900_000  # under the 1 MB request cap, with room for the form fields
SCOPE_HELP = "'workspace' (every dial; the default) or the id of one campaign"


class DncIn(BaseModel):
    """What ``POST /api/v1/dnc`` takes."""

    model_config = ConfigDict(extra="forbid")

    number: str = Field(max_length=32, examples=["+14155550123"])
    scope: str = Field(default=service.WORKSPACE, max_length=40, description=SCOPE_HELP)
    reason: str = Field(default="", max_length=service.MAX_REASON_CHARS)

    @field_validator("number")
    @classmethod
    def _normalise(cls, value: str) -> str:
        return service.dnc_number(value)


class DncOut(BaseModel):
    id: str
    number: str
    scope: str = Field(description=SCOPE_HELP)
    source: str = Field(
        description="api, csv, opt_out (the callee asked on call_id) or disposition"
    )
    reason: str
    call_id: str | None = Field(description="opt_out, disposition: the call it came from")
    created_at: datetime


class DncImportOut(BaseModel):
    scope: str
    rows: int = Field(description="data rows read")
    added: int
    already_listed: int = Field(description="listed before, or higher up the file")
    row_errors: list[dict[str, Any]] = Field(description="rows refused: line, reason, field")


def dnc_out(entry: DncEntry) -> DncOut:
    return DncOut(
        id=entry.id,
        number=entry.number,
        scope=entry.scope,
        source=entry.source,
        reason=entry.reason,
        call_id=entry.call_id,
        created_at=entry.created_at,
    )


@router.get("")
async def list_dnc(
    session: SessionDep,
    principal: Viewer,
    page: PageDep,
    scope: Annotated[str | None, Query(max_length=40, description=SCOPE_HELP)] = None,
    number: Annotated[str | None, Query(max_length=32, description="one number")] = None,
) -> ListResponse[DncOut]:
    """Entries in the order they were added."""
    wanted = None
    if number is not None:
        try:
            wanted = service.dnc_number(number)
        except ValueError as exc:
            raise InvalidInput(str(exc), field="number") from exc
    rows = await service.list_entries(
        session,
        principal.workspace_id,
        limit=page.limit,
        after=page.after,
        scope=scope,
        number=wanted,
    )
    return ListResponse.page([dnc_out(r) for r in rows], page.limit, rows[-1].id if rows else None)


@router.post("", status_code=status.HTTP_201_CREATED)
async def add_dnc(
    body: DncIn, session: SessionDep, principal: Developer, response: Response
) -> DncOut:
    """List a number: 201 with the new entry, or 200 with the entry already there."""
    scope = await service.checked_scope(session, principal.workspace_id, body.scope)
    entry, created = await service.add_number(
        session, principal.workspace_id, body.number, scope=scope, reason=body.reason
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    return dnc_out(entry)


@router.post("/import")
async def import_dnc(
    file: Annotated[UploadFile, File(description="CSV: number (or phone), [reason]")],
    session: SessionDep,
    principal: Developer,
    scope: Annotated[str, Form(max_length=40, description=SCOPE_HELP)] = service.WORKSPACE,
) -> DncImportOut:
    """List every good row; bad rows come back in ``row_errors`` with line and reason."""
    data = await file.read(MAX_CSV_BYTES + 1)
    if len(data) > MAX_CSV_BYTES:
        raise InvalidInput(f"the CSV is over {MAX_CSV_BYTES} bytes", field="file")
    checked = await service.checked_scope(session, principal.workspace_id, scope or None)
    report = await service.import_csv(session, principal.workspace_id, data, scope=checked)
    return DncImportOut(
        scope=report.scope,
        rows=report.rows,
        added=report.added,
        already_listed=report.already_listed,
        row_errors=[e.as_json() for e in report.row_errors],
    )


@router.delete("/{dnc_id}", status_code=status.HTTP_204_NO_CONTENT)
async def remove_dnc(dnc_id: str, session: SessionDep, principal: Admin) -> None:
    """Take a number off the list: it may be dialled again (admin only)."""
    await service.remove_entry(session, principal.workspace_id, dnc_id)
