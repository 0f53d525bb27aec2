"""The fake LLM: replies in order, set timing, tool calls, and failures that trigger failover."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest
from pipecat.frames.frames import (
    EndFrame,
    ErrorFrame,
    Frame,
    LLMContextFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    MetricsFrame,
)
from pipecat.metrics.metrics import LLMUsageMetricsData, TTFBMetricsData
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.service_switcher import ServiceSwitcher, ServiceSwitcherStrategyFailover
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.services.llm_service import FunctionCallParams
from pipecat.tests.utils import run_test
from pipecat.utils.errors import ErrorCategory
from pipecat.workers.runner import WorkerRunner

from switchboard.agents.schema import LLMSettings
from switchboard.providers.base import BuildContext, ProviderKind
from switchboard.providers.llm.fake import FakeLLMService
from switchboard.providers.options import FakeLLMReply, FakeToolCall
from switchboard.providers.registry import load_adapter

CONTEXT_MESSAGES: list[Any] = [{"role": "user", "content": "hello"}]


def context() -> LLMContext:
    return LLMContext(messages=list(CONTEXT_MESSAGES))


def responses(frames: Sequence[Frame]) -> list[str]:
    """The text of each response, in order."""
    said: list[str] = []
    for frame in frames:
        if isinstance(frame, LLMFullResponseStartFrame):
            said.append("")
        elif isinstance(frame, LLMTextFrame):
            said[-1] += frame.text
    return said


class Stamps(FrameProcessor):
    """Notes when each downstream frame passes, on the loop's clock, and who sent it."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[float, Frame]] = []
        self.responses_ended = 0
        self.changed = asyncio.Event()

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if direction is FrameDirection.DOWNSTREAM:
            self.seen.append((asyncio.get_running_loop().time(), frame))
            if isinstance(frame, LLMFullResponseEndFrame):
                self.responses_ended += 1
                self.changed.set()
        await self.push_frame(frame, direction)

    async def wait_for_responses(self, count: int) -> None:
        async with asyncio.timeout(10):
            while self.responses_ended < count:
                self.changed.clear()
                await self.changed.wait()


class Live:
    """A running pipeline the test feeds frame by frame, waiting on conditions in between."""

    def __init__(self, processor: FrameProcessor, params: PipelineParams | None = None) -> None:
        self.stamps = Stamps()
        self.worker = PipelineWorker(
            Pipeline([processor, self.stamps]),
            params=params or PipelineParams(),
            cancel_on_idle_timeout=False,
        )
        self._run: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Live:
        started = asyncio.Event()

        @self.worker.event_handler("on_pipeline_started")
        async def _started(worker: PipelineWorker, frame: Frame) -> None:
            started.set()

        runner = WorkerRunner()
        await runner.add_workers(self.worker)
        self._run = asyncio.create_task(runner.run())
        async with asyncio.timeout(10):
            await started.wait()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.worker.queue_frame(EndFrame())
        assert self._run is not None
        async with asyncio.timeout(10):
            await self._run

    async def ask(self, count: int = 1) -> None:
        """Send one context frame and wait until ``count`` responses have ended in all."""
        await self.worker.queue_frame(LLMContextFrame(context()))
        await self.stamps.wait_for_responses(count)


async def test_replies_come_in_order_and_the_last_repeats() -> None:
    llm = FakeLLMService(
        replies=[FakeLLMReply(text="One."), FakeLLMReply(text="Two, then more.")],
        ttft_seconds=0,
        tokens_per_second=None,
    )
    down, _ = await run_test(llm, frames_to_send=[LLMContextFrame(context()) for _ in range(3)])
    assert responses(down) == ["One.", "Two, then more.", "Two, then more."]


async def test_tool_calls_reach_the_handler_with_their_arguments() -> None:
    call = FakeToolCall(name="book", arguments={"day": "monday", "seats": 2})
    llm = FakeLLMService(replies=[FakeLLMReply(text="Booking.", tool_calls=[call])])
    seen: list[tuple[str, dict[str, Any]]] = []

    async def book(params: FunctionCallParams) -> None:
        seen.append((params.function_name, dict(params.arguments)))
        await params.result_callback("booked")

    llm.register_function("book", book)
    down, _ = await run_test(llm, frames_to_send=[LLMContextFrame(context())])
    assert seen == [("book", {"day": "monday", "seats": 2})]
    assert responses(down) == ["Booking."]


async def test_first_token_and_pace_follow_the_settings() -> None:
    ttft, rate = 0.15, 40.0
    llm = FakeLLMService(
        replies=[FakeLLMReply(text="one two three four five")],
        ttft_seconds=ttft,
        tokens_per_second=rate,
    )
    async with Live(llm) as live:
        await live.ask()
    seen = live.stamps.seen
    start = next(t for t, f in seen if isinstance(f, LLMFullResponseStartFrame))
    tokens = [t for t, f in seen if isinstance(f, LLMTextFrame)]
    assert len(tokens) == 5
    slack = 0.005  # the loop may wake up to a clock tick early
    assert ttft - slack <= tokens[0] - start < ttft + 0.1
    # Tokens keep to their schedule from the start: a late first token is not made up for
    # by a later last one, so the pace is measured from the start, not the first token.
    assert ttft + 4 / rate - slack <= tokens[-1] - start < ttft + 4 / rate + 0.1


async def test_ttfb_and_usage_are_reported_like_a_real_service() -> None:
    llm = FakeLLMService(replies=[FakeLLMReply(text="one two three")], ttft_seconds=0.05)
    params = PipelineParams(enable_metrics=True, enable_usage_metrics=True)
    down, _ = await run_test(
        llm, frames_to_send=[LLMContextFrame(context())], pipeline_params=params
    )
    data = [d for f in down if isinstance(f, MetricsFrame) for d in f.data]
    ttfb = [d.value for d in data if isinstance(d, TTFBMetricsData) and d.value > 0]
    usage = [d.value for d in data if isinstance(d, LLMUsageMetricsData)]
    assert len(ttfb) == 1 and 0.05 - 0.005 <= ttfb[0] < 0.5
    assert [(u.prompt_tokens, u.completion_tokens, u.total_tokens) for u in usage] == [(1, 3, 4)]


async def test_fail_after_pushes_a_retryable_error_and_marks_the_service_unusable() -> None:
    llm = FakeLLMService(fail_after=1, ttft_seconds=0, tokens_per_second=None)
    down, up = await run_test(llm, frames_to_send=[LLMContextFrame(context()) for _ in range(2)])
    assert responses(down) == ["Okay.", ""]
    errors = [f for f in up if isinstance(f, ErrorFrame)]
    assert len(errors) == 1
    assert errors[0].category is ErrorCategory.SERVER
    assert not errors[0].category.is_permanent
    assert errors[0].processor is llm
    assert not llm.is_usable


async def test_failover_moves_to_the_next_llm_which_answers() -> None:
    primary = FakeLLMService(replies=[FakeLLMReply(text="primary")], fail_after=1, ttft_seconds=0)
    backup = FakeLLMService(replies=[FakeLLMReply(text="backup")], ttft_seconds=0)
    switcher = ServiceSwitcher([primary, backup], strategy_type=ServiceSwitcherStrategyFailover)
    switched = asyncio.Event()

    @switcher.strategy.event_handler("on_service_switched")
    async def _switched(strategy: object, service: FrameProcessor) -> None:
        switched.set()

    async with Live(switcher) as live:
        await live.ask(1)
        await live.ask(2)  # the primary fails this one
        async with asyncio.timeout(5):
            await switched.wait()
        assert switcher.strategy.active_service is backup
        await live.ask(3)
    assert responses([f for _, f in live.stamps.seen]) == ["primary", "", "backup"]
    assert (primary.requests, backup.requests) == (2, 1)


@pytest.mark.parametrize("fail_after", [None, 3])
async def test_the_adapter_maps_its_options(fail_after: int | None) -> None:
    settings = LLMSettings(
        provider="fake",
        options={
            "replies": [{"text": "hi", "tool_calls": [{"name": "end_call"}]}],
            "ttft_ms": 120,
            "tokens_per_second": 25,
            "fail_after": fail_after,
        },
    )
    llm = load_adapter(ProviderKind.LLM, "fake").create(settings, BuildContext(8000))
    assert isinstance(llm, FakeLLMService)
    assert (llm.ttft_seconds, llm.tokens_per_second, llm.fail_after) == (0.12, 25, fail_after)
    assert llm.replies[0].tool_calls[0].name == "end_call"
