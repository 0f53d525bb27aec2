"""The phone's end of a Twilio Media Stream: a caller that speaks and listens in real time.

The client plays the part Twilio plays for an app. It sends ``connected`` and
``start``, then one ``media`` message every 20 ms for as long as the call
lasts (a real line never stops sending: silence between the caller's lines),
``dtmf`` on demand and ``stop`` on hang-up. Frames leave on absolute
deadlines of the event-loop clock (``start + n * 20 ms``), so a late wake-up
never turns into drift.

Everything the app sends is kept: ``media`` goes into the phone's
``PlaybackBuffer`` with its arrival time, ``clear`` cuts off what had not yet
played, and each ``mark`` is echoed once the audio before it has played (at
once after a clear), as Twilio does. All messages go out from one task, on
the 20 ms tick, so the socket has a single writer.

The waits (``wait_agent_audio``, ``wait_agent_done``) wake on every message
the app sends and on the socket closing; they never poll.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import json
import logging
from dataclasses import dataclass
from typing import Literal

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from switchboard.caller import twilio_messages as twilio
from switchboard.caller.playback import ULAW_SILENCE, PlaybackBuffer
from switchboard.caller.twilio_messages import StreamIdentity

FRAME_SECONDS = 0.02
FRAME_BYTES = 160  # 20 ms of 8 kHz µ-law
SILENT_FRAME = bytes([ULAW_SILENCE]) * FRAME_BYTES

logger = logging.getLogger(__name__)


class CallEnded(Exception):
    """The app hung up before the caller finished a line."""


@dataclass(frozen=True)
class SentLine:
    """When a caller line went out: ``ended_at`` is when its last frame was sent."""

    started_at: float
    ended_at: float
    seconds: float


@dataclass
class _QueuedLine:
    audio: bytes
    done: asyncio.Future[SentLine]
    offset: int = 0
    started_at: float | None = None


class MediaStreamClient:
    """A caller on a Twilio Media Stream: ``async with`` it, ``say`` lines, wait for replies."""

    def __init__(
        self,
        url: str,
        identity: StreamIdentity | None = None,
        *,
        speech_gap: float = 0.6,
        open_timeout: float = 10.0,
    ) -> None:
        self.url = url
        self.identity = identity or StreamIdentity()
        self.speech_gap = speech_gap  # silence after which the agent counts as done speaking
        self.open_timeout = open_timeout
        self.playback = PlaybackBuffer(speech_gap=speech_gap)
        self.caller_audio = bytearray()  # every frame sent, 20 ms each, from ``started_at``
        self.received: collections.Counter[str] = collections.Counter()
        self.marks_echoed: list[str] = []
        self.started_at = 0.0
        self.ended_at: float | None = None
        self.hung_up_by: Literal["caller", "agent"] | None = None
        self._ws: ClientConnection | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._lines: collections.deque[_QueuedLine] = collections.deque()
        self._line: _QueuedLine | None = None
        self._digits: list[str] = []  # keys pressed, sent on the next tick
        self._marks: list[tuple[float, str]] = []  # (due, name): echo once played
        self._sequence = 0
        self._hanging_up = False
        self._closed = asyncio.Event()
        self._activity = asyncio.Event()

    async def __aenter__(self) -> MediaStreamClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.hang_up()

    @property
    def closed(self) -> bool:
        """The stream is over, whoever ended it."""
        return self._closed.is_set()

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    async def connect(self) -> None:
        """Open the socket, send ``connected`` and ``start``, and start the line's clock."""
        self._ws = await connect(
            self.url, open_timeout=self.open_timeout, close_timeout=2, compression=None
        )
        await self._send(twilio.connected_message())
        await self._send(twilio.start_message(self.identity, self._next_sequence()))
        self.started_at = self.now()
        self._tasks = [
            asyncio.create_task(self._send_loop(), name="caller-send"),
            asyncio.create_task(self._receive_loop(), name="caller-receive"),
        ]

    async def say(self, ulaw: bytes) -> SentLine:
        """Speak ``ulaw`` (8 kHz µ-law) after any line still queued; return once it is all sent.

        Raises ``CallEnded`` if the app hangs up first.
        """
        if self.closed:
            raise CallEnded("the call has ended")
        done: asyncio.Future[SentLine] = asyncio.get_running_loop().create_future()
        self._lines.append(_QueuedLine(ulaw, done))
        return await done

    def send_dtmf(self, digit: str) -> None:
        """Press a key: the ``dtmf`` message goes out on the next 20 ms tick."""
        self._digits.append(digit)

    async def wait_agent_audio(self, after: float, deadline: float) -> float | None:
        """The arrival time of the first agent audio at or after ``after``.

        ``None`` if none came by ``deadline`` (loop time) or the call ended first.
        """
        while True:
            arrival = self.playback.first_arrival_after(after)
            if arrival is not None:
                return arrival
            if self.closed or not await self._wait_activity(deadline):
                return self.playback.first_arrival_after(after)

    async def wait_agent_done(self, deadline: float) -> bool:
        """Wait until the speaker has been quiet for ``speech_gap``; False if past ``deadline``.

        Call it once the agent has started speaking (``wait_agent_audio``): before
        any agent audio the speaker is already quiet. True at once if the call ended.
        """
        while not self.closed:
            now = self.now()
            quiet_at = self.playback.play_end + self.speech_gap
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
        """Send ``stop``, close the socket and stop both tasks; safe to call twice."""
        if not self._tasks:
            return
        if not self.closed:
            self.hung_up_by = self.hung_up_by or "caller"
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
            self._fail_lines()

    # ---- the two tasks --------------------------------------------------------------------

    async def _send_loop(self) -> None:
        frame = 0
        try:
            while not self.closed:
                delay = self.started_at + (frame + 1) * FRAME_SECONDS - self.now()
                if delay > 0:
                    await asyncio.sleep(delay)
                await self._flush_control()
                if self._hanging_up:
                    await self._send(twilio.stop_message(self.identity, self._next_sequence()))
                    break
                await self._send_frame(frame)
                frame += 1
        except ConnectionClosed:
            pass
        finally:
            if self._hanging_up and self._ws is not None:
                await self._ws.close()

    async def _send_frame(self, frame: int) -> None:
        line = self._line
        if line is None and self._lines:
            line = self._line = self._lines.popleft()
            self.playback.end_speech()
        payload = SILENT_FRAME
        if line is not None:
            payload = line.audio[line.offset : line.offset + FRAME_BYTES]
            payload += SILENT_FRAME[len(payload) :]
            line.offset += FRAME_BYTES
        message = twilio.media_message(
            self.identity,
            self._next_sequence(),
            chunk=frame + 1,
            timestamp_ms=round(frame * FRAME_SECONDS * 1000),
            payload=payload,
        )
        await self._send(message)
        sent_at = self.now()
        self.caller_audio += payload
        if line is not None:
            if line.started_at is None:
                line.started_at = sent_at - FRAME_SECONDS
            if line.offset >= len(line.audio):
                self._line = None
                if not line.done.done():
                    seconds = len(line.audio) / 8000
                    line.done.set_result(SentLine(line.started_at, sent_at, seconds))

    async def _flush_control(self) -> None:
        now = self.now()
        digits, self._digits = self._digits, []
        for digit in digits:
            await self._send(twilio.dtmf_message(self.identity, self._next_sequence(), digit))
        due = [name for at, name in self._marks if at <= now]
        self._marks = [(at, name) for at, name in self._marks if at > now]
        for name in due:
            await self._send(twilio.mark_message(self.identity, self._next_sequence(), name))
            self.marks_echoed.append(name)

    async def _receive_loop(self) -> None:
        assert self._ws is not None
        try:
            async for raw in self._ws:
                self.handle_message(raw, self.now())
                self._notify()
        except ConnectionClosed:
            pass
        finally:
            self.ended_at = self.now()
            self.hung_up_by = self.hung_up_by or "agent"
            self._closed.set()
            self._fail_lines()
            self._notify()

    def handle_message(self, raw: str | bytes, now: float) -> None:
        """Apply one message from the app, received at ``now``; log and skip malformed ones."""
        try:
            message = json.loads(raw)
            event = str(message["event"])
            self.received[event] += 1
            if event == "media":
                audio = base64.b64decode(message["media"]["payload"])
                if audio:
                    self.playback.receive(now, audio)
            elif event == "mark":
                name = str(message.get("mark", {}).get("name", ""))
                self._marks.append((max(now, self.playback.play_end), name))
            elif event == "clear":
                self.playback.clear(now)
                self._marks = [(now, name) for _, name in self._marks]
        except (ValueError, KeyError, TypeError, AttributeError):
            logger.warning("ignoring a malformed Media Streams message: %.80r", raw)

    # ---- helpers --------------------------------------------------------------------------

    async def _send(self, message: twilio.Message) -> None:
        assert self._ws is not None
        await self._ws.send(json.dumps(message))

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

    def _fail_lines(self) -> None:
        pending = [self._line] if self._line else []
        pending += list(self._lines)
        for line in pending:
            if not line.done.done():
                line.done.set_exception(CallEnded("the agent hung up mid-line"))
        self._lines.clear()
        self._line = None
