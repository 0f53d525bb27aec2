"""Runtime config: cache, then database, then stale cache; invalidated on every change."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy.exc import OperationalError

from switchboard.agents.config_cache import INVALIDATION_CHANNEL, ConfigSource, RuntimeConfigCache
from switchboard.db.engine import create_engine, create_sessionmaker
from switchboard.errors import NotFound
from switchboard.services import Services
from tests.conftest import NO_REDIS, REDIS_URL, Tenant, wait_until
from tests.integration.test_agents_api import create as create_agent


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_served_from_cache_until_the_agent_changes(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    agent = await create_agent(client, tenant)
    url = f"/api/v1/agents/{agent['id']}/runtime-config"
    first = await client.get(url, headers=tenant.auth())
    assert first.status_code == 200
    assert first.headers["x-config-source"] == "database"
    assert first.json()["config"]["greeting"] == "Hello!"
    second = await client.get(url, headers=tenant.auth())
    assert second.headers["x-config-source"] == "cache"
    assert second.json() == first.json()

    await client.patch(
        f"/api/v1/agents/{agent['id']}", json={"greeting": "Hi"}, headers=tenant.auth()
    )
    third = await client.get(url, headers=tenant.auth())
    assert third.headers["x-config-source"] == "database"
    assert third.json()["config"]["greeting"] == "Hi"
    assert third.json()["version"] == 2


async def test_cached_entry_is_not_served_to_another_workspace(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    agent = await create_agent(client, tenant)
    url = f"/api/v1/agents/{agent['id']}/runtime-config"
    assert (await client.get(url, headers=tenant.auth())).status_code == 200
    assert (await client.get(url, headers=other_tenant.auth())).status_code == 404


async def test_expired_entry_is_served_stale_when_the_database_is_down(
    client: httpx.AsyncClient, tenant: Tenant, services: Services, tmp_path: Path
) -> None:
    agent = await create_agent(client, tenant)
    clock = Clock()
    cache = RuntimeConfigCache(services.sessions, ttl_seconds=30, clock=clock)
    config, source = await cache.get(tenant.workspace_id, agent["id"])
    assert source is ConfigSource.DATABASE

    clock.now += 10
    assert (await cache.get(tenant.workspace_id, agent["id"]))[1] is ConfigSource.CACHE

    # A database that cannot be opened: a real failure of a real engine.
    broken = create_engine(f"sqlite+aiosqlite:///{tmp_path}/missing-dir/none.db")
    cache.sessions = create_sessionmaker(broken)
    clock.now += 60
    stale, source = await cache.get(tenant.workspace_id, agent["id"])
    assert source is ConfigSource.STALE
    assert stale == config
    with pytest.raises(OperationalError):
        await cache.get(tenant.workspace_id, "agt_never_loaded")
    await broken.dispose()


async def test_deleted_agent_is_dropped_from_the_cache(
    client: httpx.AsyncClient, tenant: Tenant, services: Services
) -> None:
    agent = await create_agent(client, tenant)
    clock = Clock()
    cache = RuntimeConfigCache(services.sessions, ttl_seconds=30, clock=clock)
    await cache.get(tenant.workspace_id, agent["id"])
    await client.delete(f"/api/v1/agents/{agent['id']}", headers=tenant.auth())
    clock.now += 60
    with pytest.raises(NotFound):
        await cache.get(tenant.workspace_id, agent["id"])


@pytest.mark.redis
async def test_an_update_in_one_process_invalidates_the_others(
    client: httpx.AsyncClient, tenant: Tenant, services: Services
) -> None:
    if REDIS_URL is None:
        pytest.skip(NO_REDIS)
    agent = await create_agent(client, tenant)
    writer_redis, reader_redis = Redis.from_url(REDIS_URL), Redis.from_url(REDIS_URL)
    writer = RuntimeConfigCache(services.sessions, ttl_seconds=300, redis=writer_redis)
    reader = RuntimeConfigCache(services.sessions, ttl_seconds=300, redis=reader_redis)
    try:

        async def subscribers() -> int:
            return int((await writer_redis.pubsub_numsub(INVALIDATION_CHANNEL))[0][1])

        baseline = await subscribers()
        await reader.start()

        async def subscribed() -> bool:
            return await subscribers() > baseline

        await wait_until(subscribed, what="the reader subscribing")
        assert (await reader.get(tenant.workspace_id, agent["id"]))[1] is ConfigSource.DATABASE
        assert (await reader.get(tenant.workspace_id, agent["id"]))[1] is ConfigSource.CACHE

        await writer.invalidate(agent["id"])

        async def reloaded() -> bool:
            source = (await reader.get(tenant.workspace_id, agent["id"]))[1]
            return source is ConfigSource.DATABASE

        await wait_until(reloaded, what="the invalidation reaching the reader")
    finally:
        await reader.stop()
        await writer_redis.aclose()
        await reader_redis.aclose()
