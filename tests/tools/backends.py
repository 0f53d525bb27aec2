"""A tool backend on 127.0.0.1 for tests: the demo appointment book plus failure modes.

Every request is kept (method, path, headers, body) so tests can check what
the platform sent, signature included. ``file_server`` is a plain HTTP server
in a thread of its own, for code that might fetch with blocking urllib.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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

    async def redirect(request: web.Request) -> web.Response:
        return web.Response(status=307, headers={"Location": request.query["to"]})

    app.middlewares.append(keep)
    app.router.add_post("/appointments", appointments)
    app.router.add_route("*", "/lookup", lookup)
    app.router.add_route("*", "/hang", hang)
    app.router.add_route("*", "/flaky", flaky)
    app.router.add_route("*", "/missing", missing)
    app.router.add_route("*", "/redirect", redirect)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    backend.base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield backend
    finally:
        never.set()
        await runner.cleanup()


@dataclass
class FileServer:
    base: str
    requested: list[str] = field(default_factory=list)  # the path of every request

    def url(self, path: str) -> str:
        return f"{self.base}{path}"


@contextmanager
def file_server(body: bytes) -> Iterator[FileServer]:
    """Answers every GET on 127.0.0.1 with ``body`` (JSON), from a thread of its own.

    Not on the event loop: code that fetches with blocking urllib from the loop's
    thread would otherwise wait forever for a server that cannot run.
    """
    server = FileServer(base="")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            server.requested.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output quiet

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, name="file-server", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()
