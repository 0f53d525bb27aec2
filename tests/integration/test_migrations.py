"""Migrations build the schema the models describe, on both databases, and step back cleanly."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from switchboard.db import migrate
from switchboard.db.base import Base
from switchboard.db.engine import create_engine


async def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
    finally:
        await engine.dispose()


async def _columns(url: str, table: str) -> set[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            columns = await conn.run_sync(lambda c: inspect(c).get_columns(table))
            return {column["name"] for column in columns}
    finally:
        await engine.dispose()


async def test_upgrade_from_empty_matches_models(empty_database_url: str) -> None:
    engine = create_engine(empty_database_url)
    try:
        assert await migrate.current_revision(engine) is None
        await migrate.upgrade(engine)
        assert await migrate.current_revision(engine) == migrate.head_revision()
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda c: compare_metadata(
                    MigrationContext.configure(c, opts={"compare_type": True}), Base.metadata
                )
            )
        assert diff == []
    finally:
        await engine.dispose()
    assert set(Base.metadata.tables) <= await _tables(empty_database_url)


async def test_downgrade_one_step_then_upgrade_again(empty_database_url: str) -> None:
    engine = create_engine(empty_database_url)
    try:
        await migrate.upgrade(engine)
        await migrate.downgrade(engine, "-1")
        assert await migrate.current_revision(engine) == "0008"
        assert "campaigns" not in await _tables(empty_database_url)
        await migrate.downgrade(engine, "0007")
        assert "batches" not in await _tables(empty_database_url)
        await migrate.downgrade(engine, "0004")
        assert "webhook_nonces" not in await _tables(empty_database_url)
        assert "placed_at" not in await _columns(empty_database_url, "calls")
        await migrate.downgrade(engine, "-1")
        assert await migrate.current_revision(engine) == "0003"
        assert "tool_ids" in await _columns(empty_database_url, "flow_nodes")
        await migrate.downgrade(engine, "-1")
        assert await migrate.current_revision(engine) == "0002"
        tables = await _tables(empty_database_url)
        assert "calls" in tables
        assert "provider_credentials" not in tables
        await migrate.upgrade(engine)
        assert await migrate.current_revision(engine) == migrate.head_revision()
        await migrate.downgrade(engine, "base")
        assert await migrate.current_revision(engine) is None
    finally:
        await engine.dispose()
    assert await _tables(empty_database_url) <= {"alembic_version"}
