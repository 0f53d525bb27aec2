"""Agents and the history of their configuration.

The agent row holds the current configuration in typed columns (for listing
and filtering) plus JSON documents for the nested parts; their shape is owned
by ``switchboard.agents.schema``. Every change writes an ``AgentVersion``
snapshot, so a call records exactly which configuration it ran with.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from switchboard.db.base import ID_LENGTH, Base, TimestampMixin, id_column
from switchboard.db.types import JSONType


class Agent(TimestampMixin, Base):
    __tablename__ = "agents"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    id: Mapped[str] = id_column("agt")
    workspace_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text, default="")
    system_prompt: Mapped[str] = mapped_column(Text)
    greeting: Mapped[str] = mapped_column(Text, default="")
    language: Mapped[str] = mapped_column(String(16), default="en")
    supported_languages: Mapped[list[str]] = mapped_column(JSONType, default=list)
    stt: Mapped[dict[str, Any]] = mapped_column(JSONType)
    llm: Mapped[dict[str, Any]] = mapped_column(JSONType)
    tts: Mapped[dict[str, Any]] = mapped_column(JSONType)
    fallbacks: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    pipeline: Mapped[dict[str, Any]] = mapped_column(JSONType)
    business_hours: Mapped[dict[str, Any] | None] = mapped_column(JSONType, default=None)
    transfer_destinations: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    outbound: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    variables: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    pre_call_tool_ids: Mapped[list[str]] = mapped_column(JSONType, default=list)
    tool_ids: Mapped[list[str]] = mapped_column(JSONType, default=list)
    analysis_schema: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    recording_enabled: Mapped[bool] = mapped_column(default=True)
    redact_pii: Mapped[bool] = mapped_column(default=True)
    active: Mapped[bool] = mapped_column(default=True)
    version: Mapped[int] = mapped_column(default=1)


class AgentVersion(TimestampMixin, Base):
    """A frozen copy of an agent's configuration as it was after one change."""

    __tablename__ = "agent_versions"
    __table_args__ = (UniqueConstraint("agent_id", "version"),)

    id: Mapped[str] = id_column("agv")
    agent_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("agents.id", ondelete="CASCADE"), index=True
    )
    version: Mapped[int]
    config: Mapped[dict[str, Any]] = mapped_column(JSONType)
    changed_fields: Mapped[list[str]] = mapped_column(JSONType, default=list)
    created_by: Mapped[str | None] = mapped_column(String(ID_LENGTH), default=None)
