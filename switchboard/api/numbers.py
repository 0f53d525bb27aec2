"""/api/v1/numbers: phone numbers and the agent each one rings."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from switchboard.api.deps import Admin, PageDep, ServicesDep, SessionDep, Viewer
from switchboard.api.schemas import ListResponse
from switchboard.db.models import PhoneNumber
from switchboard.errors import InvalidInput
from switchboard.phone import to_e164
from switchboard.telephony import numbers
from switchboard.telephony.credentials import CarrierName
from switchboard.telephony.registry import CARRIERS, PSTN_CARRIERS

router = APIRouter(prefix="/numbers", tags=["numbers"])


class NumberIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    carrier: CarrierName
    number: str = Field(max_length=32, examples=["+14155550123"])
    label: str = Field(default="", max_length=120)
    agent_id: str | None = None

    @field_validator("carrier")
    @classmethod
    def _phone_carrier(cls, value: CarrierName) -> CarrierName:
        """Only phone carriers have numbers: a browser calls in through the API."""
        if value not in CARRIERS:
            raise ValueError(f"{value.value!r} is not a phone carrier")
        return value

    @field_validator("number")
    @classmethod
    def _normalise(cls, value: str, info: ValidationInfo) -> str:
        """Carrier numbers must be real numbers; simulator and browser ones only E.164-shaped."""
        return to_e164(value, strict=info.data.get("carrier") in PSTN_CARRIERS)


class NumberPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str | None = Field(default=None, max_length=120)
    agent_id: str | None = None


class NumberOut(BaseModel):
    id: str
    number: str
    carrier: CarrierName
    label: str
    agent_id: str | None
    created_at: datetime


def number_out(row: PhoneNumber) -> NumberOut:
    return NumberOut(
        id=row.id,
        number=row.number,
        carrier=CarrierName(row.carrier),
        label=row.label,
        agent_id=row.agent_id,
        created_at=row.created_at,
    )


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_number(
    body: NumberIn, session: SessionDep, principal: Admin, services: ServicesDep
) -> NumberOut:
    if body.carrier is CarrierName.SIMULATOR and not services.settings.simulator_enabled:
        raise InvalidInput("the simulator carrier exists only in development", field="carrier")
    row = PhoneNumber(workspace_id=principal.workspace_id, **body.model_dump(mode="json"))
    return number_out(await numbers.save_number(session, row))


@router.get("")
async def list_numbers(
    session: SessionDep, principal: Viewer, page: PageDep
) -> ListResponse[NumberOut]:
    rows = await numbers.list_numbers(
        session, principal.workspace_id, limit=page.limit, after=page.after
    )
    return ListResponse.page(
        [number_out(r) for r in rows], page.limit, rows[-1].id if rows else None
    )


@router.get("/{number_id}")
async def get_number(number_id: str, session: SessionDep, principal: Viewer) -> NumberOut:
    return number_out(await numbers.get_number(session, principal.workspace_id, number_id))


@router.patch("/{number_id}")
async def update_number(
    number_id: str, body: NumberPatch, session: SessionDep, principal: Admin
) -> NumberOut:
    """Relabel a number or point it at another agent (``agent_id: null`` unbinds it)."""
    row = await numbers.get_number(session, principal.workspace_id, number_id)
    changes = body.model_dump(exclude_unset=True)
    if "label" in changes:
        row.label = changes["label"] or ""
    if "agent_id" in changes:
        row.agent_id = changes["agent_id"]
    return number_out(await numbers.save_number(session, row))


@router.delete("/{number_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_number(number_id: str, session: SessionDep, principal: Admin) -> None:
    await numbers.delete_number(session, principal.workspace_id, number_id)
