"""Storing an agent's flow: one row per node, replaced as a whole, tools kept by id.

The document names tools; rows keep their ids, so a renamed tool stays
attached to the flow, and reading maps the ids back to the names an export
carries into another workspace.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard.db.base import new_id
from switchboard.db.models import Agent, FlowNode, Tool
from switchboard.errors import NotFound
from switchboard.flows.schema import (
    FlowDocument,
    FlowNodeOut,
    FlowNodeSpec,
    FlowOut,
    check_references,
)
from switchboard.tools.loading import tool_usable_by

log = logging.getLogger(__name__)

# Node columns that hold the spec's field of the same name, as JSON-ready values.
_SPEC_COLUMNS = (
    "key",
    "role_messages",
    "task_messages",
    "transitions",
    "pre_actions",
    "post_actions",
    "respond_immediately",
    "is_initial",
    "is_terminal",
    "position",
)


@dataclass(frozen=True)
class FlowExport:
    """A flow as a portable file: the document and the name to save it under."""

    filename: str
    document: FlowDocument


async def _agent(
    session: AsyncSession, workspace_id: str, agent_id: str, *, lock: bool = False
) -> Agent:
    """The workspace's agent; ``lock`` makes concurrent flow saves for it wait their turn."""
    query = select(Agent).where(Agent.id == agent_id, Agent.workspace_id == workspace_id)
    if lock:
        query = query.with_for_update()
    agent = await session.scalar(query)
    if agent is None:
        raise NotFound("agent", agent_id)
    return agent


async def _stored_nodes(session: AsyncSession, agent: Agent) -> list[tuple[FlowNode, FlowNodeSpec]]:
    """The agent's node rows, initial first then in the order they were saved, with specs."""
    # Ids are time-ordered and handed out in document order, so they keep that order even
    # when every row of one save has the same timestamp.
    rows = list(
        await session.scalars(
            select(FlowNode)
            .where(FlowNode.agent_id == agent.id)
            .order_by(FlowNode.is_initial.desc(), FlowNode.id)
        )
    )
    wanted = {ref["tool_id"] for row in rows for ref in row.tools}
    names: dict[str, str] = {}
    if wanted:
        found = await session.execute(
            select(Tool.id, Tool.name).where(
                Tool.workspace_id == agent.workspace_id, Tool.id.in_(wanted)
            )
        )
        names = {tool_id: name for tool_id, name in found}
    return [(row, _spec(row, names)) for row in rows]


def _spec(row: FlowNode, tool_names: Mapping[str, str]) -> FlowNodeSpec:
    tools: list[dict[str, Any]] = []
    for ref in row.tools:
        name = tool_names.get(ref["tool_id"])
        if name is None:
            log.warning(
                "flow node %r of agent %s uses tool %s, which no longer exists; left out",
                row.key,
                row.agent_id,
                ref["tool_id"],
            )
            continue
        tools.append({"name": name, "then": ref.get("then")})
    fields = {column: getattr(row, column) for column in _SPEC_COLUMNS}
    return FlowNodeSpec.model_validate({**fields, "tools": tools})


def _document(agent: Agent, specs: list[FlowNodeSpec]) -> FlowDocument:
    try:
        return FlowDocument(nodes=specs)
    except ValidationError as exc:
        # Only a tool that vanished behind the flow's back (taking a "then" edge with it)
        # gets here. Serve the flow as stored: a call still runs it, and the API shows it.
        log.warning("stored flow of agent %s no longer validates: %s", agent.id, exc)
        return FlowDocument.model_construct(nodes=specs)


async def load_flow(session: AsyncSession, agent: Agent) -> FlowDocument | None:
    """The agent's flow as a document, or ``None`` when it runs on its plain prompt."""
    stored = await _stored_nodes(session, agent)
    return _document(agent, [spec for _, spec in stored]) if stored else None


async def get_flow(session: AsyncSession, workspace_id: str, agent_id: str) -> FlowOut:
    """The stored flow with each node's id and last change, for editing."""
    agent = await _agent(session, workspace_id, agent_id)
    stored = await _stored_nodes(session, agent)
    if not stored:
        raise NotFound("flow of agent", agent_id)
    return FlowOut(
        nodes=[
            FlowNodeOut(**spec.model_dump(), id=row.id, updated_at=row.updated_at)
            for row, spec in stored
        ]
    )


async def export_flow(session: AsyncSession, workspace_id: str, agent_id: str) -> FlowExport:
    """The flow as a portable document, named after the agent."""
    agent = await _agent(session, workspace_id, agent_id)
    document = await load_flow(session, agent)
    if document is None:
        raise NotFound("flow of agent", agent_id)
    slug = re.sub(r"[^a-z0-9]+", "-", agent.name.lower()).strip("-") or agent.id
    return FlowExport(filename=f"{slug}.flow.json", document=document)


async def _usable_tool_ids(
    session: AsyncSession, agent: Agent, document: FlowDocument
) -> dict[str, str]:
    """Check the document's tools and departments against the agent; tool ids by name."""
    rows = await session.scalars(select(Tool).where(Tool.workspace_id == agent.workspace_id))
    tool_ids = {tool.name: tool.id for tool in rows if tool_usable_by(tool, agent.id)}
    departments = {str(destination["name"]) for destination in agent.transfer_destinations}
    check_references(document, tool_names=tool_ids, departments=departments)
    return tool_ids


async def check_flow(
    session: AsyncSession, workspace_id: str, agent_id: str, document: FlowDocument
) -> None:
    """Everything saving would check, without saving (raises ``FlowError``)."""
    agent = await _agent(session, workspace_id, agent_id)
    await _usable_tool_ids(session, agent, document)


async def save_flow(
    session: AsyncSession, workspace_id: str, agent_id: str, document: FlowDocument
) -> FlowOut:
    """Replace the agent's flow with ``document`` in one transaction."""
    agent = await _agent(session, workspace_id, agent_id, lock=True)
    tool_ids = await _usable_tool_ids(session, agent, document)
    await session.execute(delete(FlowNode).where(FlowNode.agent_id == agent.id))
    for node in document.nodes:
        session.add(
            FlowNode(
                id=new_id("node"),
                agent_id=agent.id,
                **node.model_dump(mode="json", include=set(_SPEC_COLUMNS)),
                tools=[{"tool_id": tool_ids[t.name], "then": t.then} for t in node.tools],
            )
        )
    await session.commit()
    return await get_flow(session, workspace_id, agent_id)


async def delete_flow(session: AsyncSession, workspace_id: str, agent_id: str) -> None:
    """Remove the agent's flow, so its calls run on the plain prompt again."""
    agent = await _agent(session, workspace_id, agent_id, lock=True)
    if await session.scalar(select(FlowNode.id).where(FlowNode.agent_id == agent.id)) is None:
        raise NotFound("flow of agent", agent_id)
    await session.execute(delete(FlowNode).where(FlowNode.agent_id == agent.id))
    await session.commit()
