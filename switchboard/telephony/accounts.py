"""Carrier accounts: one per workspace and carrier, secrets sealed with the ``SecretBox``."""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard.crypto import SecretBox
from switchboard.db.models import CarrierAccount
from switchboard.errors import InvalidInput, NotFound
from switchboard.telephony.credentials import CREDENTIALS, CarrierCredentials, CarrierName


def credentials_model(carrier: CarrierName) -> type[CarrierCredentials]:
    model = CREDENTIALS.get(carrier)
    if model is None:
        raise InvalidInput(f"carrier {carrier.value!r} takes no account", field="carrier")
    return model


async def _find(
    session: AsyncSession, workspace_id: str, carrier: CarrierName
) -> CarrierAccount | None:
    return await session.scalar(
        select(CarrierAccount).where(
            CarrierAccount.workspace_id == workspace_id, CarrierAccount.carrier == carrier.value
        )
    )


async def get_account(
    session: AsyncSession, workspace_id: str, carrier: CarrierName
) -> CarrierAccount:
    account = await _find(session, workspace_id, carrier)
    if account is None:
        raise NotFound("carrier account", carrier.value)
    return account


async def list_accounts(session: AsyncSession, workspace_id: str) -> list[CarrierAccount]:
    rows = await session.scalars(
        select(CarrierAccount)
        .where(CarrierAccount.workspace_id == workspace_id)
        .order_by(CarrierAccount.carrier)
    )
    return list(rows)


async def put_account(
    session: AsyncSession,
    box: SecretBox,
    workspace_id: str,
    carrier: CarrierName,
    values: dict[str, Any],
) -> CarrierAccount:
    """Create or replace the account; a secret left out keeps its stored value."""
    model = credentials_model(carrier)
    account = await _find(session, workspace_id, carrier)
    stored_secrets = box.open(account.secrets) if account else {}
    credentials = model.model_validate({**stored_secrets, **values})
    secret_names = set(model.secret_fields())
    plain = credentials.model_dump(mode="json", exclude=secret_names)
    secrets = {
        name: value.get_secret_value()
        for name in secret_names
        if isinstance(value := getattr(credentials, name), SecretStr)
    }
    if account is None:
        account = CarrierAccount(workspace_id=workspace_id, carrier=carrier.value)
        session.add(account)
    account.settings = plain
    account.secrets = box.seal(secrets)
    await session.commit()
    return account


async def delete_account(session: AsyncSession, workspace_id: str, carrier: CarrierName) -> None:
    account = await get_account(session, workspace_id, carrier)
    await session.delete(account)
    await session.commit()


async def load_credentials(
    session: AsyncSession, box: SecretBox, workspace_id: str, carrier: CarrierName
) -> CarrierCredentials:
    """Decrypted credentials, for the carrier module at the moment it calls out."""
    account = await get_account(session, workspace_id, carrier)
    return credentials_model(carrier).model_validate(
        {**account.settings, **box.open(account.secrets)}
    )
