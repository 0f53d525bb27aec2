"""Test tasks that report to a ``Probe``: what ran, with which arguments, how many at once.

Each test builds its own registry around its own probe, so no task or state
leaks between tests.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from switchboard.jobs import JobContext, Retry, TaskRegistry

FAST_RETRY = Retry(max_attempts=3, base_seconds=0.2, max_seconds=0.3)
EVERY_SECOND = "* * * * * *"


@dataclass(frozen=True)
class Run:
    task: str
    job_id: str
    attempt: int
    args: dict[str, Any]
    at: float  # time.monotonic()


@dataclass
class Probe:
    runs: list[Run] = field(default_factory=list)
    running: int = 0
    max_running: int = 0
    gate: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(0))
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def record(self, task: str, ctx: JobContext, args: dict[str, Any]) -> None:
        self.runs.append(Run(task, ctx.job_id, ctx.attempt, args, time.monotonic()))
        await self._notify()

    async def hold(self, ctx: JobContext) -> None:
        """Run until the test lets one job through ``gate``."""
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        await self.record("test.hold", ctx, {})
        try:
            await self.gate.acquire()
        finally:
            self.running -= 1
            await self._notify()

    def runs_of(self, task: str) -> list[Run]:
        return [run for run in self.runs if run.task == task]

    async def wait_for(
        self, condition: Callable[[], bool], what: str, seconds: float = 10.0
    ) -> None:
        try:
            async with asyncio.timeout(seconds), self.changed:
                await self.changed.wait_for(condition)
        except TimeoutError:
            raise AssertionError(f"{what} did not happen within {seconds} s") from None

    async def _notify(self) -> None:
        async with self.changed:
            self.changed.notify_all()


def registry_for(probe: Probe, *, periodic: bool = False) -> TaskRegistry:
    registry = TaskRegistry()

    @registry.task("test.record")
    async def record(ctx: JobContext, **args: Any) -> None:
        await probe.record("test.record", ctx, args)

    @registry.task("test.fail", retry=FAST_RETRY)
    async def fail(ctx: JobContext) -> None:
        await probe.record("test.fail", ctx, {})
        raise RuntimeError(f"boom on run {ctx.attempt}")

    @registry.task("test.flaky", retry=FAST_RETRY)
    async def flaky(ctx: JobContext) -> None:
        await probe.record("test.flaky", ctx, {})
        if ctx.attempt == 1:
            raise RuntimeError("first run fails")

    @registry.task("test.hold")
    async def hold(ctx: JobContext) -> None:
        await probe.hold(ctx)

    if periodic:

        @registry.task("test.tick", cron=EVERY_SECOND)
        async def tick(ctx: JobContext) -> None:
            await probe.record("test.tick", ctx, {})

    return registry
