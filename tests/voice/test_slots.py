"""Call slots: limits per server and per workspace, in one process and across processes.

Each Redis test keeps its keys under its own prefix and deletes them after.
"Another process" is a second ``RedisCallSlots`` with its own server id on the
same Redis; "a process dies" is its slots object closed without releasing, so
nothing renews its leases any more. Leases last 1 s here and every wait is a
bounded poll on Redis, never a sleep.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from redis.asyncio import Redis

from switchboard.config import Settings
from switchboard.voice.slots import (
    AtCapacity,
    CallSlots,
    LocalCallSlots,
    RedisCallSlots,
    call_slots,
)
from tests.conftest import NO_REDIS, REDIS_URL, wait_until

LEASE_SECONDS = 1.0
# Half a lease after the first lease would have lapsed, had nobody renewed it.
PAST_FIRST_EXPIRY_MS = int(LEASE_SECONDS * 1500)
WORKSPACE = "ws_a"
OTHER_WORKSPACE = "ws_b"

MakeSlots = Callable[..., RedisCallSlots]


@pytest.fixture
async def redis_or_none() -> AsyncIterator[Redis | None]:
    if REDIS_URL is None:
        yield None
        return
    client = Redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


@pytest.fixture
def redis(redis_or_none: Redis | None) -> Redis:
    if redis_or_none is None:
        pytest.skip(NO_REDIS)
    return redis_or_none


@pytest.fixture
async def make_slots(redis_or_none: Redis | None) -> AsyncIterator[MakeSlots]:
    """Started-on-demand ``RedisCallSlots`` ("processes") sharing one per-test key prefix."""
    prefix = f"switchboard-test:slots:{uuid.uuid4().hex}:"
    made: list[RedisCallSlots] = []

    def make(server_limit: int = 10, server_id: str | None = None) -> RedisCallSlots:
        if redis_or_none is None:
            pytest.skip(NO_REDIS)
        slots = RedisCallSlots(
            redis_or_none,
            server_limit,
            server_id=server_id,
            lease_seconds=LEASE_SECONDS,
            prefix=prefix,
        )
        made.append(slots)
        return slots

    yield make
    for slots in made:
        await slots.aclose()
    if redis_or_none is not None:
        keys = [key async for key in redis_or_none.scan_iter(match=f"{prefix}*")]
        if keys:
            await redis_or_none.delete(*keys)


@pytest.fixture(params=["local", pytest.param("redis", marks=pytest.mark.redis)])
def new_slots(request: pytest.FixtureRequest, make_slots: MakeSlots) -> Callable[[int], CallSlots]:
    """Either implementation behind the one interface."""
    if request.param == "local":
        return LocalCallSlots
    return make_slots


async def started(slots: CallSlots) -> CallSlots:
    await slots.start()
    return slots


async def redis_now_ms(redis: Redis) -> int:
    seconds, micros = await redis.time()
    return int(seconds) * 1000 + int(micros) // 1000


async def wait_past(redis: Redis, moment_ms: int) -> None:
    """Wait until Redis's clock (the one leases lapse by) has passed ``moment_ms``."""

    async def passed() -> bool:
        return await redis_now_ms(redis) > moment_ms

    await wait_until(passed, what=f"Redis time passing {moment_ms}")


async def test_the_server_limit_refuses_with_its_scope_named(
    new_slots: Callable[[int], CallSlots],
) -> None:
    slots = await started(new_slots(2))
    await slots.acquire("call-1", WORKSPACE, 5)
    await slots.acquire("call-2", OTHER_WORKSPACE, 5)

    with pytest.raises(AtCapacity) as refused:
        await slots.acquire("call-3", WORKSPACE, 5)

    assert refused.value.scope == "server"
    assert await slots.total() == 2
    assert await slots.in_use(WORKSPACE) == 1


async def test_the_workspace_limit_refuses_with_its_scope_named(
    new_slots: Callable[[int], CallSlots],
) -> None:
    slots = await started(new_slots(10))
    await slots.acquire("call-1", WORKSPACE, 1)

    with pytest.raises(AtCapacity) as refused:
        await slots.acquire("call-2", WORKSPACE, 1)

    assert refused.value.scope == "workspace"
    await slots.acquire("call-3", OTHER_WORKSPACE, 1)  # another workspace has its own limit
    assert (await slots.in_use(WORKSPACE), await slots.in_use(OTHER_WORKSPACE)) == (1, 1)
    assert await slots.total() == 2


async def test_acquire_and_release_are_idempotent(new_slots: Callable[[int], CallSlots]) -> None:
    slots = await started(new_slots(1))
    await slots.acquire("call-1", WORKSPACE, 1)
    await slots.acquire("call-1", WORKSPACE, 1)  # the same call again: no second slot, no refusal
    assert (await slots.total(), await slots.in_use(WORKSPACE)) == (1, 1)

    await slots.release("call-1")
    await slots.release("call-1")
    await slots.release("never-acquired")
    assert (await slots.total(), await slots.in_use(WORKSPACE)) == (0, 0)

    await slots.acquire("call-2", WORKSPACE, 1)  # the freed slot is free again
    assert await slots.in_use(WORKSPACE) == 1


async def test_hold_keeps_one_slot_and_release_frees_it(
    new_slots: Callable[[int], CallSlots],
) -> None:
    slots = await started(new_slots(1))
    await slots.acquire("call-1", WORKSPACE, 1)
    await slots.hold("call-1", WORKSPACE)
    await slots.hold("call-1", WORKSPACE)
    assert (await slots.total(), await slots.in_use(WORKSPACE)) == (1, 1)

    await slots.release("call-1")
    assert (await slots.total(), await slots.in_use(WORKSPACE)) == (0, 0)


@pytest.mark.redis
async def test_a_release_from_another_process_frees_the_slot_everywhere(
    redis: Redis, make_slots: MakeSlots
) -> None:
    webhook, elsewhere = make_slots(server_id="a"), make_slots(server_id="b")
    await webhook.start()
    started_at = await redis_now_ms(redis)
    await webhook.acquire("call-1", WORKSPACE, 1)

    await elsewhere.release("call-1")

    assert (await webhook.total(), await webhook.in_use(WORKSPACE)) == (0, 0)
    assert await elsewhere.in_use(WORKSPACE) == 0
    # The process that acquired it goes on renewing what it holds: it must not bring it back.
    await wait_past(redis, started_at + PAST_FIRST_EXPIRY_MS)
    assert (await webhook.total(), await webhook.in_use(WORKSPACE)) == (0, 0)
    await elsewhere.acquire("call-2", WORKSPACE, 1)


@pytest.mark.redis
async def test_a_call_answered_in_one_process_and_run_in_another_counts_once(
    redis: Redis, make_slots: MakeSlots
) -> None:
    webhook, media = make_slots(server_id="a"), make_slots(server_id="b")
    await webhook.start()
    await media.start()
    await webhook.acquire("call-1", WORKSPACE, 1)
    assert (await webhook.total(), await media.total()) == (1, 0)

    await media.hold("call-1", WORKSPACE)

    assert (await webhook.total(), await media.total()) == (0, 1)
    assert await webhook.in_use(WORKSPACE) == 1
    # The webhook's process dies; the media's keeps the lease alive past its first expiry.
    held_at = await redis_now_ms(redis)
    await webhook.aclose()
    await wait_past(redis, held_at + PAST_FIRST_EXPIRY_MS)
    assert (await media.total(), await media.in_use(WORKSPACE)) == (1, 1)
    with pytest.raises(AtCapacity):
        await webhook.acquire("call-2", WORKSPACE, 1)

    await webhook.release("call-1")  # the call may end anywhere
    assert (await media.total(), await media.in_use(WORKSPACE)) == (0, 0)


@pytest.mark.redis
async def test_the_slots_of_a_process_that_dies_lapse_and_stop_counting(
    make_slots: MakeSlots,
) -> None:
    dying, survivor = make_slots(server_id="a"), make_slots(server_id="b")
    await dying.start()
    await survivor.start()
    await dying.acquire("call-1", WORKSPACE, 2)
    await dying.acquire("call-2", WORKSPACE, 2)
    assert await survivor.in_use(WORKSPACE) == 2

    await dying.aclose()  # no release: its leases are simply no longer renewed

    async def lapsed() -> bool:
        return await survivor.in_use(WORKSPACE) == 0

    await wait_until(lapsed, seconds=5 * LEASE_SECONDS, what="the dead process's leases lapsing")
    await survivor.acquire("call-3", WORKSPACE, 2)
    await survivor.acquire("call-4", WORKSPACE, 2)
    assert await survivor.in_use(WORKSPACE) == 2


@pytest.mark.redis
async def test_a_held_lease_is_renewed_past_its_ttl_while_its_holder_lives(
    redis: Redis, make_slots: MakeSlots
) -> None:
    holder, other = make_slots(server_id="a"), make_slots(server_id="b")
    await holder.start()
    acquired_at = await redis_now_ms(redis)
    await holder.acquire("call-1", WORKSPACE, 1)

    await wait_past(redis, acquired_at + PAST_FIRST_EXPIRY_MS)

    assert (await holder.total(), await other.in_use(WORKSPACE)) == (1, 1)
    with pytest.raises(AtCapacity) as refused:
        await other.acquire("call-2", WORKSPACE, 1)
    assert refused.value.scope == "workspace"


@pytest.mark.redis
async def test_concurrent_acquires_in_two_processes_never_exceed_the_limits(
    make_slots: MakeSlots,
) -> None:
    first, second = make_slots(server_limit=4, server_id="a"), make_slots(server_id="b")
    attempts = [(first if n % 2 else second).acquire(f"call-{n}", WORKSPACE, 5) for n in range(60)]

    outcomes = await asyncio.gather(*attempts, return_exceptions=True)

    refusals = [o for o in outcomes if o is not None]
    assert all(isinstance(o, AtCapacity) for o in refusals)
    assert len(outcomes) - len(refusals) == 5
    assert await first.in_use(WORKSPACE) == 5
    assert await first.total() <= 4

    # The server limit holds under the same race, each call in its own workspace.
    solo = make_slots(server_limit=3, server_id="c")
    outcomes = await asyncio.gather(
        *(solo.acquire(f"solo-{n}", f"ws-{n}", 5) for n in range(30)), return_exceptions=True
    )
    refused_scopes = {o.scope for o in outcomes if isinstance(o, AtCapacity)}
    assert outcomes.count(None) == 3
    assert refused_scopes == {"server"}
    assert await solo.total() == 3


def test_the_factory_shares_slots_through_redis_only_when_it_is_configured(
    tmp_path: Path,
) -> None:
    settings = Settings(data_dir=tmp_path, max_concurrent_calls=7)

    local = call_slots(settings, None)
    shared = call_slots(settings, Redis())  # never connected: building it touches nothing

    assert isinstance(local, LocalCallSlots) and local.server_limit == 7
    assert isinstance(shared, RedisCallSlots) and shared.server_limit == 7
