"""/api/v1/keys and /api/v1/workspace: who the caller is, its API keys and its policy."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field

from switchboard.api.deps import Admin, ServicesDep, SessionDep, Viewer
from switchboard.auth import service
from switchboard.auth.keys import KEY_SCHEME
from switchboard.auth.roles import role_at_least
from switchboard.auth.service import Principal
from switchboard.db.models import ApiKey, Role, Workspace
from switchboard.errors import Forbidden
from switchboard.tools import service as tools
from switchboard.tools.schema import SigningSecretOut, WorkspacePolicyPatch

router = APIRouter(tags=["workspace"])


class WorkspaceOut(BaseModel):
    id: str
    name: str
    role: Role
    key_id: str
    allowed_private_hosts: list[str] = Field(
        description="hosts webhook tools and provider endpoints may reach even though they"
        " resolve to private addresses"
    )
    max_concurrent_calls: int = Field(description="live calls the workspace may have at once")


def workspace_out(workspace: Workspace, principal: Principal) -> WorkspaceOut:
    return WorkspaceOut(
        id=workspace.id,
        name=workspace.name,
        role=principal.role,
        key_id=principal.key_id,
        allowed_private_hosts=workspace.allowed_private_hosts,
        max_concurrent_calls=workspace.max_concurrent_calls,
    )


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
    return workspace_out(await tools.get_workspace(session, principal.workspace_id), principal)


@router.patch("/workspace")
async def update_workspace(
    body: WorkspacePolicyPatch, session: SessionDep, principal: Admin
) -> WorkspaceOut:
    """Change only the fields sent: the private hosts (admin) and the call limit (owner).

    Private hosts are names or IPs that webhook tools and provider endpoints may reach
    although they resolve privately, e.g. a self-hosted backend.
    """
    return workspace_out(await tools.update_workspace_policy(session, principal, body), principal)


@router.post("/workspace/signing-secret")
async def rotate_signing_secret(
    session: SessionDep, principal: Admin, services: ServicesDep
) -> SigningSecretOut:
    """Replace the secret that signs webhook-tool requests; it is shown this once."""
    secret = await tools.new_signing_secret(session, services.box, principal.workspace_id)
    return SigningSecretOut(signing_secret=secret)


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
