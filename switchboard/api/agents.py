"""/api/v1/agents: configuration, version history and the runtime config a call uses."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from switchboard.agents import service
from switchboard.agents.schema import (
    AgentConfig,
    AgentOut,
    AgentPatch,
    AgentVersionOut,
    RuntimeConfig,
)
from switchboard.api.deps import Developer, PageDep, ServicesDep, SessionDep, Viewer
from switchboard.api.schemas import ListResponse
from switchboard.config import Environment
from switchboard.db.models import Agent
from switchboard.services import Services

router = APIRouter(prefix="/agents", tags=["agents"])


def agent_out(agent: Agent) -> AgentOut:
    return AgentOut(
        **service.config_of(agent).model_dump(),
        id=agent.id,
        version=agent.version,
        created_at=agent.created_at,
        updated_at=agent.updated_at,
    )


def testing_allowed(services: Services) -> bool:
    """Test-only providers (the fakes) may be chosen everywhere but in production."""
    return services.settings.environment is not Environment.PRODUCTION


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_agent(
    body: AgentConfig, session: SessionDep, principal: Developer, services: ServicesDep
) -> AgentOut:
    """Create an agent; provider settings left out take the embedded defaults.

    A ``base_url`` for a provider the workspace holds credentials for needs an admin.
    """
    agent = await service.create_agent(
        session, principal, body, allow_testing=testing_allowed(services)
    )
    return agent_out(agent)


@router.get("")
async def list_agents(
    session: SessionDep, principal: Viewer, page: PageDep
) -> ListResponse[AgentOut]:
    agents = await service.list_agents(
        session, principal.workspace_id, limit=page.limit, after=page.after
    )
    return ListResponse.page(
        [agent_out(a) for a in agents], page.limit, agents[-1].id if agents else None
    )


@router.get("/{agent_id}")
async def get_agent(agent_id: str, session: SessionDep, principal: Viewer) -> AgentOut:
    return agent_out(await service.get_agent(session, principal.workspace_id, agent_id))


@router.patch("/{agent_id}")
async def update_agent(
    agent_id: str,
    body: AgentPatch,
    session: SessionDep,
    principal: Developer,
    services: ServicesDep,
) -> AgentOut:
    """Change some fields; a real change makes a new version.

    Pointing a provider the workspace holds credentials for at a new host needs an admin.
    """
    agent = await service.update_agent(
        session, principal, agent_id, body, allow_testing=testing_allowed(services)
    )
    await services.config_cache.invalidate(agent_id)
    return agent_out(agent)


@router.delete("/{agent_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_agent(
    agent_id: str, session: SessionDep, principal: Developer, services: ServicesDep
) -> None:
    await service.delete_agent(session, principal, agent_id)
    await services.config_cache.invalidate(agent_id)


@router.get("/{agent_id}/versions")
async def list_versions(
    agent_id: str, session: SessionDep, principal: Viewer
) -> list[AgentVersionOut]:
    rows = await service.list_versions(session, principal.workspace_id, agent_id)
    return [
        AgentVersionOut(
            version=r.version,
            changed_fields=r.changed_fields,
            created_by=r.created_by,
            created_at=r.created_at,
            config=AgentConfig.model_validate(r.config),
        )
        for r in rows
    ]


@router.post("/{agent_id}/versions/{version}/restore")
async def restore_version(
    agent_id: str, version: int, session: SessionDep, principal: Developer, services: ServicesDep
) -> AgentOut:
    """Make an old version current again (recorded as a new version), checked as a change."""
    agent = await service.restore_version(
        session, principal, agent_id, version, allow_testing=testing_allowed(services)
    )
    await services.config_cache.invalidate(agent_id)
    return agent_out(agent)


@router.get("/{agent_id}/runtime-config")
async def runtime_config(
    agent_id: str, principal: Viewer, services: ServicesDep, response: Response
) -> RuntimeConfig:
    """The resolved config a call runs with; ``X-Config-Source`` says where it came from."""
    config, source = await services.config_cache.get(principal.workspace_id, agent_id)
    response.headers["X-Config-Source"] = source.value
    return config
