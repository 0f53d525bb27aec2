"""A tool backend on 127.0.0.1 for tests: the demo appointment book plus failure modes.

Every request is kept (method, path, headers, body) so tests can check what
the platform sent, signature included.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from multidict import CIMultiDict

from switchboard.demo.booking import AppointmentBook


@dataclass
class Received:
    method: str
    path: str
    query: dict[str, str]
    headers: CIMultiDict[str]  # names compare case-insensitively, as in HTTP
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Backend:
    base: str
    book: AppointmentBook
    received: list[Received] = field(default_factory=list)
    flaky_failures: int = 0  # /flaky answers 503 this many times, then 200
    customer: dict[str, Any] = field(default_factory=lambda: {"customer_name": "Sam"})

    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    def to(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]


@asynccontextmanager
async def tool_backend() -> AsyncIterator[Backend]:
    app = web.Application()
    never = asyncio.Event()
    backend = Backend(base="", book=AppointmentBook())

    @web.middleware
    async def keep(request: web.Request, handler: Any) -> web.StreamResponse:
        backend.received.append(
            Received(
                request.method,
                request.path,
                dict(request.query),
                CIMultiDict(request.headers),
                await request.read(),
            )
        )
        response: web.StreamResponse = await handler(request)
        return response

    async def appointments(request: web.Request) -> web.Response:
        body = await request.json()
        status, answer = backend.book.book(str(body.get("day", "")), str(body.get("time", "")))
        return web.json_response(answer, status=status)

    async def lookup(request: web.Request) -> web.Response:
        return web.json_response(backend.customer)

    async def hang(request: web.Request) -> web.Response:
        await never.wait()
        return web.json_response({"late": True})

    async def flaky(request: web.Request) -> web.Response:
        if backend.flaky_failures > 0:
            backend.flaky_failures -= 1
            return web.json_response({"error": "busy"}, status=503)
        return web.json_response({"status": "ok", "query": dict(request.query)})

    async def missing(request: web.Request) -> web.Response:
        return web.json_response({"error": "no such order"}, status=404)

    app.middlewares.append(keep)
    app.router.add_post("/appointments", appointments)
    app.router.add_route("*", "/lookup", lookup)
    app.router.add_route("*", "/hang", hang)
    app.router.add_route("*", "/flaky", flaky)
    app.router.add_route("*", "/missing", missing)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    backend.base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield backend
    finally:
        never.set()
        await runner.cleanup()
