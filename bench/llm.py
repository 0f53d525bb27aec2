"""How fast the embedded LLM answers on this machine, measured through Pipecat as a call sees it.

For each engine a pipeline is kept running, like one call, and short caller
turns are sent to it one after another: time to first token (from sending the
context to the first ``LLMTextFrame``, or to the tool call when the model
calls one) and tokens per second (streamed chunks after the first, over the
time they took). The scripted LLM is measured the same way for contrast.

    python -m bench.llm            # prints a table, writes bench/results/llm.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipecat.adapters.llm.schemas.function_schema import FunctionSchema
from pipecat.adapters.llm.schemas.tools_schema import ToolsSchema
from pipecat.frames.frames import (
    EndFrame,
    ErrorFrame,
    Frame,
    FunctionCallsStartedFrame,
    LLMContextFrame,
    LLMFullResponseEndFrame,
    LLMTextFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.services.llm_service import FunctionCallParams, LLMService
from pipecat.services.openai.llm import OpenAILLMService
from pipecat.workers.runner import WorkerRunner

from switchboard.providers.llm.llama_cpp import LlamaCppLLMService
from switchboard.providers.llm.llama_server import LlamaServer
from switchboard.providers.llm.scripted import ScriptedLLMService
from switchboard.providers.options import ScriptedRule

RESULTS = Path(__file__).parent / "results" / "llm.json"
SYSTEM = "You are a friendly receptionist at a pizza restaurant. Answer in one short sentence."
PROMPTS = (
    "What are your opening hours?",
    "Can I book a table for two tonight?",
    "Where are you located?",
    "Do you deliver to the city centre?",
    "How much is a large pizza?",
    "Do you have vegan options?",
    "Is there parking nearby?",
    "Are you open on Sunday?",
    "Can I pay by card?",
    "Do you take large group bookings?",
)
TOOL_PROMPTS = (
    "Please transfer me to support.",
    "I want to talk to sales.",
    "Goodbye, you can hang up now.",
    "What are your opening hours?",
    "Can I book a table for two tonight?",
)
TOOLS = ToolsSchema(
    standard_tools=[
        FunctionSchema(
            "transfer_call",
            "Transfer the caller to a human in a department",
            {"department": {"type": "string", "enum": ["sales", "support"]}},
            ["department"],
        ),
        FunctionSchema("end_call", "Hang up the call", {}, []),
    ]
)


class _Clock(FrameProcessor):
    """Times each response: first output and every token, on the loop's clock."""

    def __init__(self) -> None:
        super().__init__()
        self.tokens: list[float] = []
        self.first_output: float | None = None
        self.errors = 0
        self.tool_calls = 0
        self.done = asyncio.Event()

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        now = asyncio.get_running_loop().time()
        if isinstance(frame, LLMTextFrame):
            self.tokens.append(now)
        if isinstance(frame, LLMTextFrame | FunctionCallsStartedFrame) and not self.first_output:
            self.first_output = now
        if isinstance(frame, FunctionCallsStartedFrame):
            self.tool_calls += len(frame.function_calls)
        if isinstance(frame, ErrorFrame):
            self.errors += 1
        if isinstance(frame, LLMFullResponseEndFrame):
            self.done.set()
        await self.push_frame(frame, direction)


async def _answer_ok(params: FunctionCallParams) -> None:
    await params.result_callback({"ok": True})


async def _measure(llm: LLMService, prompts: Sequence[str], tools: bool) -> dict[str, Any]:
    llm.register_function(None, _answer_ok)
    clock = _Clock()
    worker = PipelineWorker(Pipeline([llm, clock]), params=PipelineParams())
    runner = WorkerRunner()
    await runner.add_workers(worker)
    running = asyncio.create_task(runner.run())
    ttfts: list[float] = []
    rates: list[float] = []
    tokens = 0
    try:
        for prompt in prompts:
            clock.tokens, clock.first_output = [], None
            clock.done.clear()
            context = LLMContext(
                messages=[{"role": "user", "content": prompt}],
                tools=TOOLS if tools else ToolsSchema(standard_tools=[]),
            )
            sent = asyncio.get_running_loop().time()
            await worker.queue_frame(LLMContextFrame(context))
            async with asyncio.timeout(120):
                await clock.done.wait()
            if clock.first_output is not None:
                ttfts.append(clock.first_output - sent)
            tokens += len(clock.tokens)
            if len(clock.tokens) > 1 and clock.tokens[-1] > clock.tokens[0]:
                rates.append((len(clock.tokens) - 1) / (clock.tokens[-1] - clock.tokens[0]))
    finally:
        await worker.queue_frame(EndFrame())
        await running
    return {
        "prompts": len(prompts),
        "answered": len(ttfts),
        "errors": clock.errors,
        "ttft_ms_median": _ms(statistics.median(ttfts)) if ttfts else None,
        "ttft_ms_p90": _ms(_p90(ttfts)) if ttfts else None,
        "tokens_per_second": round(statistics.median(rates), 1) if rates else None,
        "tokens": tokens,
        "tool_calls": clock.tool_calls,
    }


def _p90(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def _llama_service(server: LlamaServer) -> LlamaCppLLMService:
    settings = OpenAILLMService.Settings(
        model=server.model_alias, temperature=0.3, max_tokens=48, system_instruction=SYSTEM
    )
    return LlamaCppLLMService(server=server, settings=settings, context_tokens=2048)


async def _measure_all(threads: Sequence[int]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for count in threads:
        server = LlamaServer(threads=count, context_tokens=2048)
        started = time.perf_counter()
        try:
            await server.ensure_started()
            start_s = round(time.perf_counter() - started, 2)
            await _measure(_llama_service(server), PROMPTS[:2], tools=False)  # warm-up
            for case, prompts, tools in (("text", PROMPTS, False), ("tools", TOOL_PROMPTS, True)):
                result = await _measure(_llama_service(server), prompts, tools)
                rows.append(
                    {"engine": "llama_cpp", "case": case, "threads": count,
                     "server_start_s": start_s, **result}
                )  # fmt: skip
        finally:
            await server.aclose()
    rules = [ScriptedRule(match=["hours", "open"], reply="We are open from noon to ten, daily.")]
    scripted = ScriptedLLMService(rules=rules, fallback="Sorry, could you say that again?")
    result = await _measure(scripted, PROMPTS, tools=False)
    rows.append({"engine": "scripted", "case": "text", "threads": 1, **result})
    return rows


def measure_llm(threads: Sequence[int] = (1, 2)) -> list[dict[str, Any]]:
    """Measure the embedded LLM (per llama.cpp thread count) and the scripted LLM."""
    return asyncio.run(_measure_all(threads))


def _print_table(rows: Sequence[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"LLM on this machine ({os.cpu_count()} CPUs; llama_cpp = SmolLM2-135M Q4_1)"
    )
    for column in ("engine", "case", "threads", "prompts", "TTFT median ms", "TTFT p90 ms",
                   "tokens/s", "tool calls", "errors"):  # fmt: skip
        table.add_column(column)
    for row in rows:
        rate = row["tokens_per_second"] or "-"
        table.add_row(
            row["engine"], row["case"], str(row["threads"]),
            f"{row['answered']}/{row['prompts']}", str(row["ttft_ms_median"]),
            str(row["ttft_ms_p90"]), "instant" if row["engine"] == "scripted" else str(rate),
            str(row["tool_calls"]), str(row["errors"]),
        )  # fmt: skip
    Console().print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    rows = measure_llm(args.threads)
    _print_table(rows)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    report = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
              "results": rows}  # fmt: skip
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
