"""The long-lived parts one process shares: database, secret box, config cache, Redis.

Built once by the app's lifespan (or a CLI command) and closed with it.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from switchboard.agents.config_cache import RuntimeConfigCache
from switchboard.config import Settings
from switchboard.crypto import SecretBox
from switchboard.db import migrate
from switchboard.db.engine import create_engine, create_sessionmaker, is_sqlite


@dataclass
class Services:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    box: SecretBox
    config_cache: RuntimeConfigCache
    redis: Redis | None

    @classmethod
    async def open(cls, settings: Settings, *, run_migrations: bool = True) -> Services:
        url = settings.resolved_database_url
        if is_sqlite(url):
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url)
        if run_migrations:
            await migrate.upgrade(engine)
        sessions = create_sessionmaker(engine)
        redis = Redis.from_url(settings.redis_url) if settings.redis_url else None
        cache = RuntimeConfigCache(
            sessions, ttl_seconds=settings.config_cache_ttl_seconds, redis=redis
        )
        await cache.start()
        return cls(
            settings=settings,
            engine=engine,
            sessions=sessions,
            box=SecretBox(settings.encryption_key),
            config_cache=cache,
            redis=redis,
        )

    async def close(self) -> None:
        await self.config_cache.stop()
        if self.redis is not None:
            await self.redis.aclose()
        await self.engine.dispose()
