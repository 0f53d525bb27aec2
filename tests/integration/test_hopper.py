"""The hopper's tick against a real database (SQLite and PostgreSQL), its job runner not
started so each tick is the test's: claims and jobs are made once, a crash between claim
and call is repaired with the same call, a campaign that can no longer dial pauses and
gives its prospects back, and ticks never overlap."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text, update

from switchboard.agents.schema import AgentConfig
from switchboard.agents.service import create_agent
from switchboard.auth.service import Principal, get_or_create_workspace
from switchboard.config import Settings
from switchboard.db.base import new_id, utcnow
from switchboard.db.engine import is_sqlite
from switchboard.db.models import (
    Agent,
    Call,
    CallStatus,
    Campaign,
    CampaignStatus,
    Job,
    PhoneNumber,
    Prospect,
    ProspectState,
    Role,
)
from switchboard.dialer import hopper
from switchboard.dialer.campaigns import CampaignIn, create_campaign
from switchboard.services import Services

ALL_DAY = {
    "weekly": {
        day: [{"start": "00:00", "end": "24:00"}]
        for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    }
}


@pytest.fixture
async def services(settings: Settings) -> AsyncIterator[Services]:
    opened = await Services.open(settings)
    try:
        yield opened
    finally:
        await opened.close()


async def campaign_with(services: Services, prospects: int, **fields: object) -> Campaign:
    async with services.sessions() as session:
        workspace, _ = await get_or_create_workspace(session, "hopper")
        principal = Principal(workspace_id=workspace.id, key_id="test", role=Role.OWNER)
        config = AgentConfig.model_validate(
            {
                "name": "dialler",
                "system_prompt": "Be brief.",
                "stt": {"provider": "fake"},
                "llm": {"provider": "fake"},
                "tts": {"provider": "fake"},
            }
        )
        agent = await create_agent(session, principal, config, allow_testing=True)
        session.add(
            PhoneNumber(
                workspace_id=workspace.id,
                number="+15550170",
                carrier="simulator",
                agent_id=agent.id,
            )
        )
        await session.commit()
        body = {
            "agent_id": agent.id,
            "name": "tick",
            "hours": ALL_DAY,
            "default_timezone": "Europe/London",
            "machine_detection": "off",
            **fields,
        }
        campaign = await create_campaign(
            session, workspace.id, CampaignIn.model_validate(body), simulator_enabled=True
        )
        now = utcnow()
        session.add_all(
            Prospect(
                campaign_id=campaign.id,
                phone=f"+447700900{n:03d}",
                timezones=["Europe/London"],
                priority=n,
                next_due_at=now - timedelta(seconds=1),
            )
            for n in range(prospects)
        )
        await session.commit()
        return campaign


async def prospects_of(services: Services, campaign: Campaign) -> list[Prospect]:
    async with services.sessions() as session:
        found = await session.scalars(
            select(Prospect).where(Prospect.campaign_id == campaign.id).order_by(Prospect.phone)
        )
        return list(found)


async def dial_jobs(services: Services, campaign: Campaign) -> list[Job]:
    async with services.sessions() as session:
        found = await session.scalars(select(Job).where(Job.id.like(f"dial:{campaign.id}:%")))
        return list(found)


async def test_a_tick_dials_the_highest_priority_up_to_its_pace_and_a_second_adds_nothing(
    services: Services,
) -> None:
    campaign = await campaign_with(services, 5, calls_per_second=2, max_concurrent=3)
    now = utcnow()

    assert await hopper.tick(services, services.jobs, now)
    assert await hopper.tick(services, services.jobs, now)  # same instant: the bucket is spent

    prospects = await prospects_of(services, campaign)
    dialing = [p for p in prospects if p.state is ProspectState.DIALING]
    assert [p.phone for p in dialing] == ["+447700900003", "+447700900004"]  # priorities 3, 4
    assert all(p.attempts == 1 and p.call_id for p in dialing)
    jobs = await dial_jobs(services, campaign)
    assert sorted(j.id for j in jobs) == sorted(
        hopper.dial_job_id(campaign.id, p.id, 1) for p in dialing
    )
    async with services.sessions() as session:
        calls = list(await session.scalars(select(Call).where(Call.campaign_id == campaign.id)))
    assert sorted(c.id for c in calls) == sorted(p.call_id for p in dialing if p.call_id)
    assert {c.status for c in calls} == {CallStatus.QUEUED}

    await hopper.tick(services, services.jobs, now + timedelta(seconds=1))
    prospects = await prospects_of(services, campaign)
    assert sum(p.state is ProspectState.DIALING for p in prospects) == 3  # max_concurrent


async def test_a_claim_whose_call_was_never_recorded_gets_that_very_call(
    services: Services,
) -> None:
    campaign = await campaign_with(services, 1)
    (prospect,) = await prospects_of(services, campaign)
    call_id = new_id("call")
    async with services.sessions() as session:  # claimed, then the process died
        await session.execute(
            update(Prospect)
            .where(Prospect.id == prospect.id)
            .values(state=ProspectState.DIALING, attempts=1, call_id=call_id)
        )
        await session.commit()

    await hopper.tick(services, services.jobs, utcnow())
    await hopper.tick(services, services.jobs, utcnow())

    async with services.sessions() as session:
        calls = list(await session.scalars(select(Call).where(Call.campaign_id == campaign.id)))
    assert [c.id for c in calls] == [call_id]
    assert [j.id for j in await dial_jobs(services, campaign)] == [
        hopper.dial_job_id(campaign.id, prospect.id, 1)
    ]


async def test_a_campaign_whose_agent_was_deactivated_pauses_and_gives_its_claims_back(
    services: Services,
) -> None:
    campaign = await campaign_with(services, 2)
    async with services.sessions() as session:
        await session.execute(
            update(Agent).where(Agent.id == campaign.agent_id).values(active=False)
        )
        await session.commit()

    await hopper.tick(services, services.jobs, utcnow())

    async with services.sessions() as session:
        paused = await session.get(Campaign, campaign.id)
        calls = await session.scalar(
            select(func.count()).select_from(Call).where(Call.campaign_id == campaign.id)
        )
    assert paused is not None and paused.status is CampaignStatus.PAUSED
    assert paused.last_error == "the agent is not active"
    assert calls == 0 and await dial_jobs(services, campaign) == []
    for prospect in await prospects_of(services, campaign):
        assert (prospect.state, prospect.attempts, prospect.call_id) == (
            ProspectState.PENDING,
            0,
            None,
        )


async def test_ticks_never_overlap(services: Services) -> None:
    campaign = await campaign_with(services, 1)
    if is_sqlite(services.settings.resolved_database_url):
        async with hopper._process_lock:
            assert not await hopper.tick(services, services.jobs, utcnow())
    else:
        async with services.sessions() as session, session.begin():  # another worker's tick
            await session.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": hopper._LOCK_KEY}
            )
            assert not await hopper.tick(services, services.jobs, utcnow())
    assert await dial_jobs(services, campaign) == []
    assert await hopper.tick(services, services.jobs, utcnow())
    assert len(await dial_jobs(services, campaign)) == 1
