"""What an empty data dir starts with: the default workspace, a demo agent and its number."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard.agents.schema import AgentConfig
from switchboard.agents.service import create_agent
from switchboard.auth.service import Principal, create_api_key, get_or_create_workspace
from switchboard.crypto import SecretBox
from switchboard.db.models import PhoneNumber, Role, Workspace
from switchboard.demo.dental import DENTAL_NUMBER, seed_dental
from switchboard.telephony.credentials import CarrierName

DEFAULT_WORKSPACE = "default"
DEMO_NUMBER = "+15550100"

DEMO_AGENT = AgentConfig(
    name="Demo receptionist",
    description="Answers the simulator number; edit it or make your own.",
    system_prompt=(
        "You are the friendly phone receptionist of Switchboard Dental. Answer in one or two short "
        "sentences. Opening hours are Monday to Friday, 9am to 5pm. You can book appointments, "
        "answer questions about opening hours and prices, and transfer callers to sales or billing."
    ),
    greeting="Hello, thanks for calling Switchboard Dental. How can I help you today?",
    transfer_destinations=[],
)


@dataclass
class SeedResult:
    workspace_id: str
    owner_key: str
    agent_id: str | None = None  # the demo agents, in development
    dental_agent_id: str | None = None


async def seed_if_empty(
    session: AsyncSession, box: SecretBox, public_url: str, *, demo: bool = True
) -> SeedResult | None:
    """Create the first workspace and owner key on a database with no workspace; do
    nothing otherwise.

    With ``demo`` (development), two agents on simulator numbers too: the demo
    receptionist on ``DEMO_NUMBER`` (a plain prompt) and the dental receptionist flow
    on ``DENTAL_NUMBER`` (steps, a webhook tool, transfers).
    """
    if await session.scalar(select(Workspace.id).limit(1)) is not None:
        return None
    workspace, _ = await get_or_create_workspace(session, DEFAULT_WORKSPACE)
    key, plaintext = await create_api_key(
        session, workspace.id, Role.OWNER, "created at first start"
    )
    await session.commit()
    if not demo:
        return SeedResult(workspace_id=workspace.id, owner_key=plaintext)
    principal = Principal(workspace_id=workspace.id, key_id=key.id, role=Role.OWNER)
    agent = await create_agent(session, principal, DEMO_AGENT, allow_testing=False)
    dental_id = await seed_dental(session, box, principal, public_url)
    for number, agent_id in ((DEMO_NUMBER, agent.id), (DENTAL_NUMBER, dental_id)):
        session.add(
            PhoneNumber(
                workspace_id=workspace.id,
                number=number,
                carrier=CarrierName.SIMULATOR.value,
                label="simulator (switchboard call)",
                agent_id=agent_id,
            )
        )
    await session.commit()
    return SeedResult(
        workspace_id=workspace.id, agent_id=agent.id, dental_agent_id=dental_id, owner_key=plaintext
    )
