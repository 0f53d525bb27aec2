"""Pacing: how many calls a campaign may start at one tick.

Three limits, the smallest wins:

- ``max_concurrent`` calls live at once (less the ones live now), and never more
  than the workspace has slots free across all its campaigns;
- ``calls_per_second``: a token bucket, refilled at that rate and holding at
  most one second's worth (at least one call), so over any stretch of ``T``
  seconds a campaign starts at most ``calls_per_second * T + burst`` calls;
- the abandonment budget: an answered call the agent does not speak to within
  two seconds counts as abandoned (47 CFR 64.1200(a)(7) allows 3 % over 30
  days); as a campaign's rate nears its target, its concurrency is halved, and
  at the target it drops to a single call at a time.

Pure functions: the hopper keeps the bucket on the campaign row, and the
property tests drive them with a simulated clock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

ABANDON_SECONDS = 2.0  # an answered call not spoken to within this is abandoned
SLOWDOWN_SHARE = 0.8  # of the target: from here concurrency is halved


@dataclass(frozen=True)
class Limits:
    max_concurrent: int
    calls_per_second: float
    abandon_target: float = 0.03

    @property
    def burst(self) -> float:
        return max(1.0, self.calls_per_second)


@dataclass(frozen=True)
class Bucket:
    """The calls-per-second token bucket: tokens left and when it was last refilled."""

    tokens: float
    at: datetime | None


def refill(limits: Limits, bucket: Bucket, now: datetime) -> Bucket:
    if bucket.at is None:
        return Bucket(limits.burst, now)
    elapsed = max(0.0, (now - bucket.at).total_seconds())
    return Bucket(min(limits.burst, bucket.tokens + elapsed * limits.calls_per_second), now)


def concurrency(limits: Limits, abandon_rate: float | None) -> int:
    """The concurrency allowed with this 30-day abandonment rate (None: nothing answered yet)."""
    if abandon_rate is None or abandon_rate < limits.abandon_target * SLOWDOWN_SHARE:
        return limits.max_concurrent
    if abandon_rate < limits.abandon_target:
        return max(1, limits.max_concurrent // 2)
    return 1


def capacity(
    limits: Limits,
    bucket: Bucket,
    *,
    live: int,
    workspace_free: int,
    abandon_rate: float | None,
    now: datetime,
) -> tuple[int, Bucket]:
    """How many calls to start now, and the bucket once they are taken from it."""
    bucket = refill(limits, bucket, now)
    free = min(
        concurrency(limits, abandon_rate) - live,
        math.floor(bucket.tokens + 1e-9),
        workspace_free,
    )
    return max(0, free), bucket


def spend(bucket: Bucket, started: int) -> Bucket:
    return Bucket(bucket.tokens - started, bucket.at)


def abandon_rate(answered: int, abandoned: int) -> float | None:
    return None if answered == 0 else abandoned / answered
