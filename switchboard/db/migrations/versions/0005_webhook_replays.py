"""Refusing replayed webhooks: one call record per carrier call, and remembered nonces.

Calls become unique per workspace, carrier and carrier call id, so a replayed
inbound webhook cannot create (and open media for) a second call. Signed
webhooks whose signature rests on a nonce (Vobiz) have their nonces kept for
the window in which a replay would be accepted.

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CALL_UNIQUE = "uq_calls_workspace_id_carrier_carrier_call_id"


def upgrade() -> None:
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.create_unique_constraint(
            CALL_UNIQUE, ["workspace_id", "carrier", "carrier_call_id"]
        )
    op.create_table(
        "webhook_nonces",
        sa.Column("scope", sa.String(length=64), nullable=False),
        sa.Column("nonce", sa.String(length=128), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("scope", "nonce", name=op.f("pk_webhook_nonces")),
    )
    with op.batch_alter_table("webhook_nonces", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_webhook_nonces_expires_at"), ["expires_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("webhook_nonces", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhook_nonces_expires_at"))
    op.drop_table("webhook_nonces")
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_constraint(CALL_UNIQUE, type_="unique")
