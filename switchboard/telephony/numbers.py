"""Phone numbers: which agent answers which dialled number."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard.db.models import Agent, PhoneNumber
from switchboard.db.owned import get_owned, page_owned
from switchboard.errors import Conflict, InvalidInput


async def get_number(session: AsyncSession, workspace_id: str, number_id: str) -> PhoneNumber:
    return await get_owned(session, PhoneNumber, workspace_id, number_id, "phone number")


async def list_numbers(
    session: AsyncSession, workspace_id: str, *, limit: int, after: str | None
) -> list[PhoneNumber]:
    return await page_owned(session, PhoneNumber, workspace_id, limit=limit, after=after)


async def find_by_number(session: AsyncSession, number: str) -> PhoneNumber | None:
    """Inbound routing: the dialled number alone decides the workspace and agent."""
    return await session.scalar(select(PhoneNumber).where(PhoneNumber.number == number))


async def _check_agent(session: AsyncSession, workspace_id: str, agent_id: str | None) -> None:
    if agent_id is None:
        return
    found = await session.scalar(
        select(Agent.id).where(Agent.id == agent_id, Agent.workspace_id == workspace_id)
    )
    if found is None:
        raise InvalidInput(f"agent {agent_id!r} not found", field="agent_id")


async def save_number(session: AsyncSession, row: PhoneNumber) -> PhoneNumber:
    """Insert or update ``row`` after checking its agent belongs to the same workspace."""
    await _check_agent(session, row.workspace_id, row.agent_id)
    session.add(row)
    try:
        await session.commit()
    except IntegrityError as exc:
        await session.rollback()
        raise Conflict(f"{row.number} is already registered", field="number") from exc
    return row


async def delete_number(session: AsyncSession, workspace_id: str, number_id: str) -> None:
    row = await get_number(session, workspace_id, number_id)
    await session.delete(row)
    await session.commit()
