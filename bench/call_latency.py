"""Voice-to-voice latency of whole phone calls, measured where the caller hears it.

    .venv/bin/python bench/call_latency.py     # a table; bench/results/call_latency.json
    .venv/bin/python bench/call_latency.py --server 127.0.0.1:8000 --key sb_...  # a running one

Unless given ``--server``, it starts its own server (``switchboard serve`` on a
free port with a fresh data dir) and makes an owner key with ``switchboard
keys create``. Through the API it creates two agents, each on a simulator
number: ``fake`` (the deterministic STT, LLM and TTS with set delays, turn
detection by VAD alone) and ``embedded`` (no provider fields: the defaults).

Each call is what ``switchboard call`` does: a caller speaks real utterances
(``/work/shared/audio``, else ``tests/fixtures/audio``) in real time over
Twilio Media Streams. Per turn: voice-to-voice, from the caller's last frame
with sound to the agent's first audio frame; and gaps, underruns of the
phone's playback buffer while the agent speaks. The fake agent takes K calls
one after another, then C at once; the embedded one a cold call (models load)
and a warm one.

The platform's own share of a fake turn is its voice-to-voice minus what the
providers were told to take: the VAD stop time (``pipeline.vad.stop_seconds``
from the agent's runtime config), the STT latency, the LLM's time to first
token plus streaming the reply's first sentence (the TTS speaks whole
sentences), and the TTS's time to first byte. The greeting is assumed not to
be an LLM request, so turn n gets reply n.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import json
import math
import os
import platform
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from switchboard.caller.caller_voice import CallerLine, CallerVoice
from switchboard.caller.conversation import (
    CallFailed,
    CallReport,
    ConversationSettings,
    RenderedLine,
    run_conversation,
)

BENCH = Path(__file__).parent
RESULTS = BENCH / "results" / "call_latency.json"
CORPORA = (Path("/work/shared/audio"), BENCH.parent / "tests" / "fixtures" / "audio")
FAKE_NUMBER, EMBEDDED_NUMBER = "+15550199", "+15550198"
GREETING = "Hello, benchmark line."
REPLIES = (
    "Sure, I can help you with that.",
    "We are open from nine to five.",
    "Okay, let me check that for you.",
    "Done, is there anything else?",
)
MIN_REPLY_S = 0.1  # shorter agent audio after a line does not count as a reply
FAKE_OPTIONS = {"stt_latency_ms": 150, "ttft_ms": 300, "tokens_per_second": 50, "ttfb_ms": 150}
Row = dict[str, Any]


# ---- measurement: pure functions of what the calls recorded --------------------------------


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (``q`` in 0-100), None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def first_sentence_tokens(text: str) -> int:
    """Tokens (words, as the fake LLM streams them) up to the first sentence's end."""
    sentence = re.split(r"(?<=[.!?])\s", text.strip(), maxsplit=1)[0]
    return len(sentence.split())


@dataclass(frozen=True)
class ProviderBudget:
    """What the agent's providers were configured to take, per turn, in seconds."""

    vad_stop_s: float
    stt_s: float = 0.0
    llm_ttft_s: float = 0.0
    tokens_per_second: float | None = None
    tts_ttfb_s: float = 0.0
    providers_known: bool = False  # only the fakes say how long they take

    def seconds(self, reply_text: str) -> float:
        streaming = 0.0
        if self.tokens_per_second:
            streaming = max(0, first_sentence_tokens(reply_text) - 1) / self.tokens_per_second
        return self.vad_stop_s + self.stt_s + self.llm_ttft_s + streaming + self.tts_ttfb_s


def budget_from_runtime_config(runtime: Row) -> ProviderBudget:
    """The budget from ``GET /api/v1/agents/{id}/runtime-config``."""
    config = runtime["config"]
    vad_stop = float(config.get("pipeline", {}).get("vad", {}).get("stop_seconds", 0.8))
    stt, llm, tts = config.get("stt", {}), config.get("llm", {}), config.get("tts", {})
    if not all(part.get("provider") == "fake" for part in (stt, llm, tts)):
        return ProviderBudget(vad_stop)
    stt_options, llm_options = stt.get("options", {}), llm.get("options", {})
    return ProviderBudget(
        vad_stop_s=vad_stop,
        stt_s=stt_options.get("latency_ms", 100) / 1000,
        llm_ttft_s=llm_options.get("ttft_ms", 200) / 1000,
        tokens_per_second=llm_options.get("tokens_per_second", 50),
        tts_ttfb_s=tts.get("options", {}).get("ttfb_ms", 150) / 1000,
        providers_known=True,
    )


@dataclass(frozen=True)
class TurnSample:
    scenario: str
    call: str
    turn: int
    v2v_s: float | None  # None: no reply in time
    platform_s: float | None  # None: the providers' own times are unknown
    reply_s: float
    gaps_ms: tuple[float, ...]


def turn_samples(
    report: CallReport, scenario: str, budget: ProviderBudget, replies: Sequence[str] = REPLIES
) -> list[TurnSample]:
    samples = []
    for turn in report.turns:
        reply = turn.reply
        # A few samples flushed as the agent hangs up are not a reply.
        v2v = turn.voice_to_voice if reply and reply.seconds >= MIN_REPLY_S else None
        platform_s = None
        if v2v is not None and budget.providers_known:
            reply_text = replies[min(turn.index, len(replies)) - 1]
            platform_s = v2v - budget.seconds(reply_text)
        gaps = reply.gaps_ms if reply else ()
        reply_s = reply.seconds if reply else 0.0
        samples.append(
            TurnSample(scenario, report.call_id, turn.index, v2v, platform_s, reply_s, gaps)
        )
    return samples


def summarize(
    scenario: str, calls: int, reports: Sequence[CallReport], samples: Sequence[TurnSample]
) -> Row:
    """One table row: p50/p90 in ms; gaps counted per turn and in total."""
    v2v = [s.v2v_s for s in samples if s.v2v_s is not None]
    platform_share = [s.platform_s for s in samples if s.platform_s is not None]
    gaps = [g for s in samples for g in s.gaps_ms]

    def ms(value: float | None) -> int | None:
        return None if value is None else round(value * 1000)

    return {
        "scenario": scenario,
        "calls": calls,
        "failed_calls": calls - len(reports),
        "agent_hung_up": sum(r.hung_up_by == "agent" for r in reports),
        "turns": len(samples),
        "no_reply": sum(s.v2v_s is None for s in samples),
        "v2v_p50_ms": ms(percentile(v2v, 50)),
        "v2v_p90_ms": ms(percentile(v2v, 90)),
        "platform_p50_ms": ms(percentile(platform_share, 50)),
        "platform_p90_ms": ms(percentile(platform_share, 90)),
        "turns_with_gaps": sum(bool(s.gaps_ms) for s in samples),
        "gaps": len(gaps),
        "gap_total_ms": round(sum(gaps)),
        "gap_max_ms": round(max(gaps)) if gaps else 0,
    }


# ---- the server, its key, its agents ------------------------------------------------------


def switchboard_command() -> list[str]:
    script = Path(sys.executable).with_name("switchboard")
    return [str(script)] if script.exists() else [sys.executable, "-m", "switchboard.cli"]


def server_environment() -> dict[str, str]:
    """This environment without SWITCHBOARD_* (a developer's database URL must not leak in)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")}


def create_key(data_dir: Path) -> str:
    args = ["keys", "create", "--workspace", "bench", "--role", "owner", "--data-dir"]
    done = subprocess.run(
        [*switchboard_command(), *args, str(data_dir)],
        capture_output=True, text=True, check=True, env=server_environment(), timeout=120,
    )  # fmt: skip
    return done.stdout.strip().splitlines()[-1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def running_server(data_dir: Path, console: Console) -> Iterator[str]:
    """``switchboard serve`` on a free port until the block ends; yields ``127.0.0.1:port``."""
    port = free_port()
    log_path = data_dir / "server.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [*switchboard_command(), "serve", "--port", str(port), "--data-dir", str(data_dir)],
            stdout=log, stderr=subprocess.STDOUT, env=server_environment(),
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 120
            while not _healthy(port):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the server did not start:\n{log_path.read_text()[-2000:]}")
                time.sleep(0.2)  # another process: nothing to await but its port
            console.print(f"[dim]server on 127.0.0.1:{port}, log {log_path}[/]")
            yield f"127.0.0.1:{port}"
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


async def _api(http: httpx.AsyncClient, method: str, path: str, body: Row | None = None) -> Any:
    response = await http.request(method, f"/api/v1{path}", json=body)
    if response.is_error:
        raise RuntimeError(f"{method} {path}: HTTP {response.status_code} {response.text[:500]}")
    return response.json()


async def agent_on_number(http: httpx.AsyncClient, body: Row, number: str) -> ProviderBudget:
    """Create the agent, put it on ``number``, return its providers' budget."""
    agent = await _api(http, "POST", "/agents", body)
    await _api(
        http,
        "POST",
        "/numbers",
        {"number": number, "carrier": "simulator", "agent_id": agent["id"]},
    )
    return budget_from_runtime_config(
        await _api(http, "GET", f"/agents/{agent['id']}/runtime-config")
    )


def fake_agent(transcripts: Sequence[str], turn_detection: str) -> Row:
    stt = {"transcripts": list(transcripts), "latency_ms": FAKE_OPTIONS["stt_latency_ms"]}
    llm = {
        "replies": [{"text": reply} for reply in REPLIES],
        "ttft_ms": FAKE_OPTIONS["ttft_ms"],
        "tokens_per_second": FAKE_OPTIONS["tokens_per_second"],
    }
    return {
        "name": "bench fake",
        "system_prompt": "You are a benchmark.",
        "greeting": GREETING,
        "stt": {"provider": "fake", "options": stt},
        "llm": {"provider": "fake", "options": llm},
        "tts": {"provider": "fake", "options": {"ttfb_ms": FAKE_OPTIONS["ttfb_ms"]}},
        "pipeline": {"turn_detection": turn_detection},
    }


# Questions a dental receptionist answers: "book", "no thanks" or "goodbye" invite the
# small model to end the call, which ends the benchmark's turns too.
EMBEDDED_QUESTIONS = ("opening_hours.wav", "price.wav", "friday_slot.wav", "address.wav")
EMBEDDED_AGENT: Row = {
    "name": "bench embedded",
    "system_prompt": "You are a receptionist at a dental clinic. Answer in one short sentence.",
    "greeting": "Hello, Riverside Dental, how can I help?",
}


# ---- the calls ---------------------------------------------------------------------------


def utterances(prefer: Sequence[str] = ()) -> list[tuple[Path, str]]:
    """The corpus's (file, text) pairs, the ``prefer``-red files first in that order."""
    directory = next(d for d in CORPORA if (d / "utterances.tsv").is_file())
    with (directory / "utterances.tsv").open(newline="") as tsv:
        rows = [(r["file"], r["text"]) for r in csv.DictReader(tsv, delimiter="\t")]
    rank = {name: n for n, name in enumerate(prefer)}
    rows.sort(key=lambda row: rank.get(row[0], len(rank)))
    return [(directory / name, text) for name, text in rows]


async def render(items: Sequence[tuple[Path, str]]) -> list[RenderedLine]:
    voice = CallerVoice()
    return [RenderedLine(text, await voice.render(CallerLine(audio=path))) for path, text in items]


async def calls(
    server: str, number: str, lines: Sequence[RenderedLine], count: int, at_once: bool,
    settings: ConversationSettings,
) -> list[CallReport]:  # fmt: skip
    """``count`` calls, one after another or all at once; the reports of those placed."""

    async def one() -> CallReport | BaseException:
        try:
            return await run_conversation(server, number, lines, settings)
        except CallFailed as exc:
            return exc

    if at_once:
        results = await asyncio.gather(*(one() for _ in range(count)))
    else:
        results = [await one() for _ in range(count)]
    for failure in (r for r in results if isinstance(r, CallFailed)):
        print(f"call failed: {failure}", file=sys.stderr)
    return [r for r in results if isinstance(r, CallReport)]


async def bench(args: argparse.Namespace, server: str, key: str, console: Console) -> Row:
    corpus = utterances()
    turns = [corpus[i % len(corpus)] for i in range(args.turns)]
    rows: list[Row] = []
    samples: list[TurnSample] = []
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=f"http://{server}", headers=headers, timeout=30) as http:
        budget = await agent_on_number(
            http, fake_agent([t for _, t in turns], args.turn_detection), FAKE_NUMBER
        )
        embedded_budget = None
        if args.embedded_turns:
            embedded_budget = await agent_on_number(http, EMBEDDED_AGENT, EMBEDDED_NUMBER)
    fake_settings = ConversationSettings(reply_timeout=15, greeting_timeout=30)
    lines = await render(turns)
    plans = [
        ("fake, sequential", args.calls, False),
        (f"fake, {args.concurrent} at once", args.concurrent, True),
    ]
    for name, count, at_once in plans:
        console.print(f"[bold]{name}[/]: {count} calls x {len(lines)} turns")
        reports = await calls(server, FAKE_NUMBER, lines, count, at_once, fake_settings)
        found = [s for r in reports for s in turn_samples(r, name, budget)]
        samples += found
        rows.append(summarize(name, count, reports, found))
    if embedded_budget is not None:
        slow = ConversationSettings(reply_timeout=90, greeting_timeout=180)
        embedded_lines = await render(utterances(EMBEDDED_QUESTIONS)[: args.embedded_turns])
        for name in ("embedded, first call", "embedded, warm"):
            console.print(f"[bold]{name}[/]: 1 call x {len(embedded_lines)} turns")
            reports = await calls(server, EMBEDDED_NUMBER, embedded_lines, 1, False, slow)
            found = [s for r in reports for s in turn_samples(r, name, embedded_budget)]
            samples += found
            rows.append(summarize(name, 1, reports, found))
    return {"rows": rows, "samples": [asdict(s) for s in samples], "fake_budget": asdict(budget)}


def print_rows(rows: Sequence[Row], console: Console) -> None:
    """One column per scenario, one line per measure: fits a terminal."""
    table = Table(title=f"Phone calls, measured by the caller ({os.cpu_count()} CPUs)")
    table.add_column("measure")
    for row in rows:
        table.add_column(str(row["scenario"]), justify="right")
    for measure in list(rows[0])[1:]:
        values = ("-" if row[measure] is None else str(row[measure]) for row in rows)
        table.add_row(measure.replace("_", " "), *values)
    console.print(table)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=3, help="fake-agent calls in sequence (K)")
    parser.add_argument("--concurrent", type=int, default=4, help="fake-agent calls at once (C)")
    parser.add_argument("--turns", type=int, default=4, help="caller lines per fake call")
    parser.add_argument("--embedded-turns", type=int, default=3, help="0 skips the embedded agent")
    parser.add_argument("--turn-detection", choices=["vad", "smart_turn"], default="vad")
    parser.add_argument("--server", help="use this running server (host:port) instead")
    parser.add_argument("--key", help="an owner or developer key for --server")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if bool(args.server) != bool(args.key):
        parser.error("--server and --key go together")
    console = Console()
    load_before = os.getloadavg()
    with contextlib.ExitStack() as stack:
        if args.server:
            server, key = args.server, args.key
        else:
            data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sb-bench-")))
            key = create_key(data_dir)
            server = stack.enter_context(running_server(data_dir, console))
        result = asyncio.run(bench(args, server, key, console))
    print_rows(result["rows"], console)
    document = {
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_average_before": [round(x, 2) for x in load_before],
        "settings": {k: v for k, v in vars(args).items() if k not in ("key", "out")},
        "fake_options": FAKE_OPTIONS,
        **result,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2, default=str) + "\n")
    console.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
