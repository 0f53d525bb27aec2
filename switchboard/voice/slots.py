"""Concurrent-call limits, per server and per workspace.

A call takes a slot before it is answered and gives it back however it ends.
Two implementations behind one interface (``CallSlots``):

- ``LocalCallSlots`` (embedded mode): counters in this process.
- ``RedisCallSlots`` (distributed mode): a lease per call id in Redis, so the
  webhook, the media socket and the end of a call may each reach a different
  process and the slot is still counted once and freed once.

Lifecycle of a slot (the same calls in both modes):

1. ``acquire`` where the call is admitted (the webhook, or the browser call
   API): checks the server's and the workspace's limits atomically and leases
   the slot to this process, which renews the lease while it holds it.
2. ``hold`` where the call runs (the media socket that claimed it): the lease
   moves to this process, counts against this server, and is renewed here.
   The call is already answered, so ``hold`` checks no limit; it re-takes a
   lease that lapsed (its admitting process died before the media came).
3. ``release`` wherever the call ends (the session's ``finally``, or the
   timer that fails a call whose media never connected), in any process.
4. A process that dies stops renewing: its leases lapse after
   ``lease_seconds`` and stop counting; nothing has to clean up after it.

``start`` begins renewing and ``aclose`` stops it without releasing anything:
on a graceful shutdown each running call releases its own slot as it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import secrets
import socket
from abc import ABC, abstractmethod
from typing import Any, Literal

from redis.asyncio import Redis
from redis.exceptions import RedisError

from switchboard.config import Settings

log = logging.getLogger(__name__)

Scope = Literal["server", "workspace"]
LEASE_SECONDS = 30.0
REDIS_PREFIX = "switchboard:slots:"


class AtCapacity(Exception):
    """No slot free; ``scope`` says which limit was hit."""

    def __init__(self, scope: Scope) -> None:
        super().__init__(f"at capacity ({scope})")
        self.scope: Scope = scope


class CallSlots(ABC):
    """Slots for live calls: at most ``server_limit`` here, a workspace's own limit overall."""

    def __init__(self, server_limit: int) -> None:
        self.server_limit = server_limit

    @abstractmethod
    async def start(self) -> None:
        """Begin keeping this process's leases alive."""

    @abstractmethod
    async def aclose(self) -> None:
        """Stop keeping leases alive, releasing nothing: slots still held lapse on their own."""

    @abstractmethod
    async def acquire(self, call_id: str, workspace_id: str, workspace_limit: int) -> None:
        """Take a slot for ``call_id`` or raise ``AtCapacity``; a second call is a no-op."""

    @abstractmethod
    async def hold(self, call_id: str, workspace_id: str) -> None:
        """This process now runs ``call_id``: its slot counts here and is kept alive here."""

    @abstractmethod
    async def release(self, call_id: str) -> None:
        """Give the slot back, whichever process holds it; a no-op if it is free."""

    @abstractmethod
    async def in_use(self, workspace_id: str) -> int:
        """Live slots of a workspace, across every process."""

    @abstractmethod
    async def total(self) -> int:
        """Live slots held by this server."""


class LocalCallSlots(CallSlots):
    """Embedded mode: one process, so plain counters are the truth."""

    def __init__(self, server_limit: int) -> None:
        super().__init__(server_limit)
        self._calls: dict[str, str] = {}  # call id -> workspace id

    async def start(self) -> None:
        """Nothing to keep alive: these slots live and die with the process."""

    async def aclose(self) -> None:
        """Nothing to stop."""

    async def acquire(self, call_id: str, workspace_id: str, workspace_limit: int) -> None:
        if call_id in self._calls:
            return
        if len(self._calls) >= self.server_limit:
            raise AtCapacity("server")
        if await self.in_use(workspace_id) >= workspace_limit:
            raise AtCapacity("workspace")
        self._calls[call_id] = workspace_id

    async def hold(self, call_id: str, workspace_id: str) -> None:
        self._calls.setdefault(call_id, workspace_id)

    async def release(self, call_id: str) -> None:
        self._calls.pop(call_id, None)

    async def in_use(self, workspace_id: str) -> int:
        return sum(1 for owner in self._calls.values() if owner == workspace_id)

    async def total(self) -> int:
        return len(self._calls)


# Keys, under a prefix: ``server:{id}`` and ``workspace:{id}`` are sorted sets of call
# ids scored by lease expiry (Redis time, ms), so a lapsed lease stops counting the
# moment it lapses; ``call:{id}`` is a hash {workspace, server} expiring with the lease,
# which lets any process find and free a call's slot. Times come from Redis's clock,
# so processes on different machines agree on when a lease lapses. Release and renewal
# name keys inside the script: this needs one Redis, not a cluster.
_LUA_COMMON = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function extend(key, ms)
  if redis.call('PTTL', key) < ms then redis.call('PEXPIRE', key, ms) end
end
local function lease(call_key, server_set, workspace_set, call_id, workspace_id, server_id, ms)
  redis.call('ZADD', server_set, now + ms, call_id)
  redis.call('ZADD', workspace_set, now + ms, call_id)
  redis.call('HSET', call_key, 'workspace', workspace_id, 'server', server_id)
  redis.call('PEXPIRE', call_key, ms)
  extend(server_set, ms)
  extend(workspace_set, ms)
end
"""

# KEYS: call, server set, workspace set. ARGV: call id, workspace id, server id,
# server limit, workspace limit, lease ms. Returns {'ok'|'held'|'full', server id|scope}.
_ACQUIRE = (
    _LUA_COMMON
    + """
local holder = redis.call('HGET', KEYS[1], 'server')
if holder then return {'held', holder} end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[4]) then return {'full', 'server'} end
if redis.call('ZCARD', KEYS[3]) >= tonumber(ARGV[5]) then return {'full', 'workspace'} end
lease(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[6]))
return {'ok', ARGV[3]}
"""
)

# KEYS: call, server set, workspace set. ARGV: call id, workspace id, server id,
# lease ms, prefix.
_HOLD = (
    _LUA_COMMON
    + """
local holder = redis.call('HGET', KEYS[1], 'server')
if holder and holder ~= ARGV[3] then
  redis.call('ZREM', ARGV[5] .. 'server:' .. holder, ARGV[1])
end
lease(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]))
"""
)

# KEYS: call. ARGV: call id, prefix.
_RELEASE = """
local held = redis.call('HMGET', KEYS[1], 'workspace', 'server')
if not held[1] then return 0 end
redis.call('ZREM', ARGV[2] .. 'workspace:' .. held[1], ARGV[1])
redis.call('ZREM', ARGV[2] .. 'server:' .. held[2], ARGV[1])
redis.call('DEL', KEYS[1])
return 1
"""

# KEYS: server set. ARGV: server id, lease ms, prefix, call ids...
# Renews the leases this server still holds; returns the ids it no longer holds.
_RENEW = (
    _LUA_COMMON
    + """
local lost = {}
for i = 4, #ARGV do
  local call_key = ARGV[3] .. 'call:' .. ARGV[i]
  local held = redis.call('HMGET', call_key, 'workspace', 'server')
  if held[2] == ARGV[1] then
    local workspace_set = ARGV[3] .. 'workspace:' .. held[1]
    lease(call_key, KEYS[1], workspace_set, ARGV[i], held[1], ARGV[1], tonumber(ARGV[2]))
  else
    lost[#lost + 1] = ARGV[i]
  end
end
return lost
"""
)

# KEYS: a sorted set. Counts the leases that have not lapsed.
_COUNT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')
"""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def process_server_id() -> str:
    """An id for this process, unique across machines and restarts."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class RedisCallSlots(CallSlots):
    """Distributed mode: leases in Redis, renewed every third of their life by ``start``'s task."""

    def __init__(
        self,
        redis: Redis,
        server_limit: int,
        *,
        server_id: str | None = None,
        lease_seconds: float = LEASE_SECONDS,
        prefix: str = REDIS_PREFIX,
    ) -> None:
        super().__init__(server_limit)
        self.server_id = server_id or process_server_id()
        self.lease_seconds = lease_seconds
        self._redis = redis
        self._prefix = prefix
        self._lease_ms = max(1, int(lease_seconds * 1000))
        # Call ids whose lease this process renews, each with the turn it was taken in,
        # so a renewal that saw an older lease lost never drops one taken since.
        self._held: dict[str, int] = {}
        self._turns = itertools.count()
        self._renewer: asyncio.Task[None] | None = None
        self._acquire = redis.register_script(_ACQUIRE)
        self._hold = redis.register_script(_HOLD)
        self._release = redis.register_script(_RELEASE)
        self._renew = redis.register_script(_RENEW)
        self._count = redis.register_script(_COUNT)

    def _key(self, kind: str, ident: str) -> str:
        return f"{self._prefix}{kind}:{ident}"

    async def start(self) -> None:
        if self._renewer is None:
            self._renewer = asyncio.create_task(self._renew_forever(), name="call-slot-leases")

    async def aclose(self) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
            self._renewer = None
        self._held.clear()

    async def acquire(self, call_id: str, workspace_id: str, workspace_limit: int) -> None:
        outcome, detail = await self._acquire(
            keys=[
                self._key("call", call_id),
                self._key("server", self.server_id),
                self._key("workspace", workspace_id),
            ],
            args=[
                call_id,
                workspace_id,
                self.server_id,
                self.server_limit,
                workspace_limit,
                self._lease_ms,
            ],
        )
        if _text(outcome) == "full":
            raise AtCapacity("server" if _text(detail) == "server" else "workspace")
        if _text(detail) == self.server_id:
            self._held[call_id] = next(self._turns)

    async def hold(self, call_id: str, workspace_id: str) -> None:
        await self._hold(
            keys=[
                self._key("call", call_id),
                self._key("server", self.server_id),
                self._key("workspace", workspace_id),
            ],
            args=[call_id, workspace_id, self.server_id, self._lease_ms, self._prefix],
        )
        self._held[call_id] = next(self._turns)

    async def release(self, call_id: str) -> None:
        self._held.pop(call_id, None)
        await self._release(keys=[self._key("call", call_id)], args=[call_id, self._prefix])

    async def in_use(self, workspace_id: str) -> int:
        return int(await self._count(keys=[self._key("workspace", workspace_id)]))

    async def total(self) -> int:
        return int(await self._count(keys=[self._key("server", self.server_id)]))

    async def _renew_held(self) -> None:
        taken = dict(self._held)
        if not taken:
            return
        lost = await self._renew(
            keys=[self._key("server", self.server_id)],
            args=[self.server_id, self._lease_ms, self._prefix, *taken],
        )
        for call_id in map(_text, lost):
            # Released, held by the process now running it, or lapsed: not ours to renew.
            if self._held.get(call_id) == taken[call_id]:
                log.debug("call %s: slot no longer held by %s", call_id, self.server_id)
                del self._held[call_id]

    async def _renew_forever(self) -> None:
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            try:
                await self._renew_held()
            except (RedisError, OSError):
                # Try again next round; a lease lapses only after three misses in a row.
                log.warning("renewing call slot leases failed", exc_info=True)


def call_slots(settings: Settings, redis: Redis | None) -> CallSlots:
    """Redis-backed slots when this deployment shares live state, else in-process ones."""
    if redis is not None:
        return RedisCallSlots(redis, settings.max_concurrent_calls)
    return LocalCallSlots(settings.max_concurrent_calls)
