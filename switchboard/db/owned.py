"""Rows that belong to a workspace: one way to fetch one by id and to page through them.

A row of another workspace is reported as absent (``NotFound``), never as
forbidden, so ids do not leak across tenants.
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard.db.base import Base
from switchboard.errors import NotFound

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
