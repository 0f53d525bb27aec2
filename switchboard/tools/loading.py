"""What a call needs to run webhook tools: the tools with their secrets, and the workspace policy.

Loaded once when a call starts and kept out of the runtime-config cache, so
decrypted header values never sit in a structure the API can serialise.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard.crypto import SecretBox
from switchboard.db.models import Tool, Workspace
from switchboard.errors import NotFound

SIGNING_SECRET_KEY = "signing_secret"


@dataclass(frozen=True)
class WebhookTool:
    """One webhook tool, ready to call, its secret headers decrypted.

    The secret headers stay apart from the plain ones so the client can send
    them to the tool's own origin only (see :meth:`SafeHttpClient.request`).
    """

    id: str
    name: str
    description: str
    parameters: dict[str, Any]
    url: str
    method: str
    headers: dict[str, str] = field(repr=False)
    secret_headers: dict[str, str] = field(repr=False)
    timeout_seconds: float
    retries: int
    wait_message: str


@dataclass(frozen=True)
class ToolPolicy:
    """How a workspace's tool requests go out: which private hosts, signed with what."""

    allowed_private_hosts: tuple[str, ...]
    signing_secret: str = field(repr=False)


def tool_usable_by(tool: Tool, agent_id: str) -> bool:
    """Whether ``agent_id`` may use ``tool`` (no agent list means every agent may)."""
    return tool.agent_ids is None or agent_id in tool.agent_ids


def webhook_tool(tool: Tool, box: SecretBox) -> WebhookTool:
    return WebhookTool(
        id=tool.id,
        name=tool.name,
        description=tool.description,
        parameters=dict(tool.parameters),
        url=tool.url,
        method=tool.method,
        headers=dict(tool.headers),
        secret_headers=box.open(tool.secret_headers),
        timeout_seconds=tool.timeout_seconds,
        retries=tool.retries,
        wait_message=tool.wait_message,
    )


async def load_webhook_tools(
    session: AsyncSession, box: SecretBox, workspace_id: str, agent_id: str
) -> dict[str, WebhookTool]:
    """Every tool of the workspace that ``agent_id`` may use, by name."""
    rows = await session.scalars(select(Tool).where(Tool.workspace_id == workspace_id))
    return {row.name: webhook_tool(row, box) for row in rows if tool_usable_by(row, agent_id)}


async def signing_secret(session: AsyncSession, box: SecretBox, workspace: Workspace) -> str:
    """The workspace's signing secret, created (and committed) on first use.

    Two calls starting at once in different processes must not each make one
    (requests signed with the loser would fail to verify): the first write wins
    and both read it back.
    """
    if workspace.tool_signing_secret is None:
        await session.execute(
            update(Workspace)
            .where(Workspace.id == workspace.id, Workspace.tool_signing_secret.is_(None))
            .values(tool_signing_secret=box.seal({SIGNING_SECRET_KEY: _new_secret()}))
        )
        await session.commit()
        await session.refresh(workspace)
    assert workspace.tool_signing_secret is not None
    return box.open(workspace.tool_signing_secret)[SIGNING_SECRET_KEY]


async def rotate_signing_secret(session: AsyncSession, box: SecretBox, workspace: Workspace) -> str:
    """Replace the workspace's signing secret; receivers must be given the new one."""
    secret = _new_secret()
    workspace.tool_signing_secret = box.seal({SIGNING_SECRET_KEY: secret})
    await session.commit()
    return secret


def _new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


async def load_tool_policy(session: AsyncSession, box: SecretBox, workspace_id: str) -> ToolPolicy:
    workspace = await session.get(Workspace, workspace_id)
    if workspace is None:
        raise NotFound("workspace", workspace_id)
    return ToolPolicy(
        allowed_private_hosts=tuple(workspace.allowed_private_hosts),
        signing_secret=await signing_secret(session, box, workspace),
    )
