"""How well answering-machine detection tells machines from people, on synthesized greetings.

    .venv/bin/python bench/machine_detection.py     # a table; bench/results/machine_detection.json
    .venv/bin/python bench/machine_detection.py --detectors heuristic     # ours only, ~20 s
    .venv/bin/python bench/machine_detection.py --smollm2     # also ask the embedded LLM

The labelled set is ``switchboard.voice.machine_detection.corpus``: 20 machine
and 21 human greetings in the embedded Piper voice through an 8 kHz µ-law
line, cached as WAVs (``--cache-dir``, by default in the temp dir). Each
greeting is played into a pipeline of its own as a live call would: 20 ms
``InputAudioRawFrame``s at 8 kHz, paced by the clock, then silence until the
detector has nothing left to find (at most ``EXTRA_SILENCE_SECS``). Detectors:

- ``heuristic``: ours, ``MachineDetector`` (greeting length, silence, beeps),
  alone in the pipeline, every greeting at once (like 41 concurrent calls).
- ``pipecat``: Pipecat's ``VoicemailDetector`` made to run offline, placed as
  its docs say, in a call's pipeline with the agents' defaults: Whisper
  ``tiny.en`` (the embedded STT) → detector → the user aggregator (Silero VAD,
  Smart Turn), with ``VoicemailPhraseClassifier`` answering the detector's
  question; ``--pipecat-concurrency`` at once, since Whisper needs the CPU.
  Its verdict is when it releases the agent's speech or interrupts it, its
  greeting end when ``on_voicemail_detected`` fires.

Reported per detector: accuracy (an ``unknown`` counts as wrong), precision and
recall for ``machine``, the confusion matrix, decision time (seconds after the
answer, by the wall clock), and for machines found as machines the greeting-end
error (found minus true end: negative would speak over the greeting). For the
heuristic, the CPU its analysis costs per 20 ms frame.

``--smollm2`` also asks the embedded LLM (SmolLM2-135M via llama.cpp) about each
greeting's script text: once as ``VoicemailDetector``'s ``LLMClassifier`` asks
it, once constrained to a JSON answer by a grammar.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from loguru import logger
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipecat.extensions.voicemail.voicemail_detector import VOICEMAIL_QUESTION, VoicemailDetector
from pipecat.frames.frames import (
    EndFrame,
    Frame,
    InputAudioRawFrame,
    InterruptionFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import LLMContextAggregatorPair
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.services.whisper.stt import WhisperSTTSettings
from pipecat.transcriptions.language import Language
from pipecat.workers.runner import WorkerRunner

from switchboard.agents.schema import PipelineSettings
from switchboard.providers.phone_line import PHONE_SAMPLE_RATE
from switchboard.providers.stt.whisper import (
    TTFS_P99_SECS,
    SharedWhisperSTTService,
    bundled_model_path,
)
from switchboard.voice.machine_detection import MachineDetector
from switchboard.voice.machine_detection.block_features import BlockAnalyzer
from switchboard.voice.machine_detection.corpus import (
    GREETINGS,
    RenderedGreeting,
    Say,
    load_or_render,
)
from switchboard.voice.machine_detection.greeting import GreetingAnalyzer
from switchboard.voice.machine_detection.phrase_classifier import VoicemailPhraseClassifier
from switchboard.voice.pipeline import user_params

RESULTS = Path(__file__).parent / "results" / "machine_detection.json"
FRAME_SECONDS = 0.02
FRAME_BYTES = round(PHONE_SAMPLE_RATE * FRAME_SECONDS) * 2
EXTRA_SILENCE_SECS = 8.0  # after the greeting's own audio, until the detector settles
START_TIMEOUT_SECS = 30.0
Row = dict[str, Any]


# ---- one greeting through one pipeline ---------------------------------------------------


@dataclass
class Outcome:
    """What a detector made of one greeting; times are wall-clock seconds after the answer."""

    name: str
    truth: str
    result: str = "unknown"
    decided_s: float | None = None
    greeting_end_s: float | None = None
    true_greeting_end_s: float | None = None

    @classmethod
    def of(cls, greeting: RenderedGreeting) -> Outcome:
        name, label = greeting.greeting.name, greeting.greeting.label
        return cls(name, label, true_greeting_end_s=greeting.greeting_end)

    @property
    def end_error_s(self) -> float | None:
        if self.greeting_end_s is None or self.true_greeting_end_s is None:
            return None
        return self.greeting_end_s - self.true_greeting_end_s


class Clock:
    """Seconds since the first audio frame was sent (``play`` sets ``started``)."""

    started = 0.0

    def now(self) -> float:
        return time.monotonic() - self.started


async def play(
    processors: Sequence[FrameProcessor],
    greeting: RenderedGreeting,
    clock: Clock,
    settled: Callable[[], bool],
) -> None:
    """Play a greeting into a pipeline in real time, then silence until ``settled()``."""
    worker = PipelineWorker(
        Pipeline(list(processors)),
        params=PipelineParams(
            audio_in_sample_rate=PHONE_SAMPLE_RATE, audio_out_sample_rate=PHONE_SAMPLE_RATE
        ),
        cancel_on_idle_timeout=False,
    )
    started = asyncio.Event()

    async def _started(_worker: PipelineWorker, _frame: Frame) -> None:
        started.set()

    worker.add_event_handler("on_pipeline_started", _started)

    async def feed() -> None:
        await asyncio.wait_for(started.wait(), START_TIMEOUT_SECS)
        pcm = greeting.pcm
        extra = round(EXTRA_SILENCE_SECS / FRAME_SECONDS)
        total = math.ceil(len(pcm) / FRAME_BYTES) + extra
        clock.started = time.monotonic()
        for index in range(total):
            if index * FRAME_BYTES >= len(pcm) and settled():
                break
            await asyncio.sleep(max(0.0, clock.started + index * FRAME_SECONDS - time.monotonic()))
            chunk = pcm[index * FRAME_BYTES : (index + 1) * FRAME_BYTES]
            chunk = chunk.ljust(FRAME_BYTES, b"\0")
            await worker.queue_frame(InputAudioRawFrame(chunk, PHONE_SAMPLE_RATE, 1))
        await worker.queue_frame(EndFrame())

    runner = WorkerRunner()
    await runner.add_workers(worker)
    await asyncio.gather(runner.run(), feed())


async def run_heuristic(greeting: RenderedGreeting) -> Outcome:
    """Our ``MachineDetector`` on one greeting."""
    outcome, clock, detector = Outcome.of(greeting), Clock(), MachineDetector()

    async def _decided(_d: MachineDetector, result: Any, _conf: float, _after: float) -> None:
        outcome.result, outcome.decided_s = str(result), clock.now()

    async def _ended(_d: MachineDetector, _after: float, _cue: str) -> None:
        outcome.greeting_end_s = clock.now()

    detector.add_event_handler("on_decision", _decided)
    detector.add_event_handler("on_greeting_end", _ended)

    await play([detector], greeting, clock, lambda: not detector.listening)
    return outcome


class VerdictProbe(FrameProcessor):
    """Notes the ``InterruptionFrame`` a voicemail verdict sends down the pipeline."""

    def __init__(self, on_interruption: Callable[[], None]) -> None:
        super().__init__()
        self._on_interruption = on_interruption

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, InterruptionFrame) and direction is FrameDirection.DOWNSTREAM:
            self._on_interruption()
        await self.push_frame(frame, direction)


async def run_pipecat(greeting: RenderedGreeting) -> Outcome:
    """Pipecat's ``VoicemailDetector``, offline, on one greeting."""
    outcome, clock = Outcome.of(greeting), Clock()
    stt = SharedWhisperSTTService(  # as the embedded STT provider builds it
        model_path=str(bundled_model_path()),
        sample_rate=PHONE_SAMPLE_RATE,
        ttfs_p99_latency=TTFS_P99_SECS,
        settings=WhisperSTTSettings(language=Language.EN),
    )
    detector = VoicemailDetector(classifier=VoicemailPhraseClassifier())

    def decide(result: str) -> None:
        if outcome.decided_s is None:
            outcome.result, outcome.decided_s = result, clock.now()

    async def _person(_detector: VoicemailDetector) -> None:
        decide("human")

    async def _message_time(_detector: VoicemailDetector) -> None:
        outcome.greeting_end_s = clock.now()

    detector.add_event_handler("on_conversation_detected", _person)
    detector.add_event_handler("on_voicemail_detected", _message_time)

    probe = VerdictProbe(lambda: decide("machine"))
    # The user aggregator runs the VAD and the turn model and broadcasts the user's turns
    # upstream to the detector, as in a call's pipeline.
    turns = LLMContextAggregatorPair(LLMContext(), user_params=user_params(PipelineSettings()))
    processors = [stt, detector, probe, turns.user()]

    def settled() -> bool:
        return outcome.result == "human" or outcome.greeting_end_s is not None

    await play(processors, greeting, clock, settled)
    return outcome


# ---- figures -----------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (``q`` in 0-100), None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def summarize(detector: str, outcomes: Sequence[Outcome]) -> Row:
    """Accuracy, machine precision/recall, confusion, decision time and greeting-end error."""
    confusion = {
        truth: {guess: sum(o.truth == truth and o.result == guess for o in outcomes)
                for guess in ("human", "machine", "unknown")}
        for truth in ("human", "machine")
    }  # fmt: skip
    said_machine = confusion["human"]["machine"] + confusion["machine"]["machine"]
    machines = sum(confusion["machine"].values())
    decided = [o.decided_s for o in outcomes if o.decided_s is not None]
    errors = [o.end_error_s for o in outcomes if o.end_error_s is not None and o.truth == "machine"]
    return {
        "detector": detector,
        "greetings": len(outcomes),
        "accuracy": _round(sum(o.result == o.truth for o in outcomes) / len(outcomes), 3),
        "machine_precision": _round(
            confusion["machine"]["machine"] / said_machine if said_machine else None, 3
        ),
        "machine_recall": _round(confusion["machine"]["machine"] / machines, 3),
        "confusion": confusion,
        "decision_p50_s": _round(percentile(decided, 50)),
        "decision_p90_s": _round(percentile(decided, 90)),
        "greeting_ends_found": len(errors),
        "greeting_end_error_p50_s": _round(percentile(errors, 50)),
        "greeting_end_error_p90_s": _round(percentile(errors, 90)),
        "greeting_end_early": sum(e < 0 for e in errors),
    }


def analysis_cost_us(greetings: Sequence[RenderedGreeting]) -> Row:
    """CPU per 20 ms frame of the heuristic's analysis, measured outside any pipeline."""
    costs: list[float] = []
    for greeting in greetings:
        blocks, rules = BlockAnalyzer(PHONE_SAMPLE_RATE), GreetingAnalyzer()
        pcm = greeting.pcm
        for start in range(0, len(pcm) - FRAME_BYTES + 1, FRAME_BYTES):
            began = time.process_time_ns()
            rules.feed(blocks.analyze(pcm[start : start + FRAME_BYTES]))
            costs.append((time.process_time_ns() - began) / 1000)
    return {
        "frames": len(costs),
        "mean_us": _round(sum(costs) / len(costs), 1),
        "p90_us": _round(percentile(costs, 90), 1),
    }


# ---- the embedded LLM as a classifier ------------------------------------------------------


async def ask_smollm2(greetings: Sequence[RenderedGreeting]) -> list[Row]:
    """SmolLM2 on each greeting's script: as Pipecat's LLMClassifier asks, and JSON-constrained."""
    import httpx
    from pipecat.classifiers.llm.classifier import LLMClassifier
    from pipecat.services.openai.llm import OpenAILLMService

    from switchboard.providers.llm.llama_cpp import LlamaCppLLMService
    from switchboard.providers.llm.llama_server import LlamaServer

    server = LlamaServer(context_tokens=2048)
    url = await server.ensure_started()
    settings = OpenAILLMService.Settings(model=server.model_alias, temperature=0.0, max_tokens=64)
    classifier = LLMClassifier(
        llm=LlamaCppLLMService(base_url=url, settings=settings, context_tokens=2048),
        max_tokens=64,
        timeout=30,
    )
    schema = {
        "type": "object",
        "properties": {"choice": {"type": "string", "enum": ["conversation", "voicemail"]}},
        "required": ["choice"],
    }
    system = str(VOICEMAIL_QUESTION.instructions) + " Answer conversation or voicemail."
    answers: dict[str, list[tuple[str, str, float]]] = {"LLMClassifier": [], "json_grammar": []}
    try:
        async with httpx.AsyncClient(timeout=60) as http:
            for greeting in greetings:
                text = " ".join(p.text for p in greeting.greeting.parts if isinstance(p, Say))
                want = "voicemail" if greeting.greeting.label == "machine" else "conversation"
                began = time.monotonic()
                try:
                    result = await classifier.choice(text, {"voicemail": VOICEMAIL_QUESTION})
                    got = result["voicemail"].choice
                except Exception:
                    got = "invalid"
                answers["LLMClassifier"].append((want, got, time.monotonic() - began))
                began = time.monotonic()
                messages = [
                    {"role": "system", "content": system},
                    {"role": "user", "content": f"Heard: {text}"},
                ]
                reply = await http.post(f"{url}/chat/completions", json={
                    "model": server.model_alias, "temperature": 0, "max_tokens": 16,
                    "messages": messages,
                    "response_format": {"type": "json_object", "schema": schema},
                })  # fmt: skip
                try:
                    content = reply.json()["choices"][0]["message"]["content"]
                    got = str(json.loads(content)["choice"])
                except (KeyError, ValueError):
                    got = "invalid"
                answers["json_grammar"].append((want, got, time.monotonic() - began))
    finally:
        await server.aclose()
    return [
        {
            "way": way,
            "asked": len(rows),
            "valid": sum(got != "invalid" for _, got, _ in rows),
            "correct": sum(want == got for want, got, _ in rows),
            "said_voicemail": sum(got == "voicemail" for _, got, _ in rows),
            "latency_p50_s": _round(percentile([s for _, _, s in rows], 50)),
        }
        for way, rows in answers.items()
    ]


# ---- the run -----------------------------------------------------------------------------


async def measure(args: argparse.Namespace) -> Row:
    began = time.monotonic()
    greetings = await load_or_render(GREETINGS, args.cache_dir)
    print(
        f"{len(greetings)} greetings ready in {time.monotonic() - began:.1f} s ({args.cache_dir})"
    )
    result: Row = {
        "machine": {
            "cpus": os.cpu_count(),
            "load": os.getloadavg(),
            "python": platform.python_version(),
        },
        "corpus": {
            "machine": sum(g.greeting.label == "machine" for g in greetings),
            "human": sum(g.greeting.label == "human" for g in greetings),
            "seconds": round(sum(g.seconds for g in greetings), 1),
        },
        "detectors": [],
    }
    if "heuristic" in args.detectors:
        outcomes = await asyncio.gather(*(run_heuristic(g) for g in greetings))
        summary = summarize("heuristic", outcomes)
        summary["analysis_cost"] = analysis_cost_us(greetings)
        result["detectors"].append({**summary, "rows": [asdict(o) for o in outcomes]})
    if "pipecat" in args.detectors:
        limit = asyncio.Semaphore(args.pipecat_concurrency)

        async def one(greeting: RenderedGreeting) -> Outcome:
            async with limit:
                return await run_pipecat(greeting)

        outcomes = await asyncio.gather(*(one(g) for g in greetings))
        summary = summarize("pipecat_voicemail", outcomes)
        result["detectors"].append({**summary, "rows": [asdict(o) for o in outcomes]})
    if args.smollm2:
        result["smollm2"] = await ask_smollm2(greetings)
    return result


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value}"


def print_tables(result: Row) -> None:
    console = Console(width=150)  # a wide table stays readable when piped to a file
    corpus = result["corpus"]
    summary = Table(
        title=f"answering-machine detection: {corpus['machine']} machine and "
        f"{corpus['human']} human greetings, 8 kHz µ-law"
    )
    columns = ("detector", "accuracy", "machine precision", "machine recall",
               "humans heard as h/m/u", "machines heard as h/m/u",
               "decision p50 s", "decision p90 s", "greeting end found",
               "end error p50 s", "end error p90 s", "ended early")  # fmt: skip
    for column in columns:
        summary.add_column(column)
    for row in result["detectors"]:
        heard = {truth: "/".join(str(n) for n in guesses.values())
                 for truth, guesses in row["confusion"].items()}  # fmt: skip
        summary.add_row(
            row["detector"], _fmt(row["accuracy"]), _fmt(row["machine_precision"]),
            _fmt(row["machine_recall"]), heard["human"], heard["machine"],
            _fmt(row["decision_p50_s"]), _fmt(row["decision_p90_s"]),
            f"{row['greeting_ends_found']}/{row['confusion']['machine']['machine']}",
            _fmt(row["greeting_end_error_p50_s"]), _fmt(row["greeting_end_error_p90_s"]),
            _fmt(row["greeting_end_early"]),
        )  # fmt: skip
    console.print(summary)
    for row in result["detectors"]:
        if "analysis_cost" in row:
            cost = row["analysis_cost"]
            console.print(
                f"{row['detector']}: analysis {cost['mean_us']} µs per 20 ms frame on average "
                f"(p90 {cost['p90_us']} µs, {cost['frames']} frames)"
            )
    wrong = Table(title="greetings a detector got wrong: its verdict @ seconds after the answer")
    for column in ("greeting", "truth", *(row["detector"] for row in result["detectors"])):
        wrong.add_column(column)
    by_name = [{o["name"]: o for o in row["rows"]} for row in result["detectors"]]
    for name in by_name[0] if by_name else ():
        cells = [rows[name] for rows in by_name]
        if all(cell["result"] == cell["truth"] for cell in cells):
            continue
        wrong.add_row(
            name,
            cells[0]["truth"],
            *(f"{c['result']} @ {_fmt(_round(c['decided_s'], 1))}" for c in cells),
        )
    console.print(wrong)
    for row in result.get("smollm2", []):
        console.print(
            f"SmolLM2 {row['way']}: {row['valid']}/{row['asked']} valid answers, "
            f"{row['correct']} correct, {row['said_voicemail']} said voicemail, "
            f"p50 {row['latency_p50_s']} s"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--detectors",
        type=lambda s: s.split(","),
        default=["heuristic", "pipecat"],
        help="comma-separated: heuristic, pipecat",
    )
    parser.add_argument("--pipecat-concurrency", type=int, default=2)
    parser.add_argument("--smollm2", action="store_true", help="also ask the embedded LLM")
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "switchboard-machine-detection",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    logger.remove()  # Pipecat logs every frame link at DEBUG
    logger.add(sys.stderr, level="WARNING")
    result = asyncio.run(measure(args))
    print_tables(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
