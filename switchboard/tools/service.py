"""Creating, changing and deleting webhook tools, and a workspace's tool policy.

Secret header values are sealed with the workspace's :class:`SecretBox` the
moment they arrive and opened only to re-check a merged update; responses
carry their names alone. A tool that an agent or a flow node still uses
cannot be deleted, so a call never finds a reference to nothing.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard.crypto import SecretBox
from switchboard.db.models import Agent, FlowNode, Tool, Workspace
from switchboard.db.owned import get_owned, page_owned
from switchboard.errors import Conflict, InvalidInput, NotFound
from switchboard.tools.loading import rotate_signing_secret
from switchboard.tools.schema import ToolConfig, ToolOut, ToolPatch

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


async def update_tool(
    session: AsyncSession, box: SecretBox, workspace_id: str, tool_id: str, patch: ToolPatch
) -> Tool:
    """Apply the fields sent and check the result as a whole (old secrets included)."""
    tool = await get_tool(session, workspace_id, tool_id)
    current: dict[str, Any] = {name: getattr(tool, name) for name in ToolConfig.model_fields}
    current["secret_headers"] = box.open(tool.secret_headers)
    config = ToolConfig.model_validate({**current, **patch.model_dump(exclude_unset=True)})
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


async def set_allowed_private_hosts(
    session: AsyncSession, workspace_id: str, hosts: list[str]
) -> Workspace:
    """Replace the hosts webhook tools may reach on private addresses (checked per call)."""
    workspace = await get_workspace(session, workspace_id)
    workspace.allowed_private_hosts = hosts
    await session.commit()
    return workspace


async def new_signing_secret(session: AsyncSession, box: SecretBox, workspace_id: str) -> str:
    """A fresh signing secret, returned once; requests sign with it from the next call on."""
    return await rotate_signing_secret(session, box, await get_workspace(session, workspace_id))
