"""Creating, changing and deleting webhook tools, and a workspace's policy.

Secret header values are sealed with the workspace's :class:`SecretBox` the
moment they arrive and opened only to re-check a merged update; responses
carry their names alone. Sending stored secrets to a new host is an admin's
decision. A tool that an agent or a flow node still uses cannot be deleted,
so a call never finds a reference to nothing.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard.auth.service import Principal
from switchboard.crypto import SecretBox
from switchboard.db.models import Agent, FlowNode, Role, Tool, Workspace
from switchboard.db.owned import get_owned, page_owned
from switchboard.errors import Conflict, Forbidden, InvalidInput, NotFound
from switchboard.tools.addresses import parse_url, url_host
from switchboard.tools.loading import rotate_signing_secret
from switchboard.tools.schema import ToolConfig, ToolOut, ToolPatch, WorkspacePolicyPatch

log = logging.getLogger(__name__)

REFERENCE_FIELDS = ("tool_ids", "pre_call_tool_ids")


def tool_out(tool: Tool, box: SecretBox) -> ToolOut:
    return ToolOut(
        id=tool.id,
        name=tool.name,
        description=tool.description,
        parameters=tool.parameters,
        url=tool.url,
        method=tool.method,
        headers=tool.headers,
        secret_header_names=sorted(box.open(tool.secret_headers)),
        timeout_seconds=tool.timeout_seconds,
        retries=tool.retries,
        agent_ids=tool.agent_ids,
        wait_message=tool.wait_message,
        created_at=tool.created_at,
        updated_at=tool.updated_at,
    )


async def get_tool(session: AsyncSession, workspace_id: str, tool_id: str) -> Tool:
    return await get_owned(session, Tool, workspace_id, tool_id, "tool")


async def list_tools(
    session: AsyncSession, workspace_id: str, *, limit: int, after: str | None
) -> list[Tool]:
    return await page_owned(session, Tool, workspace_id, limit=limit, after=after)


async def workspace_agent_ids(session: AsyncSession, workspace_id: str) -> list[str]:
    """Every agent whose runtime config may show a changed tool."""
    return list(await session.scalars(select(Agent.id).where(Agent.workspace_id == workspace_id)))


async def _check_agent_ids(session: AsyncSession, workspace_id: str, config: ToolConfig) -> None:
    if not config.agent_ids:
        return
    found = set(
        await session.scalars(
            select(Agent.id).where(
                Agent.workspace_id == workspace_id, Agent.id.in_(config.agent_ids)
            )
        )
    )
    if missing := [i for i in config.agent_ids if i not in found]:
        raise InvalidInput(f"unknown agent id(s): {', '.join(missing)}", field="agent_ids")


async def _save(session: AsyncSession, box: SecretBox, tool: Tool, config: ToolConfig) -> Tool:
    await _check_agent_ids(session, tool.workspace_id, config)
    for name, value in config.model_dump(exclude={"secret_headers"}).items():
        setattr(tool, name, value)
    tool.secret_headers = box.seal(config.secret_headers) if config.secret_headers else None
    session.add(tool)
    try:
        await session.commit()
    except IntegrityError as exc:
        await session.rollback()
        raise Conflict(f"a tool named {config.name!r} already exists", field="name") from exc
    return tool


async def create_tool(
    session: AsyncSession, box: SecretBox, workspace_id: str, config: ToolConfig
) -> Tool:
    return await _save(session, box, Tool(workspace_id=workspace_id), config)


def _check_secrets_stay(principal: Principal, old_url: str, new_url: str) -> None:
    """Stored secret headers go wherever the tool points: moving them is an admin's call."""
    if url_host(parse_url(new_url)) == url_host(parse_url(old_url)):
        return
    try:
        principal.require(Role.ADMIN, field="url")
    except Forbidden as exc:
        raise Forbidden(
            "the tool's stored secret headers would go to a new host: an admin must make this"
            " change, or send secret_headers along with the new url",
            field="url",
        ) from exc


async def update_tool(
    session: AsyncSession, box: SecretBox, principal: Principal, tool_id: str, patch: ToolPatch
) -> Tool:
    """Apply the fields sent and check the result as a whole (old secrets included)."""
    tool = await get_tool(session, principal.workspace_id, tool_id)
    current: dict[str, Any] = {name: getattr(tool, name) for name in ToolConfig.model_fields}
    current["secret_headers"] = box.open(tool.secret_headers)
    changes = patch.model_dump(exclude_unset=True)
    config = ToolConfig.model_validate({**current, **changes})
    if current["secret_headers"] and "secret_headers" not in changes:
        _check_secrets_stay(principal, tool.url, config.url)
    return await _save(session, box, tool, config)


async def tool_users(session: AsyncSession, workspace_id: str, tool_id: str) -> list[str]:
    """Who refers to ``tool_id``: agents' tool lists and flow nodes, described for a person."""
    users: list[str] = []
    agents = await session.scalars(
        select(Agent).where(Agent.workspace_id == workspace_id).order_by(Agent.name)
    )
    for agent in agents:
        users += [
            f"agent {agent.name!r} ({field})"
            for field in REFERENCE_FIELDS
            if tool_id in getattr(agent, field)
        ]
    nodes = await session.execute(
        select(Agent.name, FlowNode.key, FlowNode.tools)
        .join(Agent, FlowNode.agent_id == Agent.id)
        .where(Agent.workspace_id == workspace_id)
        .order_by(Agent.name, FlowNode.key)
    )
    for agent_name, key, node_tools in nodes:
        if any(entry.get("tool_id") == tool_id for entry in node_tools):
            users.append(f"flow node {key!r} of agent {agent_name!r}")
    return users


async def delete_tool(session: AsyncSession, workspace_id: str, tool_id: str) -> None:
    tool = await get_tool(session, workspace_id, tool_id)
    if users := await tool_users(session, workspace_id, tool_id):
        raise Conflict(f"tool {tool.name!r} is in use by {', '.join(users)}; remove it there first")
    await session.delete(tool)
    await session.commit()


async def get_workspace(session: AsyncSession, workspace_id: str) -> Workspace:
    workspace = await session.get(Workspace, workspace_id)
    if workspace is None:
        raise NotFound("workspace", workspace_id)
    return workspace


async def update_workspace_policy(
    session: AsyncSession, principal: Principal, patch: WorkspacePolicyPatch
) -> Workspace:
    """Apply the policy fields sent; the call limit is the owner's, and each change is logged."""
    changes = patch.model_dump(exclude_unset=True)
    if "max_concurrent_calls" in changes:
        principal.require(Role.OWNER, field="max_concurrent_calls")
    workspace = await get_workspace(session, principal.workspace_id)
    actor = f"key {principal.key_id} ({principal.role.value})"
    _apply(workspace, changes, actor)
    await session.commit()
    return workspace


def _apply(workspace: Workspace, changes: dict[str, Any], actor: str) -> None:
    """Set each changed policy field and leave one audit line per change."""
    for name, value in changes.items():
        old = getattr(workspace, name)
        if old == value:
            continue
        setattr(workspace, name, value)
        log.info("workspace %s: %s changed by %s: %r -> %r", workspace.id, name, actor, old, value)


async def new_signing_secret(session: AsyncSession, box: SecretBox, workspace_id: str) -> str:
    """A fresh signing secret, returned once; requests sign with it from the next call on."""
    return await rotate_signing_secret(session, box, await get_workspace(session, workspace_id))
