"""Tasks for runners in other processes: they report through files, the only shared channel.

Registered in the package-wide registry, as a real feature's tasks would be,
because ``switchboard worker`` knows no other.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

from switchboard.config import Settings
from switchboard.jobs import JobContext, task
from switchboard.jobs.embedded import EmbeddedQueue
from switchboard.services import Services

REPO = Path(__file__).resolve().parents[2]
CHILD_LEASE_SECONDS = 1.0


@task("tests.touch")
async def touch(ctx: JobContext, *, path: str) -> None:
    await asyncio.to_thread(Path(path).write_text, f"{ctx.job_id} {ctx.attempt}")


@task("tests.hang")
async def hang(ctx: JobContext, *, started: str, done: str) -> None:
    """Hangs on its first run (until the process dies); finishes on the next."""
    if ctx.attempt == 1:
        await asyncio.to_thread(Path(started).write_text, str(os.getpid()))
        await asyncio.Event().wait()
    await asyncio.to_thread(Path(done).write_text, str(ctx.attempt))


async def run_embedded_runner() -> None:
    """A child process running an embedded runner until it is killed."""
    services = await Services.open(Settings(), run_migrations=False)
    queue = EmbeddedQueue(services, lease_seconds=CHILD_LEASE_SECONDS, poll_seconds=0.05)
    await queue.start()
    await asyncio.Event().wait()


async def spawn(code: str, env: dict[str, str], log: Path) -> asyncio.subprocess.Process:
    """Run ``code`` in a child Python with this repository importable and ``env`` added."""
    child_env = {**os.environ, **env, "PYTHONPATH": str(REPO)}
    with log.open("wb") as out:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-c", code, env=child_env, stdout=out, stderr=subprocess.STDOUT
        )


async def kill(process: asyncio.subprocess.Process, sig: signal.Signals) -> int:
    if process.returncode is None:
        process.send_signal(sig)
    async with asyncio.timeout(20):
        return await process.wait()
