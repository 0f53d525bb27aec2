"""The campaign hopper at a million prospects on PostgreSQL, and how fast it dispatches dials.

    .venv/bin/python bench/dialer.py          # a table; bench/results/dialer.json
    .venv/bin/python bench/dialer.py --prospects 100000 --ticks 20     # a quicker look

A fresh database (``--database``, on the PostgreSQL of ``--url``) gets one
campaign with ``--prospects`` prospects spread over the US zones (New York,
Chicago, Denver, Phoenix, Los Angeles, Anchorage, Honolulu), priorities 0-9,
10 % due now and the rest over the next week, and 5 % of the numbers on the
workspace's do-not-call list. Loaded with ``COPY``, then ``ANALYZE``d.

Measured, each over ``--ticks`` ticks of a simulated clock one second apart:

- **selection**: the one query a tick asks (``hopper.select_due``, 50 rows);
- **tick**: a whole ``hopper.tick_campaign`` as the job runs it: it settles the
  calls the previous tick started (ended busy, as a carrier's callback would
  leave them), expires, selects and dials up to 20 (each claimed, its call
  recorded, its placing job enqueued) on the campaign's 1,000,000 rows;
- **dispatch**: a live server (the in-process job runner on the same
  PostgreSQL, the simulator's carrier API, every callee busy at once) running
  a second campaign of ``--dispatch`` prospects, all due, at 50 calls at once
  and 50 per second: dials placed per second, from the calls' ``placed_at``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from rich.console import Console
from rich.table import Table
from sqlalchemy import select, text, update

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from switchboard.agents.schema import AgentConfig
from switchboard.agents.service import create_agent
from switchboard.auth.service import Principal, get_or_create_workspace
from switchboard.config import Settings
from switchboard.db.base import new_id
from switchboard.db.models import (
    Call,
    CallStatus,
    Campaign,
    CampaignStatus,
    PhoneNumber,
    Prospect,
    Role,
)
from switchboard.dialer import hopper
from switchboard.dialer.campaigns import CampaignIn, create_campaign
from switchboard.services import Services

RESULTS = Path(__file__).resolve().parent / "results" / "dialer.json"
ZONES = {
    "212": "America/New_York",
    "312": "America/Chicago",
    "303": "America/Denver",
    "602": "America/Phoenix",
    "213": "America/Los_Angeles",
    "907": "America/Anchorage",
    "808": "Pacific/Honolulu",
}
FROM = "+15550100"
SELECT_ROWS = 50
TICK_DIALS = 20
ALWAYS_OPEN = {
    "weekly": {
        d: [{"start": "00:00", "end": "24:00"}]
        for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    }
}


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


async def fresh_database(url: str, name: str) -> str:
    admin = await asyncpg.connect(url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return url.rsplit("/", 1)[0] + f"/{name}"


async def setup(services: Services) -> tuple[str, str]:
    """A workspace, an agent on a simulator number, and a campaign: their ids."""
    async with services.sessions() as session:
        workspace, _ = await get_or_create_workspace(session, "bench")
        workspace.max_concurrent_calls = 1000
        principal = Principal(workspace_id=workspace.id, key_id="bench", role=Role.OWNER)
        config = AgentConfig.model_validate(
            {
                "name": "dialer bench",
                "system_prompt": "Be brief.",
                "stt": {"provider": "fake"},
                "llm": {"provider": "fake"},
                "tts": {"provider": "fake"},
            }
        )
        agent = await create_agent(session, principal, config, allow_testing=True)
        session.add(
            PhoneNumber(
                workspace_id=workspace.id, number=FROM, carrier="simulator", agent_id=agent.id
            )
        )
        await session.commit()
        campaign = await create_campaign(
            session,
            workspace.id,
            CampaignIn.model_validate(
                {
                    "agent_id": agent.id,
                    "name": "a million",
                    "hours": ALWAYS_OPEN,
                    "max_concurrent": TICK_DIALS,
                    "calls_per_second": TICK_DIALS,
                    "machine_detection": "off",
                }
            ),
            simulator_enabled=True,
        )
        return campaign.id, workspace.id


async def load(
    dsn: str, campaign_id: str, workspace_id: str, now: datetime, count: int, seed: int
) -> dict[str, int]:
    """COPY ``count`` prospects and the do-not-call entries in; ANALYZE."""
    rng = random.Random(seed)
    areas = list(ZONES)
    numbers: set[str] = set()
    while len(numbers) < count:
        numbers.add(f"+1{rng.choice(areas)}{rng.randint(2_000_000, 9_999_999)}")
    ordered = sorted(numbers)
    rng.shuffle(ordered)
    due = listed = 0
    rows = []
    for phone in ordered:
        is_due = rng.random() < 0.10
        due += is_due
        when = (
            now - timedelta(seconds=rng.randint(1, 3600))
            if is_due
            else now + timedelta(seconds=rng.randint(3600, 7 * 86_400))
        )
        rows.append(
            (
                new_id("prs"),
                campaign_id,
                phone,
                "",
                json.dumps([ZONES[phone[2:5]]]),
                rng.randint(0, 9),
                "{}",
                "pending",
                0,
                when,
                None,
                None,
                None,
                None,
                None,
                now,
            )
        )
    dnc = [
        (new_id("dnc"), workspace_id, "workspace", phone, "api", "", None, now)
        for phone in ordered
        if rng.random() < 0.05
    ]
    listed = len(dnc)
    connection = await asyncpg.connect(dsn)
    try:
        await connection.copy_records_to_table(
            "prospects",
            records=rows,
            columns=[
                "id",
                "campaign_id",
                "phone",
                "name",
                "timezones",
                "priority",
                "variables",
                "state",
                "attempts",
                "next_due_at",
                "expires_at",
                "callback_at",
                "call_id",
                "disposition",
                "last_error",
                "updated_at",
            ],
        )
        await connection.copy_records_to_table(
            "dnc_entries",
            records=dnc,
            columns=[
                "id",
                "workspace_id",
                "scope",
                "number",
                "source",
                "reason",
                "call_id",
                "created_at",
            ],
        )
        await connection.execute("ANALYZE prospects; ANALYZE dnc_entries")
    finally:
        await connection.close()
    return {"prospects": count, "due": due, "on_dnc": listed}


async def time_selection(
    services: Services, campaign_id: str, now: datetime, ticks: int
) -> list[float]:
    """Milliseconds of the selection query at each tick."""
    took = []
    for n in range(ticks):
        async with services.sessions() as session:
            started = time.perf_counter()
            rows = await hopper.select_due(
                session, campaign_id, now + timedelta(seconds=n), SELECT_ROWS
            )
            took.append((time.perf_counter() - started) * 1000)
        assert len(rows) == SELECT_ROWS
    return took


async def explain(services: Services, campaign_id: str, now: datetime) -> str:
    async with services.sessions() as session:
        query = (
            select(Prospect.id)
            .where(
                Prospect.campaign_id == campaign_id,
                Prospect.state == "pending",
                Prospect.next_due_at <= now,
            )
            .order_by(Prospect.priority.desc(), Prospect.next_due_at)
            .limit(SELECT_ROWS)
        )
        compiled = query.compile(services.engine, compile_kwargs={"literal_binds": True})
        plan = await session.execute(text(f"EXPLAIN (ANALYZE, BUFFERS) {compiled}"))
        return "\n".join(row[0] for row in plan)


async def end_started_calls(services: Services, campaign_id: str, at: datetime) -> int:
    """What a carrier's callbacks would do to the calls the last tick queued: end them busy."""
    async with services.sessions() as session:
        result = await session.execute(
            update(Call)
            .where(Call.campaign_id == campaign_id, Call.status == CallStatus.QUEUED)
            .values(status=CallStatus.BUSY, ended_at=at, end_reason="busy")
        )
        await session.commit()
        return int(result.rowcount)  # type: ignore[attr-defined]


PHASES = ("settle", "expire", "dial", "finish")


async def time_ticks(
    services: Services, campaign_id: str, now: datetime, ticks: int
) -> dict[str, Any]:
    """Milliseconds of whole ticks (``hopper.tick_campaign``'s four steps, each timed)."""
    took: dict[str, list[float]] = {name: [] for name in ("tick", *PHASES)}
    dialled = 0
    for n in range(ticks):
        at = now + timedelta(seconds=n)
        async with services.sessions() as session:
            campaign = await session.get(Campaign, campaign_id)
        assert campaign is not None
        steps = {
            "settle": hopper._settle(services, services.jobs, campaign, at),
            "expire": hopper._expire(services, campaign, at),
            "dial": hopper._dial_due(services, services.jobs, campaign, at),
            "finish": hopper._finish_if_done(services, campaign, at),
        }
        total = 0.0
        for name, step in steps.items():
            started = time.perf_counter()
            await step
            spent = (time.perf_counter() - started) * 1000
            took[name].append(spent)
            total += spent
        took["tick"].append(total)
        dialled += await end_started_calls(services, campaign_id, at)
    return {"ms": took, "dialled": dialled}


async def dispatch(settings: Settings, workspace_id: str, count: int) -> dict[str, Any]:
    """A live server dials a second campaign of ``count`` due prospects; dials per second."""
    from tests.e2e.live import live_server  # the server the e2e tests run

    async with live_server(settings) as server:
        async with server.services.sessions() as session:
            big = await session.scalar(
                select(Campaign).where(Campaign.workspace_id == workspace_id)
            )
            assert big is not None
            big.status = CampaignStatus.STOPPED
            big.finished_at = datetime.now(UTC)
            agent_id = big.agent_id
            await session.commit()
            import httpx

            async with httpx.AsyncClient(base_url=server.url) as http:
                busy = {"outcomes": [{"outcome": "busy", "ring_seconds": 0}]}
                assert (await http.put("/simulator/numbers/*", json=busy)).status_code == 200
            campaign = await create_campaign(
                session,
                workspace_id,
                CampaignIn.model_validate(
                    {
                        "agent_id": agent_id,
                        "name": "dispatch",
                        "hours": ALWAYS_OPEN,
                        "max_concurrent": 50,
                        "calls_per_second": 50,
                        "max_attempts": 1,
                        "machine_detection": "off",
                    }
                ),
                simulator_enabled=True,
            )
            now = datetime.now(UTC)
            session.add_all(
                Prospect(
                    campaign_id=campaign.id,
                    phone=f"+447700{n:06d}",  # outside +1: no 08-21 floor, any hour
                    timezones=["Europe/London"],
                    next_due_at=now,
                )
                for n in range(count)
            )
            await session.commit()
        started = time.perf_counter()
        while True:
            async with server.services.sessions() as session:
                done = await session.scalar(
                    select(Campaign.finished_at).where(Campaign.id == campaign.id)
                )
            if done is not None or time.perf_counter() - started > 600:
                break
            await asyncio.sleep(0.5)
        async with server.services.sessions() as session:
            placed = sorted(
                at
                for at in await session.scalars(
                    select(Call.placed_at).where(Call.campaign_id == campaign.id)
                )
                if at is not None
            )
    span = (placed[-1] - placed[0]).total_seconds() if len(placed) > 1 else 0.0
    return {
        "prospects": count,
        "placed": len(placed),
        "seconds": span,
        "dials_per_second": (len(placed) - 1) / span if span else None,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--url",
        default=os.environ.get("SWITCHBOARD_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test"),
    )
    parser.add_argument("--database", default="switchboard_bench_dialer")
    parser.add_argument("--prospects", type=int, default=1_000_000)
    parser.add_argument("--ticks", type=int, default=50)
    parser.add_argument("--dispatch", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    console = Console()
    dsn = await fresh_database(args.url, args.database)
    data_dir = Path(tempfile.mkdtemp(prefix="dialer-bench-"))
    settings = Settings(
        database_url=dsn.replace("postgresql://", "postgresql+asyncpg://", 1),
        data_dir=data_dir,
        simulator=True,
    )
    now = datetime.now(UTC).replace(microsecond=0)
    services = await Services.open(settings)
    try:
        campaign_id, workspace_id = await setup(services)
        started = time.perf_counter()
        loaded = await load(dsn, campaign_id, workspace_id, now, args.prospects, args.seed)
        load_seconds = time.perf_counter() - started
        console.print(f"loaded {loaded} in {load_seconds:.0f} s")
        selection = await time_selection(services, campaign_id, now, args.ticks)
        plan = await explain(services, campaign_id, now)
        ticks = await time_ticks(services, campaign_id, now, args.ticks)
    finally:
        await services.close()
    sent = await dispatch(settings, workspace_id, args.dispatch)

    title = f"hopper at {args.prospects:,} prospects"
    table = Table(title=f"{title} ({loaded['due']:,} due, {loaded['on_dnc']:,} on DNC)")
    for column in ("measure", "n", "p50 ms", "p95 ms", "max ms"):
        table.add_column(column, justify="right" if column != "measure" else "left")
    rows = [
        ("selection (50 rows)", selection),
        (f"tick (settle + dial {TICK_DIALS})", ticks["ms"]["tick"]),
        *((f"  {name}", ticks["ms"][name]) for name in PHASES),
    ]
    for name, values in rows:
        table.add_row(
            name,
            str(len(values)),
            f"{statistics.median(values):.1f}",
            f"{percentile(values, 0.95):.1f}",
            f"{max(values):.1f}",
        )
    console.print(table)
    rate = sent["dials_per_second"] or 0
    console.print(
        f"dispatch: {sent['placed']} dials in {sent['seconds']:.1f} s = {rate:.1f} dials/s"
        " (limit 50/s, 50 at once)"
    )
    console.print(plan.splitlines()[0:4])
    result = {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "prospects": loaded,
        "load_seconds": round(load_seconds, 1),
        "selection_ms": {
            "p50": statistics.median(selection),
            "p95": percentile(selection, 0.95),
            "max": max(selection),
            "n": len(selection),
        },
        "tick_ms": {
            name: {
                "p50": statistics.median(values),
                "p95": percentile(values, 0.95),
                "max": max(values),
                "n": len(values),
            }
            for name, values in ticks["ms"].items()
        },
        "tick_dialled": ticks["dialled"],
        "dispatch": sent,
        "plan": plan,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    console.print(f"wrote {RESULTS}")


if __name__ == "__main__":
    asyncio.run(main())
