"""Campaigns: prospects called over days at lawful local hours, and the do-not-call list.

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "dnc_entries",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("scope", sa.String(length=32), nullable=False),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=300), nullable=False),
        sa.Column("call_id", sa.String(length=32), nullable=True),
        sa.Column("created_at", WHEN, nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_dnc_entries_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dnc_entries")),
        sa.UniqueConstraint(
            "workspace_id",
            "scope",
            "number",
            name=op.f("uq_dnc_entries_workspace_id_scope_number"),
        ),
    )
    op.create_index("ix_dnc_entries_lookup", "dnc_entries", ["workspace_id", "number"])
    op.create_table(
        "campaigns",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("agent_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("from_numbers", JSON, nullable=False),
        sa.Column("hours", JSON, nullable=False),
        sa.Column("default_timezone", sa.String(length=64), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("min_gap_seconds", sa.Integer(), nullable=False),
        sa.Column("max_concurrent", sa.Integer(), nullable=False),
        sa.Column("calls_per_second", sa.Double(), nullable=False),
        sa.Column("abandon_target", sa.Double(), nullable=False),
        sa.Column("dispositions", JSON, nullable=False),
        sa.Column("dial", JSON, nullable=False),
        sa.Column("pacing", JSON, nullable=False),
        sa.Column("ends_at", WHEN, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("finished_at", WHEN, nullable=True),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["agents.id"],
            name=op.f("fk_campaigns_agent_id_agents"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_campaigns_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaigns")),
    )
    op.create_index(op.f("ix_campaigns_workspace_id"), "campaigns", ["workspace_id"])
    op.create_table(
        "prospects",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("campaign_id", sa.String(length=32), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("timezones", JSON, nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("variables", JSON, nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_due_at", WHEN, nullable=False),
        sa.Column("expires_at", WHEN, nullable=True),
        sa.Column("callback_at", WHEN, nullable=True),
        sa.Column("call_id", sa.String(length=32), nullable=True),
        sa.Column("disposition", sa.String(length=40), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_prospects_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prospects")),
        sa.UniqueConstraint("campaign_id", "phone", name=op.f("uq_prospects_campaign_id_phone")),
    )
    op.create_index(
        "ix_prospects_due",
        "prospects",
        ["campaign_id", "state", sa.text("priority DESC"), "next_due_at"],
    )
    op.create_index("ix_prospects_campaign_id", "prospects", ["campaign_id", "id"])
    op.create_index("ix_prospects_expiry", "prospects", ["campaign_id", "state", "expires_at"])
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.add_column(sa.Column("campaign_id", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("abandoned", sa.Boolean(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_calls_campaign_id_campaigns"),
            "campaigns",
            ["campaign_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch_op.create_index("ix_calls_campaign_answered", ["campaign_id", "answered_at"])


def downgrade() -> None:
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_index("ix_calls_campaign_answered")
        batch_op.drop_constraint(batch_op.f("fk_calls_campaign_id_campaigns"), type_="foreignkey")
        batch_op.drop_column("abandoned")
        batch_op.drop_column("campaign_id")
    op.drop_index("ix_prospects_expiry", table_name="prospects")
    op.drop_index("ix_prospects_campaign_id", table_name="prospects")
    op.drop_index("ix_prospects_due", table_name="prospects")
    op.drop_table("prospects")
    op.drop_index(op.f("ix_campaigns_workspace_id"), table_name="campaigns")
    op.drop_table("campaigns")
    op.drop_index("ix_dnc_entries_lookup", table_name="dnc_entries")
    op.drop_table("dnc_entries")
