"""The long-lived parts one process shares: database, secret box, config cache, Redis.

Built once by the app's lifespan (or a CLI command) and closed with it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import httpx
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from switchboard.agents.config_cache import RuntimeConfigCache
from switchboard.config import Settings
from switchboard.crypto import SecretBox
from switchboard.db import migrate
from switchboard.db.engine import create_engine, create_sessionmaker, is_sqlite
from switchboard.jobs.queue import JobQueue, create_job_queue
from switchboard.telephony.replays import ReplayGuard
from switchboard.voice.slots import CallSlots, call_slots


@dataclass
class Services:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    box: SecretBox
    config_cache: RuntimeConfigCache
    redis: Redis | None
    slots: CallSlots
    replays: ReplayGuard  # nonces of signed carrier webhooks, refused the second time
    jobs: JobQueue = field(init=False, repr=False)  # enqueue here; runs jobs once started
    http: httpx.AsyncClient  # carrier REST and webhooks
    simulator: Any = None  # the simulator carrier's REST API state (CarrierSimulator)
    local: Any = None  # LocalEngines, created on first call (loading it imports llama.cpp)
    _aiohttp: aiohttp.ClientSession | None = field(default=None, repr=False)
    _background: set[asyncio.Task[Any]] = field(default_factory=set, repr=False)
    # Answered calls whose media socket has not connected yet: call id -> its timeout task.
    media_timeouts: dict[str, asyncio.Task[Any]] = field(default_factory=dict, repr=False)
    # Calls whose session runs in this process: call id -> its CallSession.
    live_calls: dict[str, Any] = field(default_factory=dict, repr=False)

    def spawn(self, coroutine: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Run ``coroutine`` in the background, owned by this process and cancelled at close."""
        task = asyncio.create_task(coroutine, name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    def local_engines(self) -> Any:
        """The process's shared local engines (the embedded LLM server), created once."""
        if self.local is None:
            from switchboard.providers.local import LocalEngines

            self.local = LocalEngines(self.settings.data_dir)
        return self.local

    def aiohttp_session(self) -> aiohttp.ClientSession:
        """A shared aiohttp session for provider services that borrow one."""
        if self._aiohttp is None or self._aiohttp.closed:
            self._aiohttp = aiohttp.ClientSession()
        return self._aiohttp

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
        slots = call_slots(settings, redis)
        await slots.start()
        services = cls(
            settings=settings,
            engine=engine,
            sessions=sessions,
            box=SecretBox(settings.encryption_key),
            config_cache=cache,
            redis=redis,
            slots=slots,
            replays=ReplayGuard(sessions, redis),
            http=httpx.AsyncClient(timeout=httpx.Timeout(10.0)),
        )
        services.jobs = create_job_queue(services)
        return services

    async def close(self) -> None:
        await self.jobs.stop()
        for task in list(self._background):
            task.cancel()
        for task in list(self._background):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.config_cache.stop()
        await self.slots.aclose()
        await self.http.aclose()
        if self._aiohttp is not None:
            await self._aiohttp.close()
        if self.local is not None:
            await self.local.aclose()
        if self.redis is not None:
            await self.redis.aclose()
        await self.engine.dispose()
