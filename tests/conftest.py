"""Shared fixtures: a fresh, migrated database per test on SQLite and (when configured) PostgreSQL.

Each test gets its own database, copied from a template migrated once per
session: a SQLite file copy, or ``CREATE DATABASE ... TEMPLATE`` on
PostgreSQL. Nothing a test writes can be seen by another.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from cryptography.fernet import Fernet
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from switchboard.app import create_app
from switchboard.auth.service import create_api_key, get_or_create_workspace
from switchboard.config import Settings
from switchboard.db import migrate
from switchboard.db.engine import create_engine
from switchboard.db.models import Role
from switchboard.services import Services

# Read once, before the autouse fixture below clears SWITCHBOARD_* for every test.
PG_URL = os.environ.get("SWITCHBOARD_TEST_DATABASE_URL")
REDIS_URL = os.environ.get("SWITCHBOARD_TEST_REDIS_URL")
NO_PG = "SWITCHBOARD_TEST_DATABASE_URL is not set: PostgreSQL variant not run"
NO_REDIS = "SWITCHBOARD_TEST_REDIS_URL is not set: Redis test not run"
_counter = itertools.count()

if os.environ.get("CI") == "true" and not (PG_URL and REDIS_URL):
    # Locally a missing service skips its variant with a reason; CI must run everything.
    raise RuntimeError("CI needs SWITCHBOARD_TEST_DATABASE_URL and SWITCHBOARD_TEST_REDIS_URL")


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A developer's own SWITCHBOARD_* variables or .env never leak into a test."""
    for name in list(os.environ):
        if name.startswith("SWITCHBOARD_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def _asyncpg_dsn(url: str, database: str | None = None) -> str:
    parsed = make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


async def _pg_admin(sql: str) -> None:
    assert PG_URL is not None
    conn = await asyncpg.connect(_asyncpg_dsn(PG_URL))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _migrate(url: str) -> None:
    engine = create_engine(url)
    try:
        await migrate.upgrade(engine)
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    asyncio.run(_migrate(f"sqlite+aiosqlite:///{path}"))
    return path


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    if PG_URL is None:
        pytest.skip(NO_PG)
    name = f"sbtest_tmpl_{os.getpid()}"
    asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    asyncio.run(_migrate(make_url(PG_URL).set(database=name).render_as_string(False)))
    yield name
    asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def _own_database(
    request: pytest.FixtureRequest, tmp_path: Path, *, migrated: bool
) -> Iterator[str]:
    if request.param == "sqlite":
        path = tmp_path / "switchboard.db"
        if migrated:
            shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    if PG_URL is None:
        pytest.skip(NO_PG)
    template = f' TEMPLATE "{request.getfixturevalue("pg_template")}"' if migrated else ""
    name = f"sbtest_{os.getpid()}_{next(_counter)}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"{template}'))
    yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated database of this test's own, on each backend."""
    yield from _own_database(request, tmp_path, migrated=True)


@pytest.fixture(params=BACKENDS)
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with no schema at all, on each backend (for migration tests)."""
    yield from _own_database(request, tmp_path, migrated=False)


def settings_for(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        secret_key=Fernet.generate_key().decode(),
    )


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return settings_for(database_url, tmp_path)


@pytest.fixture
def sqlite_settings(tmp_path: Path, sqlite_template: Path) -> Settings:
    """Settings on a SQLite database of this test's own, for tests that need one backend only."""
    path = tmp_path / "switchboard.db"
    shutil.copyfile(sqlite_template, path)
    return settings_for(f"sqlite+aiosqlite:///{path}", tmp_path)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with LifespanManager(application):
        yield application


@pytest.fixture
def services(app: FastAPI) -> Services:
    result: Services = app.state.services
    return result


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


@dataclass
class Tenant:
    """A workspace and one key per role, for calling the API as each of them."""

    workspace_id: str
    keys: dict[Role, str]

    def auth(self, role: Role = Role.OWNER) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"}


async def make_tenant(services: Services, name: str) -> Tenant:
    async with services.sessions() as session:
        workspace, _ = await get_or_create_workspace(session, name)
        keys = {}
        for role in Role:
            _, plaintext = await create_api_key(session, workspace.id, role, f"{role.value} key")
            keys[role] = plaintext
        await session.commit()
        return Tenant(workspace_id=workspace.id, keys=keys)


@pytest.fixture
async def tenant(services: Services) -> Tenant:
    return await make_tenant(services, "acme")


@pytest.fixture
async def other_tenant(services: Services) -> Tenant:
    return await make_tenant(services, "globex")


def unique(prefix: str) -> str:
    return f"{prefix}-{next(_counter)}"


async def wait_until(
    condition: Callable[[], Awaitable[bool]],
    *,
    seconds: float = 5.0,
    what: str = "condition",
    every: float = 0.01,
) -> None:
    """Poll ``condition`` until it holds; fail after ``seconds``.

    For effects that cross a process or network boundary (Redis pub/sub, a
    subprocess) where no in-process event can be awaited. A costly ``condition``
    (a whole batch over the API) is checked less often (``every``).
    """
    try:
        async with asyncio.timeout(seconds):
            while not await condition():  # noqa: ASYNC110 - the signal lives in another process
                await asyncio.sleep(every)
    except TimeoutError:
        pytest.fail(f"{what} did not happen within {seconds} s")
