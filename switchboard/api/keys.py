"""/api/v1/keys and /api/v1/workspace: who the caller is and the workspace's API keys."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from switchboard.api.deps import Admin, SessionDep, Viewer
from switchboard.auth import service
from switchboard.auth.keys import KEY_SCHEME
from switchboard.auth.roles import role_at_least
from switchboard.db.models import ApiKey, Role, Workspace
from switchboard.errors import Forbidden

router = APIRouter(tags=["workspace"])


class WorkspaceOut(BaseModel):
    id: str
    name: str
    role: Role
    key_id: str


class KeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="", max_length=120)
    role: Role


class KeyOut(BaseModel):
    id: str
    name: str
    role: Role
    prefix: str = Field(description="first characters of the key, to recognise it")
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class NewKeyOut(KeyOut):
    key: str = Field(description="the key itself: shown this once, never again")


def key_out(key: ApiKey) -> KeyOut:
    return KeyOut(
        id=key.id,
        name=key.name,
        role=key.role,
        prefix=f"{KEY_SCHEME}_{key.prefix}",
        created_at=key.created_at,
        last_used_at=key.last_used_at,
        revoked_at=key.revoked_at,
    )


@router.get("/workspace")
async def current_workspace(session: SessionDep, principal: Viewer) -> WorkspaceOut:
    """The workspace and role the presented key acts with."""
    workspace = await session.scalar(
        select(Workspace).where(Workspace.id == principal.workspace_id)
    )
    assert workspace is not None
    return WorkspaceOut(
        id=workspace.id, name=workspace.name, role=principal.role, key_id=principal.key_id
    )


@router.get("/keys")
async def list_keys(session: SessionDep, principal: Admin) -> list[KeyOut]:
    return [key_out(k) for k in await service.list_api_keys(session, principal.workspace_id)]


@router.post("/keys", status_code=status.HTTP_201_CREATED)
async def create_key(body: KeyIn, session: SessionDep, principal: Admin) -> NewKeyOut:
    """Make a key with a role no higher than the caller's own."""
    if not role_at_least(principal.role, body.role):
        raise Forbidden(
            f"a {principal.role.value} key cannot create a {body.role.value} key", field="role"
        )
    key, plaintext = await service.create_api_key(
        session, principal.workspace_id, body.role, body.name
    )
    await session.commit()
    return NewKeyOut(**key_out(key).model_dump(), key=plaintext)


@router.delete("/keys/{key_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_key(key_id: str, session: SessionDep, principal: Admin) -> None:
    """Revoke a key at once; requests with it get 401 from then on."""
    await service.revoke_api_key(session, principal, key_id)
    await session.commit()
