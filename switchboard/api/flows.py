"""/api/v1/agents/{agent_id}/flow: an agent's conversation flow, saved, checked, exported."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from switchboard.api.deps import Developer, ServicesDep, SessionDep, Viewer
from switchboard.flows import service
from switchboard.flows.schema import FlowCheck, FlowDocument, FlowOut

router = APIRouter(prefix="/agents/{agent_id}/flow", tags=["flows"])


@router.get("")
async def get_flow(agent_id: str, session: SessionDep, principal: Viewer) -> FlowOut:
    """The agent's flow with each node's id and last change; 404 when it has none."""
    return await service.get_flow(session, principal.workspace_id, agent_id)


@router.put("")
async def put_flow(
    agent_id: str,
    body: FlowDocument,
    session: SessionDep,
    principal: Developer,
    services: ServicesDep,
) -> FlowOut:
    """Replace the whole flow (an exported document imports as it is); calls use it at once."""
    flow = await service.save_flow(session, principal.workspace_id, agent_id, body)
    await services.config_cache.invalidate(agent_id)
    return flow


@router.delete("", status_code=status.HTTP_204_NO_CONTENT)
async def delete_flow(
    agent_id: str, session: SessionDep, principal: Developer, services: ServicesDep
) -> None:
    """Remove the flow; the agent's calls run on its plain prompt again."""
    await service.delete_flow(session, principal.workspace_id, agent_id)
    await services.config_cache.invalidate(agent_id)


@router.get("/export")
async def export_flow(
    agent_id: str, session: SessionDep, principal: Viewer, response: Response
) -> FlowDocument:
    """The portable document: tools by name, no ids, ready for ``PUT`` on another agent."""
    export = await service.export_flow(session, principal.workspace_id, agent_id)
    response.headers["Content-Disposition"] = f'attachment; filename="{export.filename}"'
    return export.document


@router.post("/validate")
async def validate_flow(
    agent_id: str, body: FlowDocument, session: SessionDep, principal: Developer
) -> FlowCheck:
    """A dry run of ``PUT``: the same 422 problem it would give, or ``{"valid": true}``."""
    await service.check_flow(session, principal.workspace_id, agent_id, body)
    return FlowCheck()
