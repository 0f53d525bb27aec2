"""Local stand-ins for provider endpoints: they record what a service sends and answer
in the provider's documented wire format, so request shapes are checked without a network."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from websockets.asyncio.server import ServerConnection, serve


@dataclass
class Recorded:
    """Everything a service sent to a peer."""

    paths: list[str] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    bodies: list[Any] = field(default_factory=list)
    binary: list[bytes] = field(default_factory=list)


@asynccontextmanager
async def http_peer(
    respond: Callable[[web.Request, Any], Awaitable[web.StreamResponse]],
) -> AsyncIterator[tuple[str, Recorded]]:
    """An HTTP server on a free loopback port; ``respond`` builds each answer."""
    recorded = Recorded()

    async def handle(request: web.Request) -> web.StreamResponse:
        body = await request.json() if request.can_read_body else None
        recorded.paths.append(request.path_qs)
        recorded.headers.append(dict(request.headers))
        recorded.bodies.append(body)
        return await respond(request, body)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}", recorded
    finally:
        await runner.cleanup()


@asynccontextmanager
async def websocket_peer(
    answer: Callable[[ServerConnection, Any], Awaitable[None]],
) -> AsyncIterator[tuple[str, Recorded]]:
    """A WebSocket server on a free loopback port; ``answer`` replies to each text message."""
    recorded = Recorded()

    async def handler(connection: ServerConnection) -> None:
        assert connection.request is not None
        recorded.paths.append(connection.request.path)
        recorded.headers.append({k.lower(): v for k, v in connection.request.headers.raw_items()})
        async for message in connection:
            if isinstance(message, bytes):
                recorded.binary.append(message)
                continue
            payload = json.loads(message)
            recorded.bodies.append(payload)
            await answer(connection, payload)

    async with serve(handler, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}", recorded
