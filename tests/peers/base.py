"""What every carrier peer shares: an ASGI app that records each request it gets.

A peer is reached in-process: ``peer.client()`` is an ``httpx.AsyncClient``
over ``httpx.ASGITransport``, so a carrier module talks to it exactly as it
talks to the real API (absolute URLs, its own auth), only without a network.
``fail_next_status`` makes the next request fail the way the carrier
documents a rate limit or an outage, before any routing or auth, as a real
gateway would. ``unreachable_url`` and ``silent_server`` are the two network
faults a peer in the same process cannot play: nobody listening, and a host
that accepts the connection but never answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import httpx
from fastapi import FastAPI
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the peer received it, for assertions."""

    method: str
    path: str  # decoded, as routed
    raw_path: str  # as sent on the wire, percent-escapes kept
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes

    @property
    def host(self) -> str:
        return self.headers.get("host", "")

    @property
    def form(self) -> dict[str, list[str]]:
        """The body as ``application/x-www-form-urlencoded``, every value of every name."""
        return parse_qs(self.body.decode(), keep_blank_values=True)

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class Callback:
    """A request the carrier sends to one of our URLs, as our webhook would receive it."""

    url: str
    method: str = "POST"
    headers: dict[str, str] = field(default_factory=dict)
    form: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


class CarrierPeer:
    """Base of the peers: records requests, then hands them to ``self.app`` (FastAPI)."""

    def __init__(self) -> None:
        self.app = FastAPI()
        self.requests: list[RecordedRequest] = []
        self._failures: list[Response] = []

    def client(self, **kwargs: Any) -> httpx.AsyncClient:
        """An HTTP client whose every request, whatever its host, reaches this peer."""
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self), **kwargs)

    @property
    def last(self) -> RecordedRequest:
        return self.requests[-1]

    def error_for_status(self, status: int) -> Response:
        """The carrier's documented error response for ``status`` (each peer says how)."""
        raise NotImplementedError

    def fail_next_status(self, status: int) -> None:
        """Answer the next request with the carrier's error for ``status`` (429, 500, 503...)."""
        self._failures.append(self.error_for_status(status))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = bool(message.get("more_body", False))
        self.requests.append(
            RecordedRequest(
                method=scope["method"],
                path=scope["path"],
                raw_path=scope.get("raw_path", scope["path"].encode()).decode("latin-1"),
                query=parse_qs(scope.get("query_string", b"").decode(), keep_blank_values=True),
                headers={
                    k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]
                },
                body=body,
            )
        )
        if self._failures:
            await self._failures.pop(0)(scope, receive, send)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def unreachable_url() -> str:
    """A loopback URL nobody listens on: connecting to it is refused at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@contextlib.asynccontextmanager
async def silent_server() -> AsyncIterator[str]:
    """A loopback host that accepts connections and never answers: a hung carrier API."""
    writers: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        with contextlib.suppress(ConnectionError):
            await reader.read()  # until the client gives up and closes

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        for writer in writers:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
        server.close()
        await server.wait_closed()
