"""Rows that belong to a workspace: one way to fetch one by id, to page through them, and to
move one that has a status (a batch, a campaign) from one status to another.

A row of another workspace is reported as absent (``NotFound``), never as
forbidden, so ids do not leak across tenants.
"""

from __future__ import annotations

from enum import Enum
from typing import Any, TypeVar

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard.db.base import Base, utcnow
from switchboard.errors import Conflict, NotFound

Row = TypeVar("Row", bound=Base)


async def get_owned(
    session: AsyncSession, model: type[Row], workspace_id: str, row_id: str, what: str
) -> Row:
    """The ``model`` row ``row_id`` of ``workspace_id``; ``NotFound`` naming ``what`` if none."""
    columns: Any = model  # every owned model has ``id`` and ``workspace_id``
    row = await session.scalar(
        select(model).where(columns.id == row_id, columns.workspace_id == workspace_id)
    )
    if row is None:
        raise NotFound(what, row_id)
    return row


async def page_owned(
    session: AsyncSession, model: type[Row], workspace_id: str, *, limit: int, after: str | None
) -> list[Row]:
    """Up to ``limit`` rows of ``workspace_id`` in id order, after the id ``after``."""
    columns: Any = model
    query = select(model).where(columns.workspace_id == workspace_id)
    if after:
        query = query.where(columns.id > after)
    return list(await session.scalars(query.order_by(columns.id).limit(limit)))


async def move_owned(
    session: AsyncSession,
    model: type[Row],
    workspace_id: str,
    row_id: str,
    what: str,
    new: Enum,
    allowed_from: set[Any],
    **values: Any,
) -> Row:
    """Move the row's ``status`` to ``new`` (a no-op if it is there already) from one of
    ``allowed_from``, with ``values``; a ``Conflict`` naming ``status`` otherwise, or when
    another request moved it at the same moment (the UPDATE is conditional on the status)."""
    row = await get_owned(session, model, workspace_id, row_id, what)
    columns: Any = model  # a model with ``status`` and ``updated_at``
    stateful: Any = row
    current = stateful.status
    if current is new:
        return row
    if current not in allowed_from:
        raise Conflict(f"the {what} is {current.value}", field="status")
    result = await session.execute(
        update(model)
        .where(columns.id == row_id, columns.status == current)
        .values(status=new, updated_at=utcnow(), **values)
    )
    await session.commit()
    if not result.rowcount:  # type: ignore[attr-defined]
        raise Conflict(f"the {what} changed at the same time; try again", field="status")
    await session.refresh(row)
    return row
