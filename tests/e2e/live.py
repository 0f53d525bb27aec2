"""A real Switchboard server on a loopback port, inside the test's event loop, and helpers
to configure agents and ring them with the local phone (Twilio Media Streams)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from switchboard.agents.schema import AgentConfig
from switchboard.agents.service import create_agent
from switchboard.api.body_limit import MAX_WEBSOCKET_MESSAGE_BYTES
from switchboard.app import create_app
from switchboard.auth.service import Principal, create_api_key, get_or_create_workspace
from switchboard.caller.conversation import ConversationSettings, RenderedLine, place_call
from switchboard.caller.media_client import MediaStreamClient
from switchboard.caller.twilio_messages import StreamIdentity
from switchboard.calls import service as calls
from switchboard.config import Settings
from switchboard.db.models import Call, CallStatus, PhoneNumber, Role
from switchboard.providers.phone_line import encode_phone_line, read_wav
from switchboard.services import Services
from tests.conftest import wait_until

AUDIO = Path(__file__).resolve().parents[1] / "fixtures" / "audio"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class LiveServer:
    app: FastAPI
    address: str  # host:port, as `switchboard call --server` takes it
    services: Services
    workspace_id: str
    key: str

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    async def finished_call(self, call_id: str, *, seconds: float = 10) -> Call:
        """The call's record once the session has finished it (the phone may hang up first)."""

        async def finished() -> bool:
            async with self.services.sessions() as session:
                call = await calls.get_call(session, self.workspace_id, call_id)
            return call.status not in (
                CallStatus.QUEUED,
                CallStatus.RINGING,
                CallStatus.IN_PROGRESS,
            )

        await wait_until(finished, seconds=seconds, what=f"call {call_id} being finished")
        async with self.services.sessions() as session:
            return await calls.get_call(session, self.workspace_id, call_id)

    async def agent(self, number: str, carrier: str = "simulator", **fields: Any) -> str:
        """Create an agent answering ``number`` (E.164) on ``carrier``; returns its id."""
        config = AgentConfig.model_validate(
            {"name": number, "system_prompt": "Be brief.", **fields}
        )
        async with self.services.sessions() as session:
            principal = Principal(workspace_id=self.workspace_id, key_id="test", role=Role.OWNER)
            agent = await create_agent(session, principal, config, allow_testing=True)
            session.add(
                PhoneNumber(
                    workspace_id=self.workspace_id,
                    number=number,
                    carrier=carrier,
                    agent_id=agent.id,
                )
            )
            await session.commit()
            return agent.id


LONG_REPLY = "Let me tell you everything about our services. " * 8  # ~13 s at 30 chars/s


@asynccontextmanager
async def live_server(
    settings: Settings, *, uvicorn_options: dict[str, Any] | None = None, **overrides: Any
) -> AsyncIterator[LiveServer]:
    """``overrides`` change settings; ``uvicorn_options`` the server's own (logging, say)."""
    port = free_port()
    settings = settings.model_copy(
        update={"port": port, "public_url": f"http://127.0.0.1:{port}", **overrides}
    )
    app = create_app(settings)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            ws="websockets-sansio",
            ws_max_size=MAX_WEBSOCKET_MESSAGE_BYTES,
            **{"log_level": "warning", **(uvicorn_options or {})},
        )
    )
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(30):
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
    services: Services = app.state.services
    async with services.sessions() as session:
        workspace, _ = await get_or_create_workspace(session, "e2e")
        _, key = await create_api_key(session, workspace.id, Role.OWNER)
        await session.commit()
    try:
        yield LiveServer(app, f"127.0.0.1:{port}", services, workspace.id, key)
    finally:
        server.should_exit = True
        await task


async def caller_line(name: str) -> RenderedLine:
    """A caller utterance from tests/fixtures/audio, as 8 kHz µ-law."""
    recording = read_wav(AUDIO / f"{name}.wav")
    return RenderedLine(
        label=name, ulaw=await encode_phone_line(recording.pcm, recording.sample_rate)
    )


def fake_agent(
    transcripts: list[str], replies: list[dict[str, Any]], **fields: Any
) -> dict[str, Any]:
    """Agent fields for fake providers: scripted hearing and replies with set latencies."""
    return {
        "greeting": "Hello, you are through to the test line.",
        "stt": {"provider": "fake", "options": {"transcripts": transcripts, "latency_ms": 50}},
        "llm": {"provider": "fake", "options": {"replies": replies, "ttft_ms": 100}},
        "tts": {"provider": "fake", "options": {"ttfb_ms": 50, "chars_per_second": 30}},
        **fields,
    }


async def dial(server: LiveServer, number: str) -> MediaStreamClient:
    """Ring ``number`` on the simulator and open the call's media stream, as a phone."""
    identity = StreamIdentity()
    async with httpx.AsyncClient() as http:
        answer = await place_call(http, server.address, number, identity, ConversationSettings())
    identity = StreamIdentity(
        identity.call_sid, identity.account_sid, identity.stream_sid, answer.parameters
    )
    phone = MediaStreamClient(answer.stream_url, identity)
    await phone.connect()
    return phone


async def events_of(server: LiveServer, call: Call) -> list[tuple[str, dict[str, object]]]:
    async with server.services.sessions() as session:
        return [(e.type, e.data) for e in await calls.events_of(session, call.id)]


async def wait_finished(server: LiveServer, phone: MediaStreamClient) -> Call:
    return await server.finished_call(phone.url.rstrip("/").rsplit("/", 1)[-1])
