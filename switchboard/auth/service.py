"""Workspaces and API keys: creating, finding, authenticating, revoking."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard.auth.keys import generate_key, key_matches, parse_prefix
from switchboard.auth.roles import role_at_least
from switchboard.db.base import utcnow
from switchboard.db.models import ApiKey, Role, Workspace
from switchboard.errors import Forbidden, NotFound, Unauthenticated

# Writing last_used_at on every request would turn reads into writes; once a minute is enough.
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class Principal:
    """Who is calling: a key acting in one workspace with one role."""

    workspace_id: str
    key_id: str
    role: Role

    def require(self, role: Role, *, field: str | None = None) -> None:
        """Raise ``Forbidden`` (naming ``field``, when the role is needed for one) unless the
        key's role is ``role`` or higher."""
        if not role_at_least(self.role, role):
            raise Forbidden(
                f"this needs the {role.value} role or higher; the key is {self.role.value}",
                field=field,
            )


async def get_or_create_workspace(session: AsyncSession, name: str) -> tuple[Workspace, bool]:
    workspace = await session.scalar(select(Workspace).where(Workspace.name == name))
    if workspace is not None:
        return workspace, False
    workspace = Workspace(name=name)
    session.add(workspace)
    await session.flush()
    return workspace, True


async def create_api_key(
    session: AsyncSession, workspace_id: str, role: Role, name: str = ""
) -> tuple[ApiKey, str]:
    """Store a new key and return it with its plaintext (shown once, never stored)."""
    new = generate_key()
    key = ApiKey(
        workspace_id=workspace_id,
        role=role,
        name=name,
        prefix=new.prefix,
        secret_hash=new.secret_hash,
    )
    session.add(key)
    await session.flush()
    return key, new.plaintext


async def authenticate(session: AsyncSession, plaintext: str) -> Principal:
    prefix = parse_prefix(plaintext)
    if prefix is None:
        raise Unauthenticated("malformed API key")
    key = await session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
    if key is None or not key_matches(plaintext, key.secret_hash):
        raise Unauthenticated("unknown API key")
    if key.revoked_at is not None:
        raise Unauthenticated("API key revoked")
    now = utcnow()
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        await session.execute(update(ApiKey).where(ApiKey.id == key.id).values(last_used_at=now))
        await session.commit()
    return Principal(workspace_id=key.workspace_id, key_id=key.id, role=key.role)


async def list_api_keys(session: AsyncSession, workspace_id: str) -> list[ApiKey]:
    rows = await session.scalars(
        select(ApiKey).where(ApiKey.workspace_id == workspace_id).order_by(ApiKey.created_at)
    )
    return list(rows)


async def revoke_api_key(session: AsyncSession, principal: Principal, key_id: str) -> ApiKey:
    key = await session.scalar(
        select(ApiKey).where(ApiKey.id == key_id, ApiKey.workspace_id == principal.workspace_id)
    )
    if key is None:
        raise NotFound("api key", key_id)
    if not role_at_least(principal.role, key.role):
        raise Forbidden("a key cannot revoke a key of a higher role")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
    await session.flush()
    return key
