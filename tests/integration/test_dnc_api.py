"""The do-not-call list API, on SQLite and PostgreSQL: adding (idempotent), listing, removing
(admins only), CSV imports with bad rows, campaign scopes, and the check on a single call."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from switchboard.db.models import Call, Campaign, DncEntry, Role
from switchboard.dialer.dnc import blocked
from switchboard.services import Services
from tests.conftest import Tenant
from tests.integration.test_agents_api import create as create_agent


async def add(
    client: httpx.AsyncClient, tenant: Tenant, role: Role = Role.DEVELOPER, **body: Any
) -> httpx.Response:
    return await client.post("/api/v1/dnc", json=body, headers=tenant.auth(role))


async def listed(client: httpx.AsyncClient, tenant: Tenant, **query: Any) -> list[dict[str, Any]]:
    response = await client.get("/api/v1/dnc", params=query, headers=tenant.auth(Role.VIEWER))
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


async def upload(
    client: httpx.AsyncClient, tenant: Tenant, text: str | bytes, **form: str
) -> httpx.Response:
    data = text.encode() if isinstance(text, str) else text
    return await client.post(
        "/api/v1/dnc/import",
        data=form,
        files={"file": ("dnc.csv", data, "text/csv")},
        headers=tenant.auth(Role.DEVELOPER),
    )


async def make_campaign(services: Services, client: httpx.AsyncClient, tenant: Tenant) -> str:
    agent = await create_agent(client, tenant)
    async with services.sessions() as session:
        campaign = Campaign(workspace_id=tenant.workspace_id, agent_id=agent["id"], name="Spring")
        session.add(campaign)
        await session.commit()
        return campaign.id


async def test_a_number_is_listed_once_however_often_it_is_added(
    client: httpx.AsyncClient, tenant: Tenant, services: Services
) -> None:
    first = await add(client, tenant, number="+1 (415) 867-5309", reason="asked by email")
    assert first.status_code == 201, first.text
    entry = first.json()
    assert entry["number"] == "+14158675309"
    assert (entry["scope"], entry["source"], entry["reason"]) == (
        "workspace",
        "api",
        "asked by email",
    )
    assert entry["call_id"] is None
    again = await add(client, tenant, number="+14158675309", reason="another reason")
    assert again.status_code == 200  # idempotent: the first entry stands, unchanged
    assert again.json() == entry
    assert [e["id"] for e in await listed(client, tenant)] == [entry["id"]]
    async with services.sessions() as session:
        found = await blocked(session, tenant.workspace_id, "+1 415 867 5309")
        count = await session.scalar(select(func.count()).select_from(DncEntry))
    assert found is not None and found.id == entry["id"]
    assert count == 1


async def test_the_list_pages_and_filters_by_scope_and_number(
    client: httpx.AsyncClient, tenant: Tenant, services: Services
) -> None:
    campaign = await make_campaign(services, client, tenant)
    numbers = ["+15550201", "+15550202", "+15550203"]
    for number in numbers:
        assert (await add(client, tenant, number=number)).status_code == 201
    scoped = await add(client, tenant, number="+15550201", scope=campaign)
    assert scoped.status_code == 201 and scoped.json()["scope"] == campaign
    everything = await listed(client, tenant)
    assert [e["number"] for e in everything] == [*numbers, "+15550201"]
    assert [e["number"] for e in await listed(client, tenant, scope="workspace")] == numbers
    assert [e["id"] for e in await listed(client, tenant, scope=campaign)] == [scoped.json()["id"]]
    assert len(await listed(client, tenant, number="+1 555 0201")) == 2
    page = (await client.get("/api/v1/dnc?limit=2", headers=tenant.auth(Role.VIEWER))).json()
    assert [e["number"] for e in page["data"]] == numbers[:2]
    rest = (
        await client.get(
            f"/api/v1/dnc?limit=2&after={page['next_after']}", headers=tenant.auth(Role.VIEWER)
        )
    ).json()
    assert [e["number"] for e in rest["data"]] == ["+15550203", "+15550201"]


async def test_removing_a_number_needs_an_admin(client: httpx.AsyncClient, tenant: Tenant) -> None:
    entry = (await add(client, tenant, number="+15550210")).json()
    url = f"/api/v1/dnc/{entry['id']}"
    for role in (Role.VIEWER, Role.DEVELOPER):
        refused = await client.delete(url, headers=tenant.auth(role))
        assert refused.status_code == 403, role
    assert len(await listed(client, tenant)) == 1
    removed = await client.delete(url, headers=tenant.auth(Role.ADMIN))
    assert removed.status_code == 204
    assert await listed(client, tenant) == []
    gone = await client.delete(url, headers=tenant.auth(Role.ADMIN))
    assert gone.status_code == 404


async def test_a_csv_import_keeps_the_good_rows_and_reports_the_bad(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    await add(client, tenant, number="+15550224")
    rows = [
        "Number,Reason",
        "+1 415 867 5309,asked on the phone",  # line 2
        "not a number,",  # line 3
        ",no number at all",  # line 4
        "+15550223,",  # line 5
        "+15550223,twice in the file",  # line 6: already listed above
        "+15550224,",  # line 7: already listed before
        "+15550225,x,extra",  # line 8: more cells than columns
        f"+15550226,{'r' * 301}",  # line 9
    ]
    response = await upload(client, tenant, "\n".join(rows) + "\n")
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["scope"], report["rows"], report["added"], report["already_listed"]) == (
        "workspace",
        8,
        2,
        2,
    )
    errors = {e["line"]: e for e in report["row_errors"]}
    assert set(errors) == {3, 4, 8, 9}
    assert errors[3]["field"] == "number" and "E.164" in errors[3]["reason"]
    assert errors[4]["reason"] == "no number"
    assert errors[9]["field"] == "reason"
    entries = {e["number"]: e for e in await listed(client, tenant)}
    assert set(entries) == {"+14158675309", "+15550223", "+15550224"}
    assert entries["+14158675309"]["source"] == "csv"
    assert entries["+14158675309"]["reason"] == "asked on the phone"
    assert entries["+15550224"]["source"] == "api"  # the first entry stands
    phone_column = await upload(client, tenant, "phone\n+15550227\n")
    assert phone_column.status_code == 200 and phone_column.json()["added"] == 1


@pytest.mark.parametrize(
    ("content", "detail"),
    [
        (b"\xff\xfe\x00bad", "not UTF-8"),
        (b"name,reason\nAda,asked\n", "no 'number'"),
        (b"number\n", "no rows"),
        (b"number\nnope\nstill no\n", "no row can be listed"),
        (b"number\n" + b"+15550230\n" * 10_001, "more than 10000 rows"),
    ],
)
async def test_a_file_that_cannot_be_imported_is_refused_naming_the_file(
    client: httpx.AsyncClient, tenant: Tenant, content: bytes, detail: str
) -> None:
    response = await upload(client, tenant, content)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["field"] == "file" and detail in response.json()["detail"]
    assert await listed(client, tenant) == []


async def test_a_campaign_scope_must_be_a_campaign_of_the_workspace(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant, services: Services
) -> None:
    mine = await make_campaign(services, client, tenant)
    theirs = await make_campaign(services, client, other_tenant)
    for scope in ("cmp_nope", theirs):
        refused = await add(client, tenant, number="+15550240", scope=scope)
        assert refused.status_code == 404, refused.text
        assert refused.json()["field"] == "scope"
        imported = await upload(client, tenant, "number\n+15550240\n", scope=scope)
        assert imported.status_code == 404 and imported.json()["field"] == "scope"
    assert await listed(client, tenant) == []
    imported = await upload(client, tenant, "number\n+15550241\n", scope=mine)
    assert imported.status_code == 200 and imported.json()["scope"] == mine
    assert (await add(client, tenant, number="+15550240", scope=mine)).status_code == 201
    async with services.sessions() as session:
        # A campaign's entry blocks that campaign's dials, and no other dial.
        assert await blocked(session, tenant.workspace_id, "+15550240") is None
        assert await blocked(session, tenant.workspace_id, "+15550240", "cmp_other") is None
        entry = await blocked(session, tenant.workspace_id, "+15550240", mine)
        assert entry is not None and entry.scope == mine
    # A workspace entry blocks every dial, and is the one reported.
    assert (await add(client, tenant, number="+15550240")).status_code == 201
    async with services.sessions() as session:
        entry = await blocked(session, tenant.workspace_id, "+15550240", mine)
        assert entry is not None and entry.scope == "workspace"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"number": "867-5309"}, "number"),
        ({"number": "+1555"}, "number"),
        ({}, "number"),
        ({"number": "+15550250", "reason": "x" * 301}, "reason"),
        ({"number": "+15550250", "scope": "s" * 41}, "scope"),
        ({"number": "+15550250", "source": "opt_out"}, "source"),
    ],
)
async def test_bad_input_is_a_problem_naming_the_field(
    client: httpx.AsyncClient, tenant: Tenant, body: dict[str, Any], field: str
) -> None:
    response = await add(client, tenant, **body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["field"] == field
    assert await listed(client, tenant) == []


async def test_a_bad_number_filter_names_the_field(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    response = await client.get("/api/v1/dnc?number=nope", headers=tenant.auth(Role.VIEWER))
    assert response.status_code == 422 and response.json()["field"] == "number"


async def test_another_workspace_neither_sees_nor_changes_nor_is_bound_by_the_list(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant, services: Services
) -> None:
    entry = (await add(client, tenant, number="+15550260", reason="private")).json()
    assert await listed(client, other_tenant) == []
    foreign = await client.delete(
        f"/api/v1/dnc/{entry['id']}", headers=other_tenant.auth(Role.OWNER)
    )
    assert foreign.status_code == 404
    theirs = await add(client, other_tenant, number="+15550260")
    assert theirs.status_code == 201 and theirs.json()["id"] != entry["id"]
    assert [e["id"] for e in await listed(client, tenant)] == [entry["id"]]
    async with services.sessions() as session:
        assert await blocked(session, "ws_nobody", "+15550260") is None
        found = await blocked(session, tenant.workspace_id, "+15550260")
        assert found is not None and found.id == entry["id"]


async def test_a_call_to_a_listed_number_is_refused_and_nothing_is_recorded(
    client: httpx.AsyncClient, tenant: Tenant, services: Services
) -> None:
    agent = await create_agent(client, tenant)
    bound = await client.post(
        "/api/v1/numbers",
        json={"number": "+15550270", "carrier": "simulator", "agent_id": agent["id"]},
        headers=tenant.auth(),
    )
    assert bound.status_code == 201, bound.text
    entry = (await add(client, tenant, number="+15550271")).json()
    for to in ("+15550271", "+1 555 0271"):
        response = await client.post(
            "/api/v1/calls",
            json={"agent_id": agent["id"], "to": to},
            headers=tenant.auth(Role.DEVELOPER),
        )
        assert response.status_code == 422, response.text
        assert response.json()["field"] == "to"
        assert "do-not-call" in response.json()["detail"]
    async with services.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Call)) == 0
    # Off the list (an admin's decision), the number may be called again.
    await client.delete(f"/api/v1/dnc/{entry['id']}", headers=tenant.auth(Role.ADMIN))
    accepted = await client.post(
        "/api/v1/calls",
        json={"agent_id": agent["id"], "to": "+15550271"},
        headers=tenant.auth(Role.DEVELOPER),
    )
    assert accepted.status_code == 201, accepted.text
