"""A scripted stand-in for a Switchboard server, as a Twilio-connected app behaves.

It answers the voice webhook with TwiML, speaks on the media socket and
serves a transcript. Its behaviour is a script (``Script``): a greeting, a
reply a set delay after each caller line ends, optional stalls, a clear, a
hang-up. It detects the end of a caller line the way a VAD would, but
exactly: the first all-silent frame after frames with sound.

Served by uvicorn on a socket bound before the server starts, so a client
can connect at once: the kernel queues the connection until uvicorn accepts.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import math
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import numpy as np
import uvicorn
from pipecat.audio.utils import create_file_resampler, pcm_to_ulaw
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

FRAME = 160
APP_CHUNK = 800  # 100 ms of µ-law per message from the app
SILENCE = 0xFF
API_KEY = "sb_test_key"


async def tone(seconds: float, frequency: float = 440.0) -> bytes:
    """A sine tone as 8 kHz µ-law."""
    t = np.arange(round(seconds * 8000)) / 8000
    pcm = (np.sin(2 * math.pi * frequency * t) * 12000).astype("<i2").tobytes()
    return bytes(await pcm_to_ulaw(pcm, 8000, 8000, create_file_resampler()))


@dataclass
class Script:
    greeting_seconds: float = 0.4
    reply_delay: float = 0.3  # after the caller's last frame with sound
    reply_seconds: float = 0.5
    reply_stall: float = 0.0  # send the first 0.2 s, wait this long from then, send the rest
    reply: bool = True
    reject_with: str | None = None  # answer <Say>this</Say><Hangup/>
    clear_after_frames: int | None = None  # send a clear once this many frames came in
    hang_up_after_replies: int | None = None
    mark_after_greeting: str | None = None


@dataclass
class Received:
    at: float
    message: dict[str, Any]


@dataclass
class FakeTwilioApp:
    script: Script = field(default_factory=Script)
    port: int = 0
    webhooks: list[dict[str, str]] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    line_ends: list[float] = field(default_factory=list)  # arrival of each line's last sound
    replies_sent: list[float] = field(default_factory=list)

    def media(self, event: str = "media") -> list[Received]:
        return [r for r in self.received if r.message.get("event") == event]

    def starlette(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/telephony/simulator/inbound", self.inbound, methods=["POST"]),
                WebSocketRoute("/media/simulator/{call_id}", self.media_socket),
                Route("/api/v1/calls/{call_id}/transcript", self.transcript),
                Route("/api/v1/calls/{call_id}", self.call_status),
            ]
        )

    async def inbound(self, request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode()))
        self.webhooks.append(form)
        if self.script.reject_with is not None:
            markup = f"<Response><Say>{self.script.reject_with}</Say><Hangup/></Response>"
        else:
            url = f"ws://127.0.0.1:{self.port}/media/simulator/call-{len(self.webhooks)}"
            markup = (
                f'<Response><Connect><Stream url="{url}">'
                f'<Parameter name="to" value="{form.get("To", "")}"/>'
                "</Stream></Connect></Response>"
            )
        return Response(markup, media_type="application/xml")

    async def transcript(self, request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {API_KEY}":
            return JSONResponse({"title": "unauthorized"}, status_code=401)
        turns = [
            {
                "index": i,
                "role": "agent",
                "text": "Hello from the fake app." if i == 0 else f"Fake reply {i}.",
                "started_at": "2026-01-01T00:00:00Z",
                "ended_at": "2026-01-01T00:00:01Z",
                "interrupted": False,
            }
            for i in range(len(self.replies_sent) + 1)
        ]
        return JSONResponse(turns)

    async def call_status(self, request: Request) -> Response:
        call_id = request.path_params["call_id"]
        return JSONResponse({"id": call_id, "status": "completed", "end_reason": "caller"})

    async def media_socket(self, ws: WebSocket) -> None:
        await ws.accept()
        loop = asyncio.get_running_loop()
        tasks: list[asyncio.Task[None]] = []
        frames = 0
        in_line = False
        last_sound = 0.0
        try:
            while True:
                message = json.loads(await ws.receive_text())
                now = loop.time()
                self.received.append(Received(now, message))
                event = message["event"]
                if event == "start":
                    tasks.append(asyncio.create_task(self._greet(ws)))
                elif event == "stop":
                    break
                elif event == "media":
                    frames += 1
                    if frames == self.script.clear_after_frames:
                        await ws.send_text(json.dumps({"event": "clear", "streamSid": "MZ"}))
                    payload = base64.b64decode(message["media"]["payload"])
                    if payload != bytes([SILENCE]) * FRAME:
                        in_line, last_sound = True, now
                    elif in_line:
                        in_line = False
                        self.line_ends.append(last_sound)
                        if self.script.reply:
                            tasks.append(asyncio.create_task(self._reply(ws, last_sound)))
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            with contextlib.suppress(RuntimeError, WebSocketDisconnect):
                await ws.close()

    async def _send_audio(self, ws: WebSocket, ulaw: bytes) -> None:
        """Send at once, in 100 ms messages: the phone buffers them, well ahead of playback."""
        for offset in range(0, len(ulaw), APP_CHUNK):
            payload = base64.b64encode(ulaw[offset : offset + APP_CHUNK]).decode()
            await ws.send_text(
                json.dumps({"event": "media", "streamSid": "MZ", "media": {"payload": payload}})
            )

    async def _greet(self, ws: WebSocket) -> None:
        if self.script.greeting_seconds:
            await self._send_audio(ws, await tone(self.script.greeting_seconds))
        if self.script.mark_after_greeting:
            name = self.script.mark_after_greeting
            await ws.send_text(json.dumps({"event": "mark", "mark": {"name": name}}))

    async def _reply(self, ws: WebSocket, line_end: float) -> None:
        loop = asyncio.get_running_loop()
        audio = await tone(self.script.reply_seconds, 660.0)
        await asyncio.sleep(max(0.0, line_end + self.script.reply_delay - loop.time()))
        self.replies_sent.append(loop.time())
        if self.script.reply_stall:
            first_part = 1600  # 0.2 s
            started = loop.time()
            await self._send_audio(ws, audio[:first_part])
            await asyncio.sleep(max(0.0, started + self.script.reply_stall - loop.time()))
            audio = audio[first_part:]
        await self._send_audio(ws, audio)
        if len(self.replies_sent) == self.script.hang_up_after_replies:
            await ws.close()


def _bound_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    return sock


def _server(app: FakeTwilioApp) -> tuple[uvicorn.Server, socket.socket]:
    sock = _bound_socket()
    app.port = sock.getsockname()[1]
    config = uvicorn.Config(
        app.starlette(),
        ws="websockets-sansio",
        lifespan="off",
        log_config=None,
        log_level="warning",
        timeout_graceful_shutdown=2,
    )
    return uvicorn.Server(config), sock


@contextlib.asynccontextmanager
async def serving(app: FakeTwilioApp) -> AsyncIterator[str]:
    """Serve ``app`` in this event loop; yields ``127.0.0.1:port``."""
    server, sock = _server(app)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield f"127.0.0.1:{app.port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


@contextlib.contextmanager
def serving_in_thread(app: FakeTwilioApp) -> Iterator[str]:
    """Serve ``app`` from a thread with its own loop, for code that calls ``asyncio.run``."""
    server, sock = _server(app)
    thread = threading.Thread(target=asyncio.run, args=(server.serve(sockets=[sock]),))
    thread.start()
    try:
        yield f"127.0.0.1:{app.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
