"""A workspace's provider credentials: stored sealed, checked at agent save, opened at call time."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard.crypto import SecretBox
from switchboard.db.models import ProviderCredential
from switchboard.errors import InvalidInput, NotFound
from switchboard.providers.registry import SPECS


def credential_names(provider: str) -> tuple[set[str], set[str]]:
    """(required, optional) secret names for a provider id, across its STT/LLM/TTS entries."""
    entries = [s for s in SPECS if s.id == provider]
    if not entries:
        raise NotFound("provider", provider, field="provider")
    required = {name for s in entries for name in s.credentials}
    optional = {name for s in entries for name in s.optional_credentials} - required
    return required, optional


async def configured_providers(session: AsyncSession, workspace_id: str) -> set[str]:
    rows = await session.scalars(
        select(ProviderCredential.provider).where(ProviderCredential.workspace_id == workspace_id)
    )
    return set(rows)


async def put_credentials(
    session: AsyncSession,
    box: SecretBox,
    workspace_id: str,
    provider: str,
    values: dict[str, object],
) -> None:
    required, optional = credential_names(provider)
    if not required and not optional:
        raise InvalidInput(f"provider {provider!r} takes no credentials", field="provider")
    for name in values:
        if name not in required | optional:
            raise InvalidInput(
                f"unknown credential; {provider} takes {sorted(required | optional)}", field=name
            )
    secrets: dict[str, str] = {}
    for name in sorted(required | optional):
        value = values.get(name)
        if value is None and name in optional:
            continue
        if not isinstance(value, str) or not value.strip() or len(value) > 4096:
            raise InvalidInput(
                "a non-empty string of at most 4096 characters is required", field=name
            )
        secrets[name] = value.strip()
    row = await session.scalar(
        select(ProviderCredential).where(
            ProviderCredential.workspace_id == workspace_id, ProviderCredential.provider == provider
        )
    )
    if row is None:
        row = ProviderCredential(workspace_id=workspace_id, provider=provider, secrets=b"")
        session.add(row)
    row.secrets = box.seal(secrets)
    try:
        await session.commit()
    except IntegrityError:  # a concurrent first write for the same provider: retry as update
        await session.rollback()
        await put_credentials(session, box, workspace_id, provider, values)


async def delete_credentials(session: AsyncSession, workspace_id: str, provider: str) -> None:
    row = await session.scalar(
        select(ProviderCredential).where(
            ProviderCredential.workspace_id == workspace_id, ProviderCredential.provider == provider
        )
    )
    if row is None:
        raise NotFound("provider credentials", provider)
    await session.delete(row)
    await session.commit()


async def load_credentials(
    session: AsyncSession, box: SecretBox, workspace_id: str, provider: str
) -> dict[str, str]:
    """Decrypted secrets for one provider, or {} when the workspace stored none."""
    blob = await session.scalar(
        select(ProviderCredential.secrets).where(
            ProviderCredential.workspace_id == workspace_id, ProviderCredential.provider == provider
        )
    )
    return box.open(blob)
