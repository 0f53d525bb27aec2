"""Webhook-tool policy per workspace; richer tools and flow nodes.

Workspaces gain the private hosts an admin allowed for self-hosted tool
backends and the (encrypted) secret their tool requests are signed with.
Tools gain a wait message said while a slow tool runs. Flow nodes gain
post-actions, ``respond_immediately`` and node tools that may name the node
to go to after the tool succeeds (replacing the bare ``tool_ids``).

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("workspaces", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("allowed_private_hosts", JSON, nullable=False, server_default="[]")
        )
        batch_op.add_column(sa.Column("tool_signing_secret", sa.LargeBinary(), nullable=True))
    with op.batch_alter_table("tools", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("wait_message", sa.String(length=300), nullable=False, server_default="")
        )
    with op.batch_alter_table("flow_nodes", schema=None) as batch_op:
        batch_op.drop_column("tool_ids")
        batch_op.add_column(sa.Column("tools", JSON, nullable=False, server_default="[]"))
        batch_op.add_column(sa.Column("post_actions", JSON, nullable=False, server_default="[]"))
        batch_op.add_column(
            sa.Column("respond_immediately", sa.Boolean(), nullable=False, server_default=sa.true())
        )


def downgrade() -> None:
    with op.batch_alter_table("flow_nodes", schema=None) as batch_op:
        batch_op.drop_column("respond_immediately")
        batch_op.drop_column("post_actions")
        batch_op.drop_column("tools")
        batch_op.add_column(sa.Column("tool_ids", JSON, nullable=False, server_default="[]"))
    with op.batch_alter_table("tools", schema=None) as batch_op:
        batch_op.drop_column("wait_message")
    with op.batch_alter_table("workspaces", schema=None) as batch_op:
        batch_op.drop_column("tool_signing_secret")
        batch_op.drop_column("allowed_private_hosts")
