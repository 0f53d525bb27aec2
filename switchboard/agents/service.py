"""Creating, changing and reading agents, always inside one workspace.

Each change bumps the agent's version and stores a snapshot, so the
history shows who changed what, and any version can be restored. Pointing a
provider the workspace holds a key for at a new host would send that key
there, so that change (by create, patch or restore) is an admin's.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard.agents.schema import AgentConfig, RuntimeConfig, ToolSpec
from switchboard.auth.roles import role_at_least
from switchboard.auth.service import Principal
from switchboard.db.base import new_id
from switchboard.db.models import Agent, AgentVersion, Role, Tool, Workspace
from switchboard.db.owned import get_owned, page_owned
from switchboard.errors import Conflict, Forbidden, InvalidInput, NotFound
from switchboard.flows.service import load_flow
from switchboard.providers.credentials import configured_providers
from switchboard.providers.endpoints import check_endpoint_literals, provider_endpoints
from switchboard.providers.validation import resolve_providers
from switchboard.tools.addresses import url_host

CONFIG_FIELDS = tuple(AgentConfig.model_fields)


def config_of(agent: Agent) -> AgentConfig:
    return AgentConfig.model_validate({name: getattr(agent, name) for name in CONFIG_FIELDS})


async def get_agent(session: AsyncSession, workspace_id: str, agent_id: str) -> Agent:
    return await get_owned(session, Agent, workspace_id, agent_id, "agent")


async def list_agents(
    session: AsyncSession, workspace_id: str, *, limit: int, after: str | None
) -> list[Agent]:
    return await page_owned(session, Agent, workspace_id, limit=limit, after=after)


async def _check_tool_ids(session: AsyncSession, workspace_id: str, config: AgentConfig) -> None:
    for field in ("tool_ids", "pre_call_tool_ids"):
        wanted = set(getattr(config, field))
        if not wanted:
            continue
        found = set(
            await session.scalars(
                select(Tool.id).where(Tool.workspace_id == workspace_id, Tool.id.in_(wanted))
            )
        )
        if missing := sorted(wanted - found):
            raise InvalidInput(f"unknown tool id(s): {', '.join(missing)}", field=field)


async def _checked(
    session: AsyncSession,
    principal: Principal,
    config: AgentConfig,
    before: AgentConfig | None,
    *,
    allow_testing: bool,
) -> AgentConfig:
    """Check what the schema cannot see and fill in provider defaults.

    Tools and providers must exist, endpoints must obey the workspace's address
    policy, and only an admin sends stored keys to a new host. ``before`` is the
    current config, None for a new agent.
    """
    workspace_id = principal.workspace_id
    await _check_tool_ids(session, workspace_id, config)
    configured = await configured_providers(session, workspace_id)
    config = resolve_providers(config, configured, allow_testing=allow_testing)
    allowed = await session.scalar(
        select(Workspace.allowed_private_hosts).where(Workspace.id == workspace_id)
    )
    check_endpoint_literals(config, allowed or [])
    _check_keys_stay(principal, config, before, configured)
    return config


def _check_keys_stay(
    principal: Principal, config: AgentConfig, before: AgentConfig | None, configured: set[str]
) -> None:
    """A developer may not give a provider with stored keys a host it did not have before."""
    if role_at_least(principal.role, Role.ADMIN):
        return
    known: set[tuple[str, str]] = set()
    if before is not None:
        known = {(provider, url_host(url)) for _, provider, url in provider_endpoints(before)}
    for field, provider, url in provider_endpoints(config):
        if provider in configured and (provider, url_host(url)) not in known:
            raise Forbidden(
                f"the workspace's stored {provider} credentials would be sent to"
                f" {url_host(url)}: only an admin may point {provider} at a new host",
                field=field,
            )


async def _check_flow_departments(session: AsyncSession, agent: Agent, config: AgentConfig) -> None:
    """A flow's transfer actions must keep a destination to transfer to."""
    flow = await load_flow(session, agent)
    if flow is None:
        return
    missing = sorted(flow.departments() - {d.name for d in config.transfer_destinations})
    if missing:
        raise InvalidInput(
            f"the agent's flow transfers to {missing}; change the flow before removing them",
            field="transfer_destinations",
        )


async def _save(
    session: AsyncSession,
    agent: Agent,
    config: AgentConfig,
    principal: Principal,
    changed: list[str],
) -> Agent:
    for name, value in config.model_dump(mode="json").items():
        setattr(agent, name, value)
    session.add(agent)
    session.add(
        AgentVersion(
            agent_id=agent.id,
            version=agent.version,
            config=config.model_dump(mode="json"),
            changed_fields=changed,
            created_by=principal.key_id,
        )
    )
    try:
        await session.commit()
    except IntegrityError as exc:
        await session.rollback()
        raise Conflict(f"an agent named {config.name!r} already exists", field="name") from exc
    return agent


async def create_agent(
    session: AsyncSession, principal: Principal, config: AgentConfig, *, allow_testing: bool
) -> Agent:
    """Store a new agent; ``allow_testing=False`` (production) refuses the fake providers."""
    agent = Agent(id=new_id("agt"), workspace_id=principal.workspace_id, version=1)
    config = await _checked(session, principal, config, None, allow_testing=allow_testing)
    return await _save(session, agent, config, principal, changed=list(CONFIG_FIELDS))


async def update_agent(
    session: AsyncSession,
    principal: Principal,
    agent_id: str,
    patch: BaseModel,
    *,
    allow_testing: bool,
) -> Agent:
    agent = await get_agent(session, principal.workspace_id, agent_id)
    changes: dict[str, Any] = patch.model_dump(exclude_unset=True)
    before = config_of(agent)
    current = before.model_dump()
    config = AgentConfig.model_validate({**current, **changes})
    config = await _checked(session, principal, config, before, allow_testing=allow_testing)
    await _check_flow_departments(session, agent, config)
    new = config.model_dump()
    changed = sorted(name for name in changes if current.get(name) != new.get(name))
    if not changed:
        return agent
    agent.version += 1
    return await _save(session, agent, config, principal, changed=changed)


async def delete_agent(session: AsyncSession, principal: Principal, agent_id: str) -> None:
    agent = await get_agent(session, principal.workspace_id, agent_id)
    await session.delete(agent)
    await session.commit()


async def list_versions(
    session: AsyncSession, workspace_id: str, agent_id: str
) -> list[AgentVersion]:
    await get_agent(session, workspace_id, agent_id)
    rows = await session.scalars(
        select(AgentVersion)
        .where(AgentVersion.agent_id == agent_id)
        .order_by(AgentVersion.version.desc())
    )
    return list(rows)


async def restore_version(
    session: AsyncSession,
    principal: Principal,
    agent_id: str,
    version: int,
    *,
    allow_testing: bool,
) -> Agent:
    """Make an old version current again, as a new version (history is never rewritten)."""
    agent = await get_agent(session, principal.workspace_id, agent_id)
    snapshot = await session.scalar(
        select(AgentVersion).where(
            AgentVersion.agent_id == agent_id, AgentVersion.version == version
        )
    )
    if snapshot is None:
        raise NotFound("agent version", str(version))
    config = await _checked(
        session,
        principal,
        AgentConfig.model_validate(snapshot.config),
        config_of(agent),
        allow_testing=allow_testing,
    )
    await _check_flow_departments(session, agent, config)
    agent.version += 1
    return await _save(session, agent, config, principal, changed=[f"restored:{version}"])


async def load_runtime_config(
    session: AsyncSession, workspace_id: str, agent_id: str
) -> RuntimeConfig:
    """Resolve an agent for a call: its configuration, the tools it may use and its flow."""
    agent = await get_agent(session, workspace_id, agent_id)
    config = config_of(agent)
    wanted = set(config.tool_ids) | set(config.pre_call_tool_ids)
    tools = {
        tool.id: ToolSpec(
            id=tool.id, name=tool.name, description=tool.description, parameters=tool.parameters
        )
        for tool in await session.scalars(
            select(Tool).where(Tool.workspace_id == workspace_id, Tool.id.in_(wanted))
        )
    }
    return RuntimeConfig(
        agent_id=agent.id,
        workspace_id=workspace_id,
        version=agent.version,
        config=config,
        tools=[tools[i] for i in config.tool_ids if i in tools],
        pre_call_tools=[tools[i] for i in config.pre_call_tool_ids if i in tools],
        flow=await load_flow(session, agent),
    )
