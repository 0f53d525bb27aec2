"""The runtime-config cache: a ringing phone must not wait on, or die with, the database.

Lookups go cache → database → stale cache: a fresh entry is served from
memory; an expired or missing one is loaded from the database; if the
database cannot be reached, an expired entry is still served (and said to
be stale) rather than failing the call. Updates invalidate the entry here
and, in distributed mode, in every other process through Redis pub/sub.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from switchboard.agents.schema import RuntimeConfig
from switchboard.agents.service import load_runtime_config
from switchboard.errors import NotFound

log = logging.getLogger(__name__)

INVALIDATION_CHANNEL = "switchboard:agent-config:invalidate"


class ConfigSource(StrEnum):
    CACHE = "cache"
    DATABASE = "database"
    STALE = "stale-cache"


@dataclass
class _Entry:
    config: RuntimeConfig
    loaded_at: float


class RuntimeConfigCache:
    """Per-process cache of resolved agent configs, keyed by agent id."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        ttl_seconds: float,
        redis: Redis | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sessions = sessions
        self.ttl_seconds = ttl_seconds
        self._redis = redis
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._listener: asyncio.Task[None] | None = None

    async def get(self, workspace_id: str, agent_id: str) -> tuple[RuntimeConfig, ConfigSource]:
        entry = self._entries.get(agent_id)
        if entry is not None and entry.config.workspace_id != workspace_id:
            raise NotFound("agent", agent_id)
        if entry is not None and self._clock() - entry.loaded_at < self.ttl_seconds:
            return entry.config, ConfigSource.CACHE
        try:
            async with self.sessions() as session:
                config = await load_runtime_config(session, workspace_id, agent_id)
        except NotFound:
            self._entries.pop(agent_id, None)
            raise
        except (SQLAlchemyError, OSError):
            if entry is None:
                raise
            log.warning("database unreachable; serving stale config for agent %s", agent_id)
            return entry.config, ConfigSource.STALE
        self._entries[agent_id] = _Entry(config, self._clock())
        return config, ConfigSource.DATABASE

    def forget(self, agent_id: str) -> None:
        """Drop one entry in this process only."""
        self._entries.pop(agent_id, None)

    async def invalidate(self, agent_id: str) -> None:
        """Drop an entry here and tell every other process to drop theirs."""
        self.forget(agent_id)
        if self._redis is not None:
            await self._redis.publish(INVALIDATION_CHANNEL, agent_id)

    async def start(self) -> None:
        """Listen for invalidations from other processes (distributed mode only)."""
        if self._redis is None or self._listener is not None:
            return
        pubsub = self._redis.pubsub()
        await pubsub.subscribe(INVALIDATION_CHANNEL)
        self._listener = asyncio.create_task(self._listen(pubsub), name="config-cache-listener")

    async def _listen(self, pubsub: PubSub) -> None:
        try:
            async for message in pubsub.listen():
                if message.get("type") == "message":
                    data = message["data"]
                    self.forget(data.decode() if isinstance(data, bytes) else str(data))
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None
