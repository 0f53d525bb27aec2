"""Alembic environment: runs on a connection handed over by ``switchboard.db.migrate``."""

from __future__ import annotations

from alembic import context

import switchboard.db.models  # noqa: F401  (registers every table)
from switchboard.db.base import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only ``switchboard migrate`` drives migrations
    raise RuntimeError("run migrations through `switchboard migrate`")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=True,  # SQLite can only ALTER through table copies
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
