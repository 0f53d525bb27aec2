"""``switchboard worker``: runs distributed-mode jobs (procrastinate) until SIGTERM or SIGINT.

The lead registers it with ``app.command("worker")(worker)``. On a signal
the worker stops fetching, lets running jobs finish for the grace period and
puts the rest back for another worker.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from switchboard.config import Settings
from switchboard.jobs.queue import CONCURRENCY
from switchboard.jobs.tasks import import_task_modules

console = Console(stderr=True)


def worker(
    concurrency: Annotated[
        int, typer.Option(min=1, help="Jobs run at once by this worker.")
    ] = CONCURRENCY,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir", help="Holds switchboard.db and recordings/ (SWITCHBOARD_DATA_DIR)."
        ),
    ] = None,
) -> None:
    """Run jobs (SWITCHBOARD_JOBS=procrastinate, on PostgreSQL) until SIGTERM or SIGINT."""
    from switchboard.cli import load_settings  # here: switchboard.cli imports this module

    settings = load_settings(data_dir)
    if settings.jobs != "procrastinate":
        console.print(
            "[red]configuration error:[/] `switchboard worker` runs distributed jobs; set"
            " SWITCHBOARD_JOBS=procrastinate (in-process jobs run inside `switchboard serve`)"
        )
        raise typer.Exit(2)
    logging.basicConfig(level=settings.log_level, format="%(levelname)s %(name)s: %(message)s")
    asyncio.run(run_worker(settings, concurrency=concurrency))


async def run_worker(settings: Settings, *, concurrency: int = CONCURRENCY) -> None:
    """Open the process's services, run a procrastinate worker, close everything after it."""
    # Imported here: psycopg needs libpq, which in-process mode does not.
    from switchboard.jobs.distributed import ProcrastinateQueue
    from switchboard.services import Services

    import_task_modules()
    services = await Services.open(settings)
    queue = ProcrastinateQueue(services, concurrency=concurrency)
    try:
        console.print(f"worker running [bold]{concurrency}[/] job(s) at a time; Ctrl-C stops it")
        await queue.run_worker()
    finally:
        await queue.stop()
        await services.close()
