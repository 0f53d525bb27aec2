"""Calls with their events and transcripts; webhook tools and flow nodes.

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "tools",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("parameters", JSON, nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("method", sa.String(length=8), nullable=False),
        sa.Column("headers", JSON, nullable=False),
        sa.Column("secret_headers", sa.LargeBinary(), nullable=True),
        sa.Column("timeout_seconds", sa.Double(), nullable=False),
        sa.Column("retries", sa.Integer(), nullable=False),
        sa.Column("agent_ids", JSON, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_tools_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tools")),
        sa.UniqueConstraint("workspace_id", "name", name=op.f("uq_tools_workspace_id_name")),
    )
    with op.batch_alter_table("tools", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tools_workspace_id"), ["workspace_id"], unique=False)

    op.create_table(
        "calls",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("agent_id", sa.String(length=32), nullable=True),
        sa.Column("agent_version", sa.Integer(), nullable=True),
        sa.Column(
            "direction",
            sa.Enum("inbound", "outbound", name="call_direction", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("carrier", sa.String(length=16), nullable=False),
        sa.Column("carrier_call_id", sa.String(length=64), nullable=True),
        sa.Column("from_number", sa.String(length=32), nullable=False),
        sa.Column("to_number", sa.String(length=32), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "ringing",
                "in_progress",
                "completed",
                "failed",
                "transferred",
                "busy",
                "no_answer",
                "canceled",
                "rejected",
                name="call_status",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("end_reason", sa.String(length=64), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("variables", JSON, nullable=False),
        sa.Column("recording_path", sa.String(length=255), nullable=True),
        sa.Column("usage", JSON, nullable=False),
        sa.Column("latency", JSON, nullable=False),
        sa.Column("analysis", JSON, nullable=True),
        sa.Column("cost_usd", sa.Double(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name=op.f("fk_calls_agent_id_agents"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_calls_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calls")),
    )
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_calls_agent_id"), ["agent_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_calls_carrier_call_id"), ["carrier_call_id"], unique=False
        )
        batch_op.create_index("ix_calls_status", ["status"], unique=False)
        batch_op.create_index(
            "ix_calls_workspace_created", ["workspace_id", "created_at"], unique=False
        )

    op.create_table(
        "flow_nodes",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("agent_id", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("role_messages", JSON, nullable=False),
        sa.Column("task_messages", JSON, nullable=False),
        sa.Column("transitions", JSON, nullable=False),
        sa.Column("tool_ids", JSON, nullable=False),
        sa.Column("pre_actions", JSON, nullable=False),
        sa.Column("is_initial", sa.Boolean(), nullable=False),
        sa.Column("is_terminal", sa.Boolean(), nullable=False),
        sa.Column("position", JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["agents.id"],
            name=op.f("fk_flow_nodes_agent_id_agents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_flow_nodes")),
        sa.UniqueConstraint("agent_id", "key", name=op.f("uq_flow_nodes_agent_id_key")),
    )
    with op.batch_alter_table("flow_nodes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_flow_nodes_agent_id"), ["agent_id"], unique=False)

    op.create_table(
        "call_events",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("call_id", sa.String(length=32), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data", JSON, nullable=False),
        sa.ForeignKeyConstraint(
            ["call_id"], ["calls.id"], name=op.f("fk_call_events_call_id_calls"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_events")),
        sa.UniqueConstraint("call_id", "seq", name=op.f("uq_call_events_call_id_seq")),
    )
    with op.batch_alter_table("call_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_call_events_call_id"), ["call_id"], unique=False)

    op.create_table(
        "transcript_turns",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("call_id", sa.String(length=32), nullable=False),
        sa.Column("index", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("interrupted", sa.Boolean(), nullable=False),
        sa.Column("language", sa.String(length=16), nullable=True),
        sa.ForeignKeyConstraint(
            ["call_id"],
            ["calls.id"],
            name=op.f("fk_transcript_turns_call_id_calls"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transcript_turns")),
        sa.UniqueConstraint("call_id", "index", name=op.f("uq_transcript_turns_call_id_index")),
    )
    with op.batch_alter_table("transcript_turns", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_transcript_turns_call_id"), ["call_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("transcript_turns", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_transcript_turns_call_id"))

    op.drop_table("transcript_turns")
    with op.batch_alter_table("call_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_call_events_call_id"))

    op.drop_table("call_events")
    with op.batch_alter_table("flow_nodes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_flow_nodes_agent_id"))

    op.drop_table("flow_nodes")
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_index("ix_calls_workspace_created")
        batch_op.drop_index("ix_calls_status")
        batch_op.drop_index(batch_op.f("ix_calls_carrier_call_id"))
        batch_op.drop_index(batch_op.f("ix_calls_agent_id"))

    op.drop_table("calls")
    with op.batch_alter_table("tools", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tools_workspace_id"))

    op.drop_table("tools")
