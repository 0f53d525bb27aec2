"""The live server most e2e call tests share: SQLite only (see test_call_behaviour)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from switchboard.config import Settings
from tests.e2e.live import LiveServer, live_server


@pytest.fixture
async def server(sqlite_settings: Settings) -> AsyncIterator[LiveServer]:
    async with live_server(sqlite_settings) as live:
        yield live
