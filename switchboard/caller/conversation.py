"""One phone call, start to finish: dial, listen to the greeting, say each line, hang up.

``place_call`` rings the server as Twilio would (the voice webhook, form
encoded) and reads the TwiML it answers with. ``run_conversation`` then
connects to the media stream the TwiML names and takes turns: after each
caller line it waits for the agent's reply to start and to finish (the
speaker quiet for ``speech_gap``), up to ``reply_timeout``.

Voice-to-voice latency for a turn is the time from the caller's last audio
frame leaving the phone to the agent's first audio frame reaching it. Gaps
are underruns of the phone's playback buffer during the reply: agent audio
that arrived after the caller should already have been hearing it.
"""

from __future__ import annotations

import contextlib
import xml.etree.ElementTree as ElementTree
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from websockets.exceptions import WebSocketException

from switchboard.caller.caller_voice import stereo, ulaw_to_pcm, write_wav
from switchboard.caller.media_client import CallEnded, MediaStreamClient, SentLine
from switchboard.caller.twilio_messages import StreamIdentity


class CallFailed(Exception):
    """The call could not be placed: the server is unreachable or answered nonsense."""


class CallRejected(CallFailed):
    """The app answered with ``<Say>``/``<Hangup>`` (unknown number, busy); ``said`` is its text."""

    def __init__(self, said: str) -> None:
        super().__init__(said or "the call was rejected")
        self.said = said


@dataclass(frozen=True)
class Answer:
    """What the app's TwiML told the carrier to do: stream the call's media to ``stream_url``."""

    stream_url: str
    parameters: dict[str, str]

    @property
    def call_id(self) -> str:
        """The last segment of ``/media/{carrier}/{call_id}``."""
        return urlsplit(self.stream_url).path.rstrip("/").rsplit("/", 1)[-1]


@dataclass(frozen=True)
class ConversationSettings:
    reply_timeout: float = 30.0  # per turn, from the end of the caller's line
    greeting_timeout: float = 30.0  # the first call may load models before it speaks
    speech_gap: float = 0.6  # agent silence that means it has finished speaking
    carrier: str = "simulator"
    from_number: str = "+15555550100"


@dataclass(frozen=True)
class RenderedLine:
    """A caller line ready to send: its label and 8 kHz µ-law audio."""

    label: str
    ulaw: bytes


@dataclass(frozen=True)
class AgentReply:
    """The agent's answer as the caller heard it."""

    first_audio_at: float  # loop time the first frame arrived
    seconds: float  # how long it played
    gaps_ms: tuple[float, ...]  # playback underruns
    finished: bool  # it ended before the timeout
    cleared: bool  # cut off by a clear (barge-in)


@dataclass(frozen=True)
class TurnReport:
    index: int  # from 1
    line: str
    sent: SentLine
    reply: AgentReply | None

    @property
    def voice_to_voice(self) -> float | None:
        """Seconds from the caller's last frame out to the agent's first frame in."""
        return None if self.reply is None else self.reply.first_audio_at - self.sent.ended_at


@dataclass
class CallReport:
    answer: Answer
    identity: StreamIdentity
    started_at: float
    ended_at: float
    hung_up_by: str
    greeting: AgentReply | None
    turns: list[TurnReport] = field(default_factory=list)
    heard: bytes = b""  # µ-law 8 kHz, what the phone's speaker played, from started_at
    said: bytes = b""  # µ-law 8 kHz, everything the phone sent, from started_at
    clears: int = 0

    @property
    def call_id(self) -> str:
        return self.answer.call_id


class ConversationObserver:
    """Hooks for showing a call while it happens; each does nothing unless overridden."""

    def answered(self, answer: Answer) -> None: ...

    def caller_says(self, index: int, line: str) -> None: ...

    def agent_started(self, turn: int) -> None:
        """The agent's reply to line ``turn`` began arriving (0 is the greeting)."""

    def agent_replied(self, turn: int, reply: AgentReply | None) -> None: ...

    def call_ended(self, hung_up_by: str) -> None: ...


def base_url(server: str) -> str:
    """``127.0.0.1:8000`` or a full URL, as ``http://host:port`` without a trailing slash."""
    return (server if "://" in server else f"http://{server}").rstrip("/")


def parse_twiml(markup: str) -> Answer:
    """The stream to connect to; raises ``CallRejected`` for ``<Say>``/``<Hangup>``/``<Reject>``."""
    try:
        root = ElementTree.fromstring(markup)
    except ElementTree.ParseError as exc:
        raise CallFailed(f"the server answered with something that is not TwiML: {exc}") from exc
    stream = root.find("./Connect/Stream")
    if stream is not None and stream.get("url"):
        parameters = {p.get("name", ""): p.get("value", "") for p in stream.findall("Parameter")}
        return Answer(str(stream.get("url")), parameters)
    said = " ".join((say.text or "").strip() for say in root.iter("Say")).strip()
    if said or root.find("Hangup") is not None or root.find("Reject") is not None:
        raise CallRejected(said)
    raise CallFailed("the TwiML neither connects a stream nor hangs up")


async def place_call(
    http: httpx.AsyncClient,
    server: str,
    to: str,
    identity: StreamIdentity,
    settings: ConversationSettings,
) -> Answer:
    """Ring the server as Twilio does: POST the voice webhook, read the TwiML answer."""
    url = f"{base_url(server)}/telephony/{settings.carrier}/inbound"
    form = {
        "CallSid": identity.call_sid,
        "AccountSid": identity.account_sid,
        "From": settings.from_number,
        "To": to,
        "Direction": "inbound",
        "CallStatus": "ringing",
    }
    try:
        response = await http.post(url, data=form)
    except httpx.HTTPError as exc:
        raise CallFailed(f"could not reach {url}: {exc}") from exc
    if response.status_code != 200:
        raise CallFailed(f"{url} answered HTTP {response.status_code}: {response.text[:200]}")
    return parse_twiml(response.text)


async def run_conversation(
    server: str,
    agent: str,
    lines: Sequence[RenderedLine],
    settings: ConversationSettings | None = None,
    observer: ConversationObserver | None = None,
    http: httpx.AsyncClient | None = None,
) -> CallReport:
    """Call ``agent`` (an agent id or dialled number), say ``lines`` in turn, hang up."""
    settings = settings or ConversationSettings()
    identity = StreamIdentity()
    async with _http_client(http) as client:
        answer = await place_call(client, server, agent, identity, settings)
    return await converse(answer, identity.call_sid, lines, settings, observer)


async def converse(
    answer: Answer,
    call_sid: str,
    lines: Sequence[RenderedLine],
    settings: ConversationSettings | None = None,
    observer: ConversationObserver | None = None,
) -> CallReport:
    """Follow ``answer`` to its media stream as the phone of call ``call_sid``: hear the
    greeting, say ``lines`` in turn, each after the agent's reply, and hang up."""
    settings = settings or ConversationSettings()
    observer = observer or ConversationObserver()
    identity = StreamIdentity(call_sid=call_sid, custom_parameters=answer.parameters)
    observer.answered(answer)
    phone = MediaStreamClient(answer.stream_url, identity, speech_gap=settings.speech_gap)
    try:
        await phone.connect()
    except (OSError, TimeoutError, WebSocketException) as exc:
        raise CallFailed(f"could not open the media stream {answer.stream_url}: {exc}") from exc
    greeting: AgentReply | None = None
    turns: list[TurnReport] = []
    try:
        deadline = phone.started_at + settings.greeting_timeout
        greeting = await _agent_reply(
            phone, 0, phone.started_at, deadline, observer, finish_within=settings.reply_timeout
        )
        for index, line in enumerate(lines, start=1):
            if phone.closed:
                break
            observer.caller_says(index, line.label)
            try:
                sent = await phone.say(line.ulaw)
            except CallEnded:
                break
            deadline = sent.ended_at + settings.reply_timeout
            reply = await _agent_reply(phone, index, sent.ended_at, deadline, observer)
            turns.append(TurnReport(index, line.label, sent, reply))
    finally:
        await phone.hang_up()
    ended_at = phone.ended_at or phone.now()
    report = CallReport(
        answer=answer,
        identity=identity,
        started_at=phone.started_at,
        ended_at=ended_at,
        hung_up_by=phone.hung_up_by or "caller",
        greeting=greeting,
        turns=turns,
        heard=phone.playback.render(phone.started_at, ended_at - phone.started_at),
        said=bytes(phone.caller_audio),
        clears=len(phone.playback.clears),
    )
    observer.call_ended(report.hung_up_by)
    return report


async def _agent_reply(
    phone: MediaStreamClient,
    turn: int,
    after: float,
    deadline: float,
    observer: ConversationObserver,
    *,
    finish_within: float = 0.0,
) -> AgentReply | None:
    """Wait for the agent's next reply to start by ``deadline``, and then to finish by then
    (or, with ``finish_within``, within that long of its start: a greeting may be long)."""
    first = await phone.wait_agent_audio(after, deadline)
    if first is None:
        observer.agent_replied(turn, None)
        return None
    observer.agent_started(turn)
    finished = await phone.wait_agent_done(max(deadline, first + finish_within))
    speech = phone.playback.speech_at(first)
    reply = AgentReply(
        first_audio_at=first,
        seconds=0.0 if speech is None else min(speech.ends_at, phone.now()) - speech.starts_at,
        gaps_ms=tuple(u.seconds * 1000 for u in speech.underruns) if speech else (),
        finished=finished,
        cleared=bool(speech and speech.cleared),
    )
    observer.agent_replied(turn, reply)
    return reply


@contextlib.asynccontextmanager
async def _http_client(http: httpx.AsyncClient | None) -> AsyncIterator[httpx.AsyncClient]:
    """The caller's ``httpx`` client if given (left open), else a fresh one closed after."""
    if http is not None:
        yield http
        return
    async with httpx.AsyncClient(timeout=10) as own:
        yield own


async def save_recordings(
    report: CallReport, path: Path, stereo_path: Path | None = None
) -> list[Path]:
    """Write what the caller heard (8 kHz mono) and, if asked, both sides (left: caller)."""
    heard = await ulaw_to_pcm(report.heard)
    saved = [write_wav(path, heard)]
    if stereo_path is not None:
        said = await ulaw_to_pcm(report.said)
        saved.append(write_wav(stereo_path, stereo(said, heard), channels=2))
    return saved
