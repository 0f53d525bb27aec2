"""Our serializers inside Pipecat's real WebSocket transport and pipeline.

Two promises the unit tests cannot prove alone: a malformed carrier message
does not stop the transport reading the socket, and ``flush_audio_frame()``
reaches the serializer in order, after the audio queued before it.
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

from pipecat.frames.frames import (
    EndFrame,
    Frame,
    InputAudioRawFrame,
    InputDTMFFrame,
    OutputAudioRawFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.serializers.base_serializer import FrameSerializer
from pipecat.transports.websocket.fastapi import FastAPIWebsocketParams, FastAPIWebsocketTransport
from pipecat.workers.runner import WorkerRunner
from starlette.websockets import WebSocketState

from switchboard.telephony.serializers import (
    RobustExotelSerializer,
    RobustTwilioSerializer,
    flush_audio_frame,
)


class FakeWebSocket:
    """The part of Starlette's ``WebSocket`` that Pipecat's FastAPI transport uses."""

    def __init__(self) -> None:
        self.client_state = WebSocketState.CONNECTED
        self.application_state = WebSocketState.CONNECTED
        self.headers: dict[str, str] = {}
        self.sent: list[str | bytes] = []
        self.incoming: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    def feed(self, message: str | bytes) -> None:
        key = "bytes" if isinstance(message, bytes) else "text"
        self.incoming.put_nowait({"type": "websocket.receive", key: message})

    async def receive(self) -> dict[str, Any]:
        return await self.incoming.get()

    async def send_text(self, data: str) -> None:
        self.sent.append(data)

    async def send_bytes(self, data: bytes) -> None:
        self.sent.append(data)

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        self.client_state = self.application_state = WebSocketState.DISCONNECTED
        self.incoming.put_nowait({"type": "websocket.disconnect"})


class Collect(FrameProcessor):
    def __init__(self) -> None:
        super().__init__()
        self.frames: list[Frame] = []

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, InputAudioRawFrame | InputDTMFFrame):
            self.frames.append(frame)
        await self.push_frame(frame, direction)


async def run(worker: PipelineWorker) -> None:
    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    await runner.run()


def call(serializer: FrameSerializer) -> tuple[FakeWebSocket, Collect, PipelineWorker]:
    websocket = FakeWebSocket()
    params = FastAPIWebsocketParams(
        audio_in_enabled=True, audio_out_enabled=True, serializer=serializer, session_timeout=None
    )
    transport = FastAPIWebsocketTransport(websocket, params)  # type: ignore[arg-type]
    collect = Collect()
    pipeline = Pipeline([transport.input(), collect, transport.output()])
    worker = PipelineWorker(
        pipeline,
        params=PipelineParams(audio_in_sample_rate=8000, audio_out_sample_rate=8000),
        enable_rtvi=False,
        idle_timeout_secs=None,
    )
    return websocket, collect, worker


async def test_bad_messages_do_not_stop_the_transport_reading() -> None:
    websocket, collect, worker = call(RobustTwilioSerializer("MZ1", "CA1"))
    running = asyncio.create_task(run(worker))
    for bad in (
        b"\x00binary",
        "{not json",
        json.dumps({"event": "media", "media": {"payload": "abc"}}),
    ):
        websocket.feed(bad)
    payload = base64.b64encode(bytes([0xFF]) * 160).decode()
    websocket.feed(
        json.dumps({"event": "media", "streamSid": "MZ1", "media": {"payload": payload}})
    )
    websocket.feed(json.dumps({"event": "dtmf", "streamSid": "MZ1", "dtmf": {"digit": "3"}}))
    async with asyncio.timeout(10):
        while not any(isinstance(f, InputDTMFFrame) for f in collect.frames):  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        await worker.queue_frame(EndFrame())
        await running
    assert any(isinstance(f, InputAudioRawFrame) for f in collect.frames)


async def test_flush_reaches_exotel_after_the_audio_before_it() -> None:
    websocket, _, worker = call(RobustExotelSerializer("MZ1", "CA1"))
    running = asyncio.create_task(run(worker))
    turn = [OutputAudioRawFrame(b"\x01\x00" * 320, 8000, 1) for _ in range(3)]  # 120 ms
    async with asyncio.timeout(10):
        await worker.queue_frames([*turn, flush_audio_frame(), *turn, EndFrame()])
        await running
    chunks = [
        base64.b64decode(json.loads(m)["media"]["payload"])
        for m in websocket.sent
        if isinstance(m, str) and json.loads(m).get("event") == "media"
    ]
    # In order, the flush sends the first turn alone (padded to 100 ms)...
    assert chunks[0][:1920] == b"\x01\x00" * 960 and not any(chunks[0][1920:])
    # ...and the end sends the second, with the 2 s of silence Pipecat plays at the end.
    assert [len(c) for c in chunks] == [3200, 1920 + 32000]
    assert chunks[1][:1920] == b"\x01\x00" * 960
    assert all(m.get("event") != "switchboard.flush_audio" for m in map(json.loads, websocket.sent))
