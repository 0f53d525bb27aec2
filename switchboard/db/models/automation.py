"""Webhook tools and conversation-flow nodes."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ForeignKey, LargeBinary, String, Text, UniqueConstraint, true
from sqlalchemy.orm import Mapped, mapped_column

from switchboard.db.base import ID_LENGTH, Base, TimestampMixin, id_column
from switchboard.db.types import JSONType


class Tool(TimestampMixin, Base):
    """A webhook the LLM may call; secret header values are Fernet-encrypted."""

    __tablename__ = "tools"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    id: Mapped[str] = id_column("tool")
    workspace_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text, default="")
    parameters: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    url: Mapped[str] = mapped_column(String(2048))
    method: Mapped[str] = mapped_column(String(8), default="POST")
    headers: Mapped[dict[str, str]] = mapped_column(JSONType, default=dict)
    secret_headers: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    timeout_seconds: Mapped[float] = mapped_column(default=5.0)
    retries: Mapped[int] = mapped_column(default=0)
    agent_ids: Mapped[list[str] | None] = mapped_column(JSONType, default=None)
    # Said to the caller while a slow call to this tool runs ("" says nothing).
    wait_message: Mapped[str] = mapped_column(String(300), default="", server_default="")


class FlowNode(TimestampMixin, Base):
    """One step of an agent's conversation flow (``pipecat.flows`` node config)."""

    __tablename__ = "flow_nodes"
    __table_args__ = (UniqueConstraint("agent_id", "key"),)

    id: Mapped[str] = id_column("node")
    agent_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("agents.id", ondelete="CASCADE"), index=True
    )
    key: Mapped[str] = mapped_column(String(64))
    role_messages: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    task_messages: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    transitions: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    # [{"tool_id": ..., "then": node key or None}]: webhook tools offered at this node.
    tools: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list, server_default="[]")
    pre_actions: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    post_actions: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONType, default=list, server_default="[]"
    )
    respond_immediately: Mapped[bool] = mapped_column(default=True, server_default=true())
    is_initial: Mapped[bool] = mapped_column(default=False)
    is_terminal: Mapped[bool] = mapped_column(default=False)
    position: Mapped[dict[str, float]] = mapped_column(JSONType, default=dict)
