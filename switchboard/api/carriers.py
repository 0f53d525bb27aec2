"""/api/v1/carriers/{carrier}: carrier credentials; secrets can be written, never read back."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Body, status
from pydantic import BaseModel

from switchboard.api.deps import Admin, ServicesDep, SessionDep, Viewer
from switchboard.db.models import CarrierAccount
from switchboard.telephony import accounts
from switchboard.telephony.credentials import CarrierName

router = APIRouter(prefix="/carriers", tags=["carriers"])


class CarrierAccountOut(BaseModel):
    carrier: CarrierName
    settings: dict[str, Any]
    secrets_set: list[str]
    updated_at: datetime


def account_out(account: CarrierAccount, services: ServicesDep) -> CarrierAccountOut:
    carrier = CarrierName(account.carrier)
    stored = services.box.open(account.secrets)
    return CarrierAccountOut(
        carrier=carrier,
        settings=account.settings,
        secrets_set=sorted(name for name, value in stored.items() if value),
        updated_at=account.updated_at,
    )


@router.get("")
async def list_carrier_accounts(
    session: SessionDep, principal: Viewer, services: ServicesDep
) -> list[CarrierAccountOut]:
    rows = await accounts.list_accounts(session, principal.workspace_id)
    return [account_out(r, services) for r in rows]


@router.get("/{carrier}")
async def get_carrier_account(
    carrier: CarrierName, session: SessionDep, principal: Viewer, services: ServicesDep
) -> CarrierAccountOut:
    return account_out(
        await accounts.get_account(session, principal.workspace_id, carrier), services
    )


@router.put("/{carrier}")
async def put_carrier_account(
    carrier: CarrierName,
    session: SessionDep,
    principal: Admin,
    services: ServicesDep,
    body: dict[str, Any] = Body(
        examples=[{"account_sid": "AC" + "0" * 32, "auth_token": "your-auth-token"}]
    ),
) -> CarrierAccountOut:
    """Set credentials. Fields: twilio ``account_sid, auth_token``; exotel ``account_sid,
    api_key, api_token, subdomain``; vobiz ``auth_id, auth_token``. A secret left out
    keeps its stored value."""
    account = await accounts.put_account(
        session, services.box, principal.workspace_id, carrier, body
    )
    return account_out(account, services)


@router.delete("/{carrier}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_carrier_account(
    carrier: CarrierName, session: SessionDep, principal: Admin
) -> None:
    await accounts.delete_account(session, principal.workspace_id, carrier)
