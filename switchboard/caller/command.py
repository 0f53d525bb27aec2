"""``switchboard call``: a phone on your desk that calls a running Switchboard server.

The lead registers it with ``app.command("call")(call)``. The conversation
and the summary go to stderr; stdout carries only the saved WAV path(s), for
scripts. With an API key (``--key`` or ``SWITCHBOARD_API_KEY``) the agent's
words come from the call's transcript, polled every half second; without
one, only how long the agent spoke.

Exit codes: 0 the call ran; 1 the call could not be placed or was rejected
(the ``<Say>`` text is printed); 2 bad input (a WAV that cannot be read);
3 the agent did not answer a line within ``--timeout``.
"""

from __future__ import annotations

import asyncio
import contextlib
import wave
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from switchboard.caller.caller_voice import CallerLine, CallerVoice
from switchboard.caller.conversation import (
    AgentReply,
    Answer,
    CallFailed,
    CallRejected,
    CallReport,
    ConversationObserver,
    ConversationSettings,
    RenderedLine,
    base_url,
    run_conversation,
    save_recordings,
)

POLL_SECONDS = 0.5
NO_REPLY_EXIT = 3


class BadLine(Exception):
    """A caller line that cannot be rendered (an unreadable WAV, say)."""


class LivePrinter(ConversationObserver):
    """Prints the call as it happens; agent words come from ``TranscriptPoller`` if there is one."""

    def __init__(self, console: Console, *, with_transcript: bool) -> None:
        self.console = console
        self.with_transcript = with_transcript
        self.call_id: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def answered(self, answer: Answer) -> None:
        self.console.print(f"[dim]answered: call {answer.call_id}[/]")
        self.call_id.set_result(answer.call_id)

    def caller_says(self, index: int, line: str) -> None:
        self.console.print(f"[bold cyan]you[/]  : {escape(line)}")

    def agent_replied(self, turn: int, reply: AgentReply | None) -> None:
        if reply is None:
            what = "greeting" if turn == 0 else "reply"
            self.console.print(f"[yellow]agent : (no {what} in time)[/]")
        elif not self.with_transcript:
            self.console.print(f"[bold magenta]agent[/] : (spoke for {reply.seconds:.1f} s)")

    def call_ended(self, hung_up_by: str) -> None:
        who = "you hung up" if hung_up_by == "caller" else "the agent hung up"
        self.console.print(f"[dim]{who}[/]")

    def transcript_turn(self, turn: dict[str, Any]) -> None:
        text = escape(str(turn.get("text", "")).strip())
        cut = " [dim](interrupted)[/]" if turn.get("interrupted") else ""
        if turn.get("role") == "agent":
            self.console.print(f"[bold magenta]agent[/] : {text}{cut}")
        else:
            self.console.print(f"[dim]        (heard: {text})[/]")


class TranscriptPoller:
    """Fetches ``/api/v1/calls/{id}/transcript`` and prints each finished turn once."""

    def __init__(self, http: httpx.AsyncClient, printer: LivePrinter) -> None:
        self.http = http
        self.printer = printer
        self.shown: set[int] = set()
        self.refused = False

    async def fetch(self, call_id: str) -> list[dict[str, Any]]:
        with contextlib.suppress(httpx.HTTPError, ValueError):
            response = await self.http.get(f"/api/v1/calls/{call_id}/transcript")
            if response.status_code in (401, 403) and not self.refused:
                self.refused = True
                self.printer.console.print(
                    f"[yellow]the transcript needs a valid key (HTTP {response.status_code})[/]"
                )
            if response.status_code == 200:
                turns = response.json()
                return [t for t in turns if isinstance(t, dict)] if isinstance(turns, list) else []
        return []

    async def show_new(self, call_id: str, *, unfinished_too: bool = False) -> None:
        for turn in await self.fetch(call_id):
            index = int(turn.get("index", -1))
            if index in self.shown or not (turn.get("ended_at") or unfinished_too):
                continue
            self.shown.add(index)
            self.printer.transcript_turn(turn)

    async def run(self) -> None:
        """Poll until cancelled (the transcript lives in the server: nothing to await)."""
        call_id = await self.printer.call_id
        while True:
            await self.show_new(call_id)
            await asyncio.sleep(POLL_SECONDS)


def summary_table(report: CallReport) -> Table:
    table = Table(title=f"call {report.call_id}")
    table.add_column("turn", justify="right")
    table.add_column("caller said")
    table.add_column("voice-to-voice", justify="right")
    table.add_column("reply", justify="right")
    table.add_column("gaps", justify="right")
    greeting = report.greeting
    if greeting is not None:
        first = f"{greeting.first_audio_at - report.started_at:.2f} s after answer"
        table.add_row(
            "0", "[dim](greeting)[/]", first, f"{greeting.seconds:.1f} s", _gaps(greeting)
        )
    for turn in report.turns:
        v2v = turn.voice_to_voice
        table.add_row(
            str(turn.index),
            escape(turn.line if len(turn.line) <= 48 else turn.line[:47] + "…"),
            "[yellow]no reply[/]" if v2v is None else f"{v2v * 1000:.0f} ms",
            "" if turn.reply is None else f"{turn.reply.seconds:.1f} s",
            "" if turn.reply is None else _gaps(turn.reply),
        )
    return table


def _gaps(reply: AgentReply) -> str:
    if not reply.gaps_ms:
        return "none"
    return f"{len(reply.gaps_ms)} ({sum(reply.gaps_ms):.0f} ms, max {max(reply.gaps_ms):.0f})"


async def _render(lines: list[CallerLine], console: Console) -> list[RenderedLine]:
    """Every line's audio, before dialling, so synthesis never delays the call."""
    voice = CallerVoice()
    if any(line.text is not None for line in lines):
        console.print("[dim]preparing the caller's voice…[/]")
    rendered = []
    for line in lines:
        try:
            rendered.append(RenderedLine(line.label, await voice.render(line)))
        except (OSError, EOFError, ValueError, wave.Error) as exc:
            raise BadLine(f"{line.label}: {exc}") from exc
    return rendered


async def _run_call(
    console: Console,
    server: str,
    agent: str,
    lines: list[CallerLine],
    key: str | None,
    settings: ConversationSettings,
) -> CallReport:
    rendered = await _render(lines, console)
    printer = LivePrinter(console, with_transcript=key is not None)
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with httpx.AsyncClient(base_url=base_url(server), headers=headers, timeout=10) as http:
        poller = TranscriptPoller(http, printer)
        polling = asyncio.create_task(poller.run()) if key else None
        try:
            # The key also rides on the ringing webhook: dialling an agent by id needs it.
            report = await run_conversation(server, agent, rendered, settings, printer, http)
        finally:
            if polling is not None:
                polling.cancel()
                await asyncio.gather(polling, return_exceptions=True)
        if key:
            await poller.show_new(report.call_id, unfinished_too=True)
            await _print_status(http, report.call_id, console)
    return report


async def _print_status(http: httpx.AsyncClient, call_id: str, console: Console) -> None:
    with contextlib.suppress(httpx.HTTPError, ValueError):
        response = await http.get(f"/api/v1/calls/{call_id}")
        if response.status_code == 200:
            call = response.json()
            status = escape(f"{call.get('status')} ({call.get('end_reason')})")
            console.print(f"[dim]call status: {status}[/]")


def call(
    agent: Annotated[str, typer.Option("--agent", help="Agent id or dialled number.")],
    server: Annotated[str, typer.Option(help="The Switchboard server, host:port or URL.")] = (
        "127.0.0.1:8000"
    ),
    say: Annotated[
        list[str] | None, typer.Option("--say", help="A line to speak (Piper voice); repeatable.")
    ] = None,
    audio: Annotated[
        list[Path] | None,
        typer.Option("--audio", exists=True, dir_okay=False, help="A WAV to play; repeatable."),
    ] = None,
    key: Annotated[
        str | None,
        typer.Option(envvar="SWITCHBOARD_API_KEY", help="API key: show the agent's words."),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Where to save what you heard (8 kHz mono WAV).")
    ] = None,
    stereo: Annotated[
        Path | None, typer.Option(help="Also save both sides (left: you, right: agent).")
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each reply.")] = 30.0,
) -> None:
    """Call an agent like a phone: speak each line in turn, print the conversation, save it.

    Lines are spoken in this order: every --say, then every --audio.
    """
    console = Console(stderr=True)
    lines = [CallerLine(text=t) for t in say or []] + [CallerLine(audio=p) for p in audio or []]
    settings = ConversationSettings(reply_timeout=timeout, greeting_timeout=timeout)
    try:
        report = asyncio.run(_run_call(console, server, agent, lines, key, settings))
    except CallRejected as exc:
        console.print(f"[red]call not answered:[/] {escape(exc.said or '(hung up)')}")
        raise typer.Exit(1) from exc
    except CallFailed as exc:
        console.print(f"[red]call failed:[/] {escape(str(exc))}")
        raise typer.Exit(1) from exc
    except BadLine as exc:
        console.print(f"[red]bad input:[/] {escape(str(exc))}")
        raise typer.Exit(2) from exc
    console.print(summary_table(report))
    path = out or Path(f"switchboard-call-{report.call_id}.wav")
    saved = asyncio.run(save_recordings(report, path, stereo))
    console.print("[dim]saved what you heard" + (" and both sides" if stereo else "") + ":[/]")
    for file in saved:
        typer.echo(str(file))
    if any(turn.reply is None for turn in report.turns):
        raise typer.Exit(NO_REPLY_EXIT)
