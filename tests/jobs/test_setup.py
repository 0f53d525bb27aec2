"""Choosing the runner by settings, and preparing procrastinate's storage."""

from __future__ import annotations

import asyncio

import psycopg
import pytest
import typer
from typer.testing import CliRunner

from switchboard.config import Settings
from switchboard.errors import ConfigurationError
from switchboard.jobs import create_job_queue, prepare_job_storage
from switchboard.jobs.cli import worker
from switchboard.jobs.distributed import ProcrastinateQueue, psycopg_conninfo
from switchboard.jobs.embedded import EmbeddedQueue
from switchboard.services import Services
from tests.jobs.conftest import ON_POSTGRES


def test_our_database_url_becomes_a_libpq_uri() -> None:
    assert (
        psycopg_conninfo("postgresql+asyncpg://u:p%40ss@db:5433/sb?ssl=require")
        == "postgresql://u:p%40ss@db:5433/sb?sslmode=require"
    )
    with pytest.raises(ConfigurationError, match="PostgreSQL"):
        psycopg_conninfo("sqlite+aiosqlite:///switchboard.db")


async def test_the_queue_follows_the_jobs_setting(settings: Settings) -> None:
    services = await Services.open(settings, run_migrations=False)
    try:
        assert isinstance(create_job_queue(services), EmbeddedQueue)
        if settings.resolved_database_url.startswith("postgresql"):
            services.settings = settings.model_copy(update={"jobs": "procrastinate"})
            assert isinstance(create_job_queue(services), ProcrastinateQueue)
    finally:
        await services.close()


@ON_POSTGRES
async def test_procrastinate_schema_is_applied_once_even_when_raced(settings: Settings) -> None:
    distributed = settings.model_copy(update={"jobs": "procrastinate"})
    await asyncio.gather(*(prepare_job_storage(distributed) for _ in range(3)))
    await prepare_job_storage(distributed)

    conninfo = psycopg_conninfo(settings.resolved_database_url)
    async with await psycopg.AsyncConnection.connect(conninfo) as conn:
        row = await (await conn.execute("SELECT to_regclass('procrastinate_jobs')")).fetchone()
    assert row is not None and row[0] is not None


async def test_prepare_job_storage_does_nothing_for_the_embedded_runner(
    settings: Settings,
) -> None:
    await prepare_job_storage(settings)  # no procrastinate schema, no error, even on SQLite


def test_switchboard_worker_refuses_to_run_in_process_mode() -> None:
    app = typer.Typer()
    app.command()(worker)
    result = CliRunner().invoke(app, [])
    assert result.exit_code == 2
    assert "SWITCHBOARD_JOBS=procrastinate" in result.output
