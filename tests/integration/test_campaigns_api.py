"""The campaigns API, on SQLite and PostgreSQL: bad input named by field, prospect uploads
with per-row errors, merged duplicates and listed numbers, steering, stats, and the
agent's callback booking kept inside the prospect's window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from switchboard.db.models import Call, CallDirection, CallStatus, Prospect, ProspectState, Role
from switchboard.dialer.campaign_calls import book_callback, campaign_call, set_disposition
from switchboard.errors import InvalidInput
from switchboard.services import Services
from tests.conftest import Tenant
from tests.integration.test_agents_api import create as create_agent

FROM = "+15550160"
# + 3 digits: UK drama numbers. No legal calling-hours floor is encoded for the UK, and
# phonenumbers places them in no zone, so the campaigns name Europe/London as the default.
LONDON = "+447700900"


async def agent_with_number(client: httpx.AsyncClient, tenant: Tenant, **fields: Any) -> str:
    agent = await create_agent(
        client, tenant, variables={"plan": {"type": "string"}, "age": {"type": "number"}}, **fields
    )
    number = await client.post(
        "/api/v1/numbers",
        json={"number": FROM, "carrier": "simulator", "agent_id": agent["id"]},
        headers=tenant.auth(),
    )
    assert number.status_code == 201, number.text
    return str(agent["id"])


async def new_campaign(
    client: httpx.AsyncClient, tenant: Tenant, agent_id: str, **fields: Any
) -> httpx.Response:
    return await client.post(
        "/api/v1/campaigns",
        json={"agent_id": agent_id, "name": "Renewals", **fields},
        headers=tenant.auth(Role.DEVELOPER),
    )


async def upload(
    client: httpx.AsyncClient, tenant: Tenant, campaign_id: str, text: str
) -> httpx.Response:
    return await client.post(
        f"/api/v1/campaigns/{campaign_id}/prospects",
        files={"file": ("prospects.csv", text.encode(), "text/csv")},
        headers=tenant.auth(Role.DEVELOPER),
    )


def problem_field(response: httpx.Response) -> str:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    field: str = response.json()["field"]
    return field


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"hours": {"weekly": {}}}, "hours.weekly"),
        (
            {"hours": {"weekly": {"mon": [{"start": "09:00", "end": "08:00"}]}}},
            "hours.weekly.mon.0",
        ),
        (
            {
                "hours": {
                    "weekly": {
                        "mon": [
                            {"start": "09:00", "end": "12:00"},
                            {"start": "11:00", "end": "13:00"},
                        ]
                    }
                }
            },
            "hours.weekly.mon",
        ),
        (
            {"hours": {"weekly": {"funday": [{"start": "09:00", "end": "12:00"}]}}},
            "hours.weekly.funday.[key]",
        ),
        ({"default_timezone": "Mars/Olympus"}, "default_timezone"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"calls_per_second": 0}, "calls_per_second"),
        ({"dispositions": {"odd": {"final": True, "retry": True}}}, "dispositions.odd"),
        ({"ends_at": "2030-01-01T00:00:00"}, "ends_at"),
        ({"from_numbers": ["+15550999"]}, "from"),
    ],
)
async def test_bad_campaigns_are_refused_naming_the_field(
    client: httpx.AsyncClient, tenant: Tenant, fields: dict[str, Any], field: str
) -> None:
    agent_id = await agent_with_number(client, tenant)
    response = await new_campaign(client, tenant, agent_id, **fields)
    assert problem_field(response) == field, response.text


async def test_an_upload_keeps_good_rows_reports_bad_ones_and_merges_duplicates(
    client: httpx.AsyncClient, tenant: Tenant, services: Services
) -> None:
    agent_id = await agent_with_number(client, tenant)
    created = await new_campaign(client, tenant, agent_id, default_timezone="Europe/London")
    assert created.status_code == 201, created.text
    campaign = created.json()
    assert campaign["status"] == "running" and campaign["from_numbers"] == [FROM]
    assert campaign["hours"]["weekly"]["mon"] == [{"start": "08:00", "end": "21:00"}]
    assert set(campaign["dispositions"]) >= {"interested", "callback", "do_not_call", "busy"}
    listed = await client.post(
        "/api/v1/dnc", json={"number": f"{LONDON}009"}, headers=tenant.auth(Role.DEVELOPER)
    )
    assert listed.status_code == 201
    rows = [
        "phone,name,timezone,priority,expires_at,plan,age",
        f"{LONDON}001,First,,5,,gold,41",  # line 2
        "not-a-number,Nobody,,,,,",  # line 3
        f"{LONDON}002,Second,Mars/Olympus,,,,",  # line 4
        f"{LONDON}003,Third,,high,,,",  # line 5
        f"{LONDON}004,Fourth,,,tomorrow,,",  # line 6
        f"{LONDON}005,Fifth,,,,,forty",  # line 7
        f"{LONDON}001,First again,Asia/Tokyo,7,,silver,42",  # line 8: merged into line 2
        f"{LONDON}009,Listed,,,,,",  # line 9: on the do-not-call list
        f"{LONDON}010,Extra,,,,,,surplus",  # line 10: a cell too many
        "+12125550123,New York,,,,,",  # line 11: zone from the number
    ]
    response = await upload(client, tenant, campaign["id"], "\n".join(rows) + "\n")
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["rows"], report["added"], report["merged"], report["on_dnc"]) == (10, 3, 0, 1)
    errors = {e["line"]: e["field"] for e in report["row_errors"]}
    assert errors == {
        3: "phone",
        4: "timezone",
        5: "priority",
        6: "expires_at",
        7: "variables.age",
        10: None,
    }
    again = await upload(client, tenant, campaign["id"], f"phone,name\n{LONDON}001,Renamed\n")
    assert again.json()["merged"] == 1 and again.json()["added"] == 0
    found = await client.get(
        f"/api/v1/campaigns/{campaign['id']}/prospects", headers=tenant.auth(Role.VIEWER)
    )
    prospects = {p["phone"]: p for p in found.json()["data"]}
    assert set(prospects) == {f"{LONDON}001", f"{LONDON}009", "+12125550123"}
    first = prospects[f"{LONDON}001"]
    assert first["name"] == "Renamed" and first["timezones"] == ["Europe/London"]
    assert prospects[f"{LONDON}009"]["state"] == "dnc"
    assert prospects["+12125550123"]["timezones"] == ["America/New_York"]
    pending = await client.get(
        f"/api/v1/campaigns/{campaign['id']}/prospects",
        params={"state": "pending"},
        headers=tenant.auth(Role.VIEWER),
    )
    assert {p["phone"] for p in pending.json()["data"]} == {f"{LONDON}001", "+12125550123"}


@pytest.mark.parametrize(
    "text",
    ["name\nNobody\n", "", "\xff\xfe".encode("latin-1").decode("latin-1")],
)
async def test_a_file_that_cannot_be_read_is_refused_naming_the_file(
    client: httpx.AsyncClient, tenant: Tenant, text: str
) -> None:
    agent_id = await agent_with_number(client, tenant)
    campaign = (await new_campaign(client, tenant, agent_id)).json()
    response = await client.post(
        f"/api/v1/campaigns/{campaign['id']}/prospects",
        files={"file": ("p.csv", text.encode("latin-1"), "text/csv")},
        headers=tenant.auth(Role.DEVELOPER),
    )
    assert problem_field(response) == "file"


async def test_a_campaign_is_paused_resumed_stopped_and_then_stays_stopped(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    agent_id = await agent_with_number(client, tenant)
    campaign = (await new_campaign(client, tenant, agent_id)).json()
    path = f"/api/v1/campaigns/{campaign['id']}"
    developer = tenant.auth(Role.DEVELOPER)
    assert (await client.post(f"{path}/pause", headers=developer)).json()["status"] == "paused"
    assert (await client.post(f"{path}/resume", headers=developer)).json()["status"] == "running"
    assert (await client.post(f"{path}/stop", headers=developer)).json()["status"] == "stopped"
    refused = await client.post(f"{path}/resume", headers=developer)
    assert refused.status_code == 409 and refused.json()["field"] == "status"
    late = await upload(client, tenant, campaign["id"], f"phone\n{LONDON}001\n")
    assert problem_field(late) == "campaign_id"
    viewer = await client.post(f"{path}/pause", headers=tenant.auth(Role.VIEWER))
    assert viewer.status_code == 403


async def test_a_patch_is_checked_like_a_new_campaign(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    agent_id = await agent_with_number(client, tenant)
    campaign = (await new_campaign(client, tenant, agent_id)).json()
    path = f"/api/v1/campaigns/{campaign['id']}"
    developer = tenant.auth(Role.DEVELOPER)
    never = await client.patch(path, json={"hours": {"weekly": {}}}, headers=developer)
    assert problem_field(never) == "hours.weekly"
    null = await client.patch(path, json={"name": None}, headers=developer)
    assert problem_field(null) == "name"
    changed = await client.patch(
        path,
        json={"max_concurrent": 7, "dispositions": {"sale": {"final": True}}},
        headers=developer,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["max_concurrent"] == 7 and changed.json()["dispositions"]["sale"]["final"]
    stats = (await client.get(f"{path}/stats", headers=tenant.auth(Role.VIEWER))).json()
    assert stats["dialed"] == 0 and stats["abandonment_rate_30d"] is None


async def test_the_agent_books_a_callback_only_inside_the_window(
    client: httpx.AsyncClient, tenant: Tenant, services: Services
) -> None:
    agent_id = await agent_with_number(client, tenant)
    weekdays = {
        d: [{"start": "09:00", "end": "17:00"}] for d in ("mon", "tue", "wed", "thu", "fri")
    }
    created = await new_campaign(
        client, tenant, agent_id, hours={"weekly": weekdays}, default_timezone="Europe/London"
    )
    campaign = created.json()
    await upload(client, tenant, campaign["id"], f"phone\n{LONDON}001\n")
    async with services.sessions() as session:
        prospect = await session.scalar(
            select(Prospect).where(Prospect.campaign_id == campaign["id"])
        )
        assert prospect is not None
        prospect_id, phone = prospect.id, prospect.phone
        call = Call(
            workspace_id=tenant.workspace_id,
            agent_id=agent_id,
            direction=CallDirection.OUTBOUND,
            carrier="simulator",
            from_number=FROM,
            to_number=phone,
            status=CallStatus.IN_PROGRESS,
            campaign_id=campaign["id"],
        )
        session.add(call)
        await session.flush()
        await session.execute(
            update(Prospect)
            .where(Prospect.id == prospect_id)
            .values(state=ProspectState.DIALING, call_id=call.id, attempts=1)
        )
        await session.commit()
        context = await campaign_call(session, call)
        assert context is not None and context.zones == ("Europe/London",)
        now = datetime(2027, 3, 3, 12, 0, tzinfo=UTC)  # a Wednesday, noon in London
        saturday = datetime(2027, 3, 6, 10, 0)  # the callee's clock
        with pytest.raises(InvalidInput) as refused:
            await book_callback(session, context, saturday, now)
        assert refused.value.field == "at"
        assert "Monday 08 March 2027, 09:00 GMT" in refused.value.message
        with pytest.raises(InvalidInput):
            await book_callback(session, context, now - timedelta(hours=1), now)
        booked = await book_callback(session, context, datetime(2027, 3, 4, 16, 30), now)
        assert booked == datetime(2027, 3, 4, 16, 30, tzinfo=UTC)
        with pytest.raises(InvalidInput) as unknown:
            await set_disposition(session, context, "busy")  # an outcome's, not the agent's
        assert unknown.value.field == "disposition"
        await set_disposition(session, context, "interested")
        session.expire_all()
        stored = await session.get(Prospect, prospect_id)
        assert stored is not None
        assert (stored.disposition, stored.callback_at) == ("interested", booked)
