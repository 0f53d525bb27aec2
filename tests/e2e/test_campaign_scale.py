"""A 1,000-prospect campaign runs to completion offline, embedded: one ``serve``-like live
server on SQLite whose in-process hopper ticks once a second, dialling through the
simulator's fake carrier API (callees set per number by ``campaign_plan``).

Every prospect ends final with its planned disposition and attempts; each (prospect,
attempt) is one call in our records and one request to the carrier; the campaign
completes. The same plan runs on PostgreSQL with two workers in
``test_distributed_campaign``, and must end alike.
"""

from __future__ import annotations

import time

import httpx

from switchboard.config import Settings
from tests.e2e import campaign_plan as plan
from tests.e2e.live import live_server


async def test_a_1000_prospect_campaign_runs_to_completion_embedded(
    sqlite_settings: Settings,
) -> None:
    # The server's own call limit (20 by default) would hold pacing below the campaign's.
    async with live_server(sqlite_settings, max_concurrent_calls=plan.WORKSPACE_CALLS) as server:
        auth = {"Authorization": f"Bearer {server.key}"}
        async with (
            httpx.AsyncClient(base_url=server.url, headers=auth, timeout=30) as api,
            httpx.AsyncClient(base_url=server.url, timeout=30) as simulator,
        ):
            await plan.set_up_callees(simulator)
            started = time.monotonic()
            campaign_id = await plan.start_campaign(api, plan.EMBEDDED_PACING)
            await plan.until_finished(api, simulator, campaign_id, seconds=150)
            took = time.monotonic() - started
            run = await plan.collect(api, simulator, campaign_id)
    assert plan.check(run) == plan.DISPOSITIONS
    print(
        f"embedded: {plan.PROSPECTS} prospects, {plan.DIALS} dials in {took:.1f} s"
        f" ({plan.DIALS / took:.1f} dials/s); abandoned: {run.campaign['stats']['abandoned']}"
    )
