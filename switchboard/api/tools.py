"""/api/v1/tools: webhook tools the workspace's agents may call during a phone call."""

from __future__ import annotations

from fastapi import APIRouter, status
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard.api.deps import Developer, PageDep, ServicesDep, SessionDep, Viewer
from switchboard.api.schemas import ListResponse
from switchboard.services import Services
from switchboard.tools import service
from switchboard.tools.schema import ToolConfig, ToolOut, ToolPatch

router = APIRouter(prefix="/tools", tags=["tools"])


async def _forget_runtime_configs(
    session: AsyncSession, services: Services, workspace_id: str
) -> None:
    """Runtime configs list the tools they may call, so every agent's cached one is stale."""
    for agent_id in await service.workspace_agent_ids(session, workspace_id):
        await services.config_cache.invalidate(agent_id)


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_tool(
    body: ToolConfig, session: SessionDep, principal: Developer, services: ServicesDep
) -> ToolOut:
    """Create a tool; ``secret_headers`` are stored encrypted and never shown again."""
    tool = await service.create_tool(session, services.box, principal.workspace_id, body)
    await _forget_runtime_configs(session, services, principal.workspace_id)
    return service.tool_out(tool, services.box)


@router.get("")
async def list_tools(
    session: SessionDep, principal: Viewer, page: PageDep, services: ServicesDep
) -> ListResponse[ToolOut]:
    tools = await service.list_tools(
        session, principal.workspace_id, limit=page.limit, after=page.after
    )
    return ListResponse.page(
        [service.tool_out(t, services.box) for t in tools],
        page.limit,
        tools[-1].id if tools else None,
    )


@router.get("/{tool_id}")
async def get_tool(
    tool_id: str, session: SessionDep, principal: Viewer, services: ServicesDep
) -> ToolOut:
    tool = await service.get_tool(session, principal.workspace_id, tool_id)
    return service.tool_out(tool, services.box)


@router.patch("/{tool_id}")
async def update_tool(
    tool_id: str, body: ToolPatch, session: SessionDep, principal: Developer, services: ServicesDep
) -> ToolOut:
    """Change some fields; ``secret_headers``, when sent, replaces the whole set.

    Moving a tool with stored secret headers to another host, without sending new ones,
    needs an admin: the stored secrets would follow the URL.
    """
    tool = await service.update_tool(session, services.box, principal, tool_id, body)
    await _forget_runtime_configs(session, services, principal.workspace_id)
    return service.tool_out(tool, services.box)


@router.delete("/{tool_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_tool(
    tool_id: str, session: SessionDep, principal: Developer, services: ServicesDep
) -> None:
    """Delete a tool no agent or flow node uses (409 names the ones that still do)."""
    await service.delete_tool(session, principal.workspace_id, tool_id)
    await _forget_runtime_configs(session, services, principal.workspace_id)
