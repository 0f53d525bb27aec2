"""A time bound for code that might never return, such as a backtracking regular expression.

A thread cannot give that bound: Python's ``re`` holds the GIL for the whole
match, so ``asyncio.wait_for`` around a thread would hang with it for hours
instead of failing. ``SIGALRM`` can: ``re`` checks for signals while it
backtracks, so the handler's exception ends the match and the test fails.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Raise ``TimeoutError`` inside the block once it has run ``seconds`` (main thread only)."""

    def expire(_signum: int, _frame: FrameType | None) -> None:
        raise TimeoutError(f"still running after {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
