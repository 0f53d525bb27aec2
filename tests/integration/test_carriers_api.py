"""Carrier accounts: secrets are written, stored encrypted and never read back."""

from __future__ import annotations

import logging

import httpx
import pytest
from sqlalchemy import select

from switchboard.db.models import CarrierAccount
from switchboard.services import Services
from switchboard.telephony.accounts import load_credentials
from switchboard.telephony.credentials import CarrierName
from switchboard.telephony.twilio import TwilioCredentials
from tests.conftest import Tenant

SID = "AC" + "0123456789abcdef" * 2
TOKEN = "twilio-auth-token-0123456789"


async def test_secret_is_write_only_and_encrypted_at_rest(
    client: httpx.AsyncClient, tenant: Tenant, services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    response = await client.put(
        "/api/v1/carriers/twilio",
        json={"account_sid": SID, "auth_token": TOKEN},
        headers=tenant.auth(),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["settings"] == {"account_sid": SID}
    assert body["secrets_set"] == ["auth_token"]
    for path in ("/api/v1/carriers/twilio", "/api/v1/carriers"):
        assert TOKEN not in (await client.get(path, headers=tenant.auth())).text

    async with services.sessions() as session:
        row = await session.scalar(select(CarrierAccount))
        assert row is not None and row.secrets is not None
        assert TOKEN.encode() not in row.secrets
        assert TOKEN not in str(row.settings)
        credentials = await load_credentials(
            session, services.box, tenant.workspace_id, CarrierName.TWILIO
        )
    assert isinstance(credentials, TwilioCredentials)
    assert credentials.auth_token.get_secret_value() == TOKEN
    assert TOKEN not in repr(credentials)
    assert TOKEN not in caplog.text


async def test_omitted_secret_keeps_the_stored_one(
    client: httpx.AsyncClient, tenant: Tenant, services: Services
) -> None:
    await client.put(
        "/api/v1/carriers/twilio",
        json={"account_sid": SID, "auth_token": TOKEN},
        headers=tenant.auth(),
    )
    new_sid = "AC" + "f" * 32
    response = await client.put(
        "/api/v1/carriers/twilio", json={"account_sid": new_sid}, headers=tenant.auth()
    )
    assert response.status_code == 200
    async with services.sessions() as session:
        credentials = await load_credentials(
            session, services.box, tenant.workspace_id, CarrierName.TWILIO
        )
    assert isinstance(credentials, TwilioCredentials)
    assert credentials.account_sid == new_sid
    assert credentials.auth_token.get_secret_value() == TOKEN


@pytest.mark.parametrize(
    ("carrier", "body", "field"),
    [
        ("twilio", {"account_sid": SID}, "auth_token"),
        ("twilio", {"account_sid": "nope", "auth_token": TOKEN}, "account_sid"),
        ("twilio", {"account_sid": SID, "auth_token": TOKEN, "region": "x"}, "region"),
        ("exotel", {"account_sid": "acme", "api_key": "k"}, "api_token"),
        ("vobiz", {"auth_id": "MA123"}, "auth_token"),
        ("browser", {"anything": 1}, "carrier"),
        ("pigeon", {}, "carrier"),
    ],
)
async def test_bad_credentials_name_the_field(
    client: httpx.AsyncClient,
    tenant: Tenant,
    services: Services,
    carrier: str,
    body: dict[str, object],
    field: str,
) -> None:
    response = await client.put(f"/api/v1/carriers/{carrier}", json=body, headers=tenant.auth())
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field
    async with services.sessions() as session:
        assert await session.scalar(select(CarrierAccount)) is None


async def test_each_carrier_accepts_its_own_fields(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    exotel = await client.put(
        "/api/v1/carriers/exotel",
        json={
            "account_sid": "acme1",
            "api_key": "key1",
            "api_token": "tok1",
            "webhook_secret": "a-long-webhook-secret",
        },
        headers=tenant.auth(),
    )
    assert exotel.json()["settings"] == {
        "account_sid": "acme1",
        "api_key": "key1",
        "subdomain": "api.exotel.com",
        "flow_url": None,
    }
    assert exotel.json()["secrets_set"] == ["api_token", "webhook_secret"]
    vobiz = await client.put(
        "/api/v1/carriers/vobiz", json={"auth_id": "MA1", "auth_token": "t"}, headers=tenant.auth()
    )
    assert vobiz.json()["secrets_set"] == ["auth_token"]
    listed = (await client.get("/api/v1/carriers", headers=tenant.auth())).json()
    assert [a["carrier"] for a in listed] == ["exotel", "vobiz"]
    assert (await client.delete("/api/v1/carriers/vobiz", headers=tenant.auth())).status_code == 204
    assert (await client.get("/api/v1/carriers/vobiz", headers=tenant.auth())).status_code == 404
