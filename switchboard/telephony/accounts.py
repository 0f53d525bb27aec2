"""Carrier accounts: one per workspace and carrier, secrets sealed with the ``SecretBox``;
and the one way to get a workspace's carrier, credentials decrypted once, ready to use."""

from __future__ import annotations

import logging
from typing import Any

from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard.crypto import SecretBox
from switchboard.db.models import CarrierAccount
from switchboard.errors import ConfigurationError, Forbidden, NotFound
from switchboard.services import Services
from switchboard.telephony.carrier import Carrier
from switchboard.telephony.credentials import CarrierCredentials, CarrierName
from switchboard.telephony.registry import carrier_class, credentials_model

log = logging.getLogger(__name__)


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


async def carrier_for(services: Services, name: CarrierName, workspace_id: str) -> Carrier:
    """Carrier ``name`` with the workspace's credentials (for carriers that take any) and the
    options this server gives it.

    Raises ``Forbidden`` (logged) when the workspace has no account for a carrier that
    needs one, and ``ConfigurationError`` (logged as such) when its stored secrets cannot
    be decrypted: a webhook is then refused, never checked against nothing.
    """
    cls = carrier_class(name)
    credentials: CarrierCredentials | None = None
    if cls.credentials_model is not None:
        async with services.sessions() as session:
            try:
                credentials = await load_credentials(session, services.box, workspace_id, name)
            except NotFound as exc:
                log.warning(
                    "workspace %s has no %s account: its %s request is refused",
                    workspace_id,
                    name.value,
                    name.value,
                )
                raise Forbidden(
                    f"no {name.value} account is configured for this number's workspace"
                ) from exc
            except ConfigurationError:
                log.error(
                    "workspace %s: the stored %s credentials cannot be decrypted"
                    " (was SWITCHBOARD_SECRET_KEY changed?)",
                    workspace_id,
                    name.value,
                )
                raise
    settings = services.settings
    options = cls.options(settings.resolved_public_url, settings.encryption_key)
    return cls(credentials, services.http, **options)
