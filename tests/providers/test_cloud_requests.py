"""What cloud services would send, checked against local peers speaking the providers protocols.

Covered here: the OpenAI chat-completions protocol (OpenAI, Grok, any OpenAI-compatible
server and the embedded llama.cpp server all use it), Cartesia's TTS WebSocket and
Deepgram's live STT WebSocket. The other cloud services are checked for construction only
(``test_cloud_construction``).
"""

from __future__ import annotations

import base64
import json
from typing import Any

import numpy as np
from aiohttp import web
from pipecat.adapters.llm.schemas.function_schema import FunctionSchema
from pipecat.adapters.llm.schemas.tools_schema import ToolsSchema
from pipecat.frames.frames import (
    InputAudioRawFrame,
    LLMContextFrame,
    LLMTextFrame,
    TTSAudioRawFrame,
    TTSSpeakFrame,
)
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.tests.utils import run_test
from websockets.asyncio.server import ServerConnection

from switchboard.agents.schema import LLMSettings, STTSettings, TTSSettings
from switchboard.providers.base import BuildContext
from switchboard.providers.registry import load_adapter
from switchboard.providers.spec import ProviderKind
from tests.providers.peers import http_peer, websocket_peer

KEY = {"api_key": "key-under-test"}


def chunk(content: str, finish: str | None = None) -> str:
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "gpt-4.1-mini",
        "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": finish}],
    }
    return f"data: {json.dumps(body)}\n\n"


async def chat_completions(request: web.Request, body: Any) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    for piece in ("Hello", " from", " the peer."):
        await response.write(chunk(piece).encode())
    await response.write(chunk("", "stop").encode())
    await response.write(b"data: [DONE]\n\n")
    await response.write_eof()
    return response


async def test_openai_chat_completion_request() -> None:
    async with http_peer(chat_completions) as (url, recorded):
        service = load_adapter(ProviderKind.LLM, "openai").create(
            LLMSettings(
                provider="openai",
                model="gpt-4.1-mini",
                temperature=0.2,
                max_tokens=99,
                base_url=f"{url}/v1",
            ),
            BuildContext(sample_rate=8000, credentials=KEY),
        )
        tools = ToolsSchema(
            standard_tools=[
                FunctionSchema(
                    name="book_slot",
                    description="Book a slot",
                    properties={"day": {"type": "string"}},
                    required=["day"],
                )
            ]
        )
        context = LLMContext(messages=[{"role": "user", "content": "Hi there"}], tools=tools)
        try:
            down, _ = await run_test(service, frames_to_send=[LLMContextFrame(context)])
        finally:
            await service._client.close()  # the service leaves its HTTP client to its owner
    text = "".join(f.text for f in down if isinstance(f, LLMTextFrame))
    assert text == "Hello from the peer."
    assert recorded.paths == ["/v1/chat/completions"]
    assert recorded.headers[0]["Authorization"] == "Bearer key-under-test"
    body = recorded.bodies[0]
    assert body["model"] == "gpt-4.1-mini"
    assert body["stream"] is True
    assert body["temperature"] == 0.2
    assert 99 in (body.get("max_tokens"), body.get("max_completion_tokens"))
    assert body["messages"] == [{"role": "user", "content": "Hi there"}]
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "book_slot",
                "description": "Book a slot",
                "parameters": {
                    "type": "object",
                    "properties": {"day": {"type": "string"}},
                    "required": ["day"],
                },
            },
        }
    ]


async def test_cartesia_websocket_messages() -> None:
    audio = (np.ones(800, dtype="<i2") * 1000).tobytes()

    async def answer(connection: ServerConnection, message: Any) -> None:
        if message.get("transcript"):
            await connection.send(
                json.dumps(
                    {
                        "type": "chunk",
                        "context_id": message["context_id"],
                        "data": base64.b64encode(audio).decode(),
                        "done": False,
                    }
                )
            )
            await connection.send(json.dumps({"type": "done", "context_id": message["context_id"]}))

    async with websocket_peer(answer) as (url, recorded):
        service = load_adapter(ProviderKind.TTS, "cartesia").create(
            TTSSettings(
                provider="cartesia",
                model="sonic-2",
                voice="voice-123",
                base_url=f"{url}/tts/websocket",
            ),
            BuildContext(sample_rate=8000, language="en", credentials=KEY),
        )
        down, _ = await run_test(service, frames_to_send=[TTSSpeakFrame("Good morning.")])
    assert recorded.paths[0] == "/tts/websocket"
    assert recorded.headers[0]["x-api-key"] == "key-under-test"
    assert "cartesia-version" in recorded.headers[0]
    first = next(m for m in recorded.bodies if m.get("transcript"))
    assert first["transcript"].strip() == "Good morning."
    assert first["model_id"] == "sonic-2"
    assert first["voice"] == {"mode": "id", "id": "voice-123"}
    assert first["output_format"] == {
        "container": "raw",
        "encoding": "pcm_s16le",
        "sample_rate": 8000,
    }
    assert first["language"] == "en"
    received = b"".join(f.audio for f in down if isinstance(f, TTSAudioRawFrame))
    assert received == audio


async def test_deepgram_live_stt_connection() -> None:
    async def answer(connection: ServerConnection, message: Any) -> None:
        # Deepgram answers CloseStream with the stream's metadata, then closes.
        if message.get("type") == "CloseStream":
            await connection.send(
                json.dumps({"type": "Metadata", "request_id": "r1", "duration": 0.1, "channels": 1})
            )
            await connection.close()

    async with websocket_peer(answer) as (url, recorded):
        service = load_adapter(ProviderKind.STT, "deepgram").create(
            STTSettings(
                provider="deepgram", model="nova-2-phonecall", language="en-US", base_url=url
            ),
            BuildContext(sample_rate=8000, credentials=KEY),
        )
        frames = [
            InputAudioRawFrame(audio=bytes(320), sample_rate=8000, num_channels=1) for _ in range(5)
        ]
        await run_test(service, frames_to_send=frames)
    assert recorded.paths, "the service never connected"
    path = recorded.paths[0]
    assert path.startswith("/v1/listen?")
    for expected in (
        "model=nova-2-phonecall",
        "language=en-US",
        "encoding=linear16",
        "sample_rate=8000",
        "channels=1",
        "smart_format=true",
        "endpointing=300",
    ):
        assert expected in path, (expected, path)
    assert recorded.headers[0]["authorization"] == "Token key-under-test"
    assert sum(len(b) for b in recorded.binary) > 0
