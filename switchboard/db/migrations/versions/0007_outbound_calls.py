"""Outbound calls: how a call was dialled, who answered, the carrier's error; outbound greetings.

Calls gain ``dial`` (machine detection, voicemail message, ring timeout),
``placed_at`` (set once, by the job that rings the callee, so no call is dialled twice),
``media_offered_at`` (set once, by the answer naming the media socket, so a replayed
answer webhook opens nothing),
``answered_by`` (human, machine_*, unknown) and ``error`` (the carrier's code and
message when placing the call failed). Agents gain ``outbound`` (their greeting on
calls they place, whether the callee speaks first, the voicemail message). The
new ``queued`` call status needs no schema change: statuses are stored as text.

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.add_column(sa.Column("dial", JSON, nullable=True))
        batch_op.add_column(sa.Column("placed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("media_offered_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("answered_by", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("error", JSON, nullable=True))
    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("outbound", JSON, nullable=False, server_default="{}"))


def downgrade() -> None:
    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.drop_column("outbound")
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_column("error")
        batch_op.drop_column("answered_by")
        batch_op.drop_column("media_offered_at")
        batch_op.drop_column("placed_at")
        batch_op.drop_column("dial")
