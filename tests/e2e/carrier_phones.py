"""Phones for Exotel AgentStream and Vobiz (Plivo-style) audio streams: ring the server as the
carrier does, then speak and listen on the media socket its answer names.

A phone plays the carrier's part for the app. It rings the inbound webhook the
carrier's way (Exotel: GET with the call in the query string and the
workspace's ``?token=``; Vobiz: a signed form POST), opens the socket the
answer names, sends the carrier's start message and then one 20 ms ``media``
message on every tick of the event-loop clock (``start + n * 20 ms``, so a
late wake-up never turns into drift): the caller's line while one is queued,
silence otherwise. Everything the app sends is kept with its arrival time;
its audio plays on a model speaker at one second per second, and a clear
(``clear``, ``clearAudio``) silences what had not played yet.

The carriers' message shapes are in ``carrier_framing``.
"""

from __future__ import annotations

import asyncio
import binascii
import collections
import contextlib
import json
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar
from urllib.parse import parse_qsl, urlsplit
from xml.etree import ElementTree

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from switchboard.telephony.vobiz import vobiz_signature
from tests.e2e.carrier_framing import (
    FRAME_SECONDS,
    CarrierFraming,
    Message,
)

log = logging.getLogger(__name__)


Framing = TypeVar("Framing", bound=CarrierFraming)


@dataclass(frozen=True)
class Received:
    """One message the app sent, decoded, and when it reached the phone (loop time)."""

    at: float
    message: Message


@dataclass
class _Line:
    audio: bytes
    done: asyncio.Future[float]
    offset: int = 0


class CarrierPhone(Generic[Framing]):
    """A caller on one carrier's media socket: ``connect``, ``say`` lines, wait for replies."""

    def __init__(self, url: str, framing: Framing, *, speech_gap: float = 0.6) -> None:
        self.url = url
        self.framing = framing
        self.speech_gap = speech_gap  # silence after which the agent counts as done speaking
        self.received: list[Received] = []
        self.unreadable: list[str | bytes] = []  # app messages that were not JSON objects
        self.arrivals: list[float] = []  # when each piece of agent audio arrived
        self.audio_seconds: list[float] = []  # and how long it plays
        self.clears: list[float] = []
        self.play_end = -math.inf  # when the agent audio received so far will have played
        self.started_at = 0.0
        self._ws: ClientConnection | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._lines: collections.deque[_Line] = collections.deque()
        self._outbox: list[str | bytes] = []  # sent as they are, before the next frame
        self._sequence = 0
        self._hanging_up = False
        self._closed = asyncio.Event()
        self._activity = asyncio.Event()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    @property
    def call_id(self) -> str:
        """The last segment of ``/media/{carrier}/{call_id}``."""
        return urlsplit(self.url).path.rstrip("/").rsplit("/", 1)[-1]

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    def events(self) -> list[str]:
        return [str(r.message.get("event")) for r in self.received]

    async def connect(self) -> None:
        self._ws = await connect(self.url, open_timeout=10, close_timeout=2, compression=None)
        for message in self.framing.opening():
            await self._ws.send(json.dumps(message))
            self._sequence += 1
        self.started_at = self.now()
        self._tasks = [
            asyncio.create_task(self._send_loop(), name="carrier-phone-send"),
            asyncio.create_task(self._receive_loop(), name="carrier-phone-receive"),
        ]

    async def say(self, ulaw: bytes) -> float:
        """Speak a line (8 kHz µ-law) after any still queued; the loop time its last frame left."""
        return await (await self.start_line(ulaw))

    async def start_line(self, ulaw: bytes) -> asyncio.Future[float]:
        """Queue a line without waiting for it: the future holds when its last frame left."""
        done: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._lines.append(_Line(await self.framing.wire_audio(ulaw), done))
        return done

    def send_raw(self, data: str | bytes) -> None:
        """Send ``data`` as it is (a malformed message, say) on the next 20 ms tick."""
        self._outbox.append(data)

    async def wait_agent_audio(self, after: float, deadline: float) -> float | None:
        """When the first agent audio at or after ``after`` arrived; None if none by then."""
        while True:
            later = [at for at in self.arrivals if at >= after]
            if later:
                return later[0]
            if self.closed or not await self._wait_activity(deadline):
                return None

    async def wait_agent_seconds(self, after: float, seconds: float, deadline: float) -> bool:
        """Wait until ``seconds`` of agent audio arrived at or after ``after``; False if the
        call ended or ``deadline`` passed first."""
        while True:
            got = zip(self.arrivals, self.audio_seconds, strict=True)
            if sum(length for at, length in got if at >= after) >= seconds:
                return True
            if self.closed or not await self._wait_activity(deadline):
                return False

    async def wait_agent_done(self, deadline: float) -> bool:
        """Wait until the speaker has been quiet for ``speech_gap``; False if past ``deadline``."""
        while not self.closed:
            now, quiet_at = self.now(), self.play_end + self.speech_gap
            if now >= quiet_at:
                return True
            if now >= deadline:
                return False
            await self._wait_activity(min(quiet_at, deadline))
        return True

    async def wait_closed(self, deadline: float) -> bool:
        """Wait for the app to end the stream; False if it is still open at ``deadline``."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout_at(deadline):
                await self._closed.wait()
        return self.closed

    async def hang_up(self) -> None:
        """Send ``stop`` (unless the app already ended the call), close, stop both tasks."""
        if not self._tasks:
            return
        self._hanging_up = True
        try:
            async with asyncio.timeout(5):
                await asyncio.gather(*self._tasks)
        finally:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            if self._ws is not None:
                await self._ws.close()
            for line in self._lines:
                if not line.done.done():
                    line.done.cancel()

    async def _send_loop(self) -> None:
        assert self._ws is not None
        frame = 0
        try:
            while not self.closed:
                delay = self.started_at + (frame + 1) * FRAME_SECONDS - self.now()
                if delay > 0:
                    await asyncio.sleep(delay)
                outbox, self._outbox = self._outbox, []
                for data in outbox:
                    await self._ws.send(data)
                if self._hanging_up:
                    await self._ws.send(json.dumps(self.framing.stop(self._next_sequence())))
                    break
                audio = self._next_frame()
                message = self.framing.media(
                    self._next_sequence(), frame + 1, round(frame * FRAME_SECONDS * 1000), audio
                )
                await self._ws.send(json.dumps(message))
                frame += 1
                self._finish_line()
        except ConnectionClosed:
            pass
        finally:
            await self._ws.close()

    def _next_frame(self) -> bytes:
        if not self._lines:
            return self.framing.silence
        line, size = self._lines[0], self.framing.frame_bytes
        audio = line.audio[line.offset : line.offset + size]
        line.offset += size
        return audio + self.framing.silence[len(audio) :]

    def _finish_line(self) -> None:
        if self._lines and self._lines[0].offset >= len(self._lines[0].audio):
            line = self._lines.popleft()
            if not line.done.done():
                line.done.set_result(self.now())

    async def _receive_loop(self) -> None:
        assert self._ws is not None
        try:
            async for raw in self._ws:
                self._receive(raw, self.now())
                self._notify()
        except ConnectionClosed:
            pass
        finally:
            self._closed.set()
            for line in self._lines:
                if line.done.done():
                    continue
                if self._hanging_up:  # the caller's own choice: nobody waits for these
                    line.done.cancel()
                else:
                    line.done.set_exception(ConnectionError("the app ended the call mid-line"))
            self._notify()

    def _receive(self, raw: str | bytes, now: float) -> None:
        try:
            message = json.loads(raw)
        except ValueError:
            message = None
        if not isinstance(message, dict):
            self.unreadable.append(raw)
            return
        self.received.append(Received(now, message))
        try:
            audio = self.framing.agent_audio(message)
        except (KeyError, TypeError, binascii.Error):
            log.warning("an audio message without readable audio: %.80r", raw)
            return
        if audio:
            seconds = len(audio) / self.framing.bytes_per_second
            self.arrivals.append(now)
            self.audio_seconds.append(seconds)
            self.play_end = max(now, self.play_end) + seconds
        elif message.get("event") == self.framing.clear_event:
            self.clears.append(now)
            self.play_end = min(self.play_end, now)

    def _next_sequence(self) -> int:
        self._sequence += 1
        return self._sequence

    def _notify(self) -> None:
        self._activity.set()
        self._activity = asyncio.Event()

    async def _wait_activity(self, deadline: float) -> bool:
        """Wait for the next message or the close; False if ``deadline`` passed first."""
        if deadline <= self.now():
            return False
        try:
            async with asyncio.timeout_at(deadline):
                await self._activity.wait()
        except TimeoutError:
            return False
        return True


# ---- ringing: the inbound webhook as each carrier requests it -------------------------------


async def ring_exotel(
    http: httpx.AsyncClient, server_url: str, token: str, query: Mapping[str, str]
) -> httpx.Response:
    """The Voicebot applet asking its dynamic endpoint for a socket: a GET, the call's
    fields in the query string after the ``?token=`` the endpoint was configured with."""
    params = {"token": token, **query}
    return await http.get(f"{server_url}/telephony/exotel/inbound", params=params)


def exotel_socket(answer: httpx.Response) -> tuple[str, dict[str, str]]:
    """The socket URL of an Exotel answer (``{"url": ...}``) and its custom parameters."""
    url = str(answer.json()["url"])
    return url, dict(parse_qsl(urlsplit(url).query))


async def ring_vobiz(
    http: httpx.AsyncClient,
    server_url: str,
    auth_token: str,
    form: Mapping[str, str],
    *,
    nonce: str | None = None,
) -> httpx.Response:
    """Vobiz's answer-URL POST, signed as Vobiz signs it (``X-Vobiz-Signature-V3``)."""
    url = f"{server_url}/telephony/vobiz/inbound"
    nonce = nonce or str(int(time.time() * 1000))
    headers = {
        "X-Vobiz-Signature-V3": vobiz_signature(auth_token, url, nonce),
        "X-Vobiz-Signature-V3-Nonce": nonce,
    }
    return await http.post(url, data=dict(form), headers=headers)


@dataclass(frozen=True)
class VobizStream:
    """The ``<Stream>`` of a Vobiz answer."""

    url: str
    attributes: dict[str, str]


def vobiz_stream(answer: httpx.Response) -> VobizStream:
    root = ElementTree.fromstring(answer.text)
    stream = root.find("Stream")
    if stream is None or not (stream.text or "").strip():
        raise AssertionError(f"the answer streams nothing: {answer.text[:200]}")
    return VobizStream((stream.text or "").strip(), dict(stream.attrib))
