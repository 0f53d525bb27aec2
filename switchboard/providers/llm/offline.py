"""A base for LLM services that answer in-process, with no network and no model.

Subclasses decide *what* to answer (``plan_reply``); this base makes the
answer look like a real LLM's to the rest of the pipeline: the same frames
(``LLMFullResponseStartFrame``, ``LLMTextFrame`` per token,
``LLMFullResponseEndFrame``), tool calls through Pipecat's own
``run_function_calls`` (so registered handlers run and the assistant
aggregator records calls and results in the context), TTFB, processing and
token-usage metrics, and an optional pace: a time to first token and a
number of tokens per second, kept against the event loop's clock.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from abc import abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipecat.adapters.llm.schemas.function_schema import FunctionSchema
from pipecat.frames.frames import (
    Frame,
    FunctionCallFromLLM,
    LLMContextFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
)
from pipecat.metrics.metrics import LLMTokenUsage
from pipecat.processors.aggregators import async_tool_messages
from pipecat.processors.aggregators.llm_context import (
    LLMContext,
    LLMContextMessage,
    LLMSpecificMessage,
    is_given,
    standard_message_text,
)
from pipecat.processors.frame_processor import FrameDirection
from pipecat.services.llm_service import LLMService
from pipecat.services.settings import LLMSettings
from pipecat.utils.errors import ErrorCategory

_TOKEN = re.compile(r"\S+\s*|\s+")


def split_tokens(text: str) -> list[str]:
    """Word-sized pieces that join back into ``text`` exactly (spaces stay attached)."""
    return _TOKEN.findall(text)


@dataclass(frozen=True)
class PlannedToolCall:
    name: str
    arguments: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PlannedReply:
    """What to say (streamed token by token), then which tools to call."""

    text: str = ""
    tool_calls: Sequence[PlannedToolCall] = ()


class SimulatedFailure(Exception):
    """Raised by ``plan_reply`` to fail the request the way a provider outage does.

    ``unusable`` marks the service as unable to go on, which is what makes a
    ``ServiceSwitcher`` with the failover strategy move to the next service;
    the category stays a retryable one (the provider may come back).
    """

    def __init__(
        self,
        message: str,
        *,
        category: ErrorCategory = ErrorCategory.SERVER,
        unusable: bool = True,
    ) -> None:
        super().__init__(message)
        self.category = category
        self.unusable = unusable


def caller_turn(context: LLMContext) -> tuple[str | None, list[LLMContextMessage]]:
    """The caller's last message and whatever followed it (tool calls, results)."""
    messages = context.get_messages()
    for index in range(len(messages) - 1, -1, -1):
        message = messages[index]
        if not isinstance(message, LLMSpecificMessage) and message.get("role") == "user":
            return standard_message_text(message), messages[index + 1 :]
    return None, []


@dataclass(frozen=True)
class ToolResult:
    """A function's result as it appears in the context (decoded when it is JSON)."""

    name: str
    value: Any


def tool_results(messages: Sequence[LLMContextMessage]) -> list[ToolResult]:
    """The finished function results among ``messages``, in order.

    Covers both shapes Pipecat writes: a ``tool`` message answering a call,
    and the ``developer`` message that carries a late async result.
    """
    names: dict[str, str] = {}
    results: list[ToolResult] = []
    for message in messages:
        if isinstance(message, LLMSpecificMessage):
            continue
        calls: Any = message.get("tool_calls") or []
        for call in calls:
            names[call["id"]] = call["function"]["name"]
        payload = async_tool_messages.parse_message(message)
        if payload is not None:
            if payload.kind == "final" and payload.result is not None:
                results.append(
                    ToolResult(names.get(payload.tool_call_id, ""), _decoded(payload.result))
                )
            continue
        if message.get("role") == "tool" and message.get("content") != "IN_PROGRESS":
            call_id = str(message.get("tool_call_id", ""))
            results.append(ToolResult(names.get(call_id, ""), _decoded(message.get("content"))))
    return results


def _decoded(content: Any) -> Any:
    if isinstance(content, str):
        try:
            return json.loads(content)
        except ValueError:
            return content
    return content


def offered_tools(context: LLMContext) -> list[FunctionSchema]:
    """The tools the context advertises, in order (flow transitions are tools too)."""
    tools = context.tools
    return list(tools.standard_tools) if is_given(tools) else []


def _complete_settings(model: str) -> LLMSettings:
    return LLMSettings(
        model=model,
        system_instruction=None,
        temperature=None,
        max_tokens=None,
        top_p=None,
        top_k=None,
        frequency_penalty=None,
        presence_penalty=None,
        seed=None,
        filter_incomplete_user_turns=False,
        user_turn_completion_config=None,
    )


class OfflineLLMService(LLMService):
    """An LLM service whose answers come from ``plan_reply`` instead of a model.

    ``ttft_seconds`` delays the first token (or the first tool call);
    ``tokens_per_second`` spaces the rest. Both default to no delay at all.
    """

    def __init__(
        self,
        *,
        model: str,
        ttft_seconds: float = 0.0,
        tokens_per_second: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(settings=_complete_settings(model), **kwargs)
        self.ttft_seconds = ttft_seconds
        self.tokens_per_second = tokens_per_second
        self.requests = 0  # LLMContextFrames answered (or failed) so far

    @abstractmethod
    async def plan_reply(self, context: LLMContext) -> PlannedReply:
        """Decide the answer to ``context``; raise ``SimulatedFailure`` to fail the request."""

    def can_generate_metrics(self) -> bool:
        return True

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Answer each ``LLMContextFrame``; pass every other frame on."""
        await super().process_frame(frame, direction)
        if isinstance(frame, LLMContextFrame):
            await self._answer(frame.context)
        else:
            await self.push_frame(frame, direction)

    async def _answer(self, context: LLMContext) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        self.requests += 1
        await self.push_frame(LLMFullResponseStartFrame())
        await self.start_processing_metrics()
        await self.start_ttfb_metrics()
        try:
            reply = await self.plan_reply(context)
            await self._stream(reply, context, started)
        except SimulatedFailure as failure:
            await self.push_error(
                f"{self.name}: {failure}",
                exception=failure,
                category=failure.category,
                force_treat_as_permanent=failure.unusable,
            )
        finally:
            await self.stop_processing_metrics()
            await self.push_frame(LLMFullResponseEndFrame())

    async def _stream(self, reply: PlannedReply, context: LLMContext, started: float) -> None:
        tokens = split_tokens(reply.text)
        usage = LLMTokenUsage(
            prompt_tokens=_prompt_tokens(context),
            completion_tokens=len(tokens) + sum(_call_tokens(c) for c in reply.tool_calls),
            total_tokens=0,
        )
        usage.total_tokens = usage.prompt_tokens + usage.completion_tokens
        try:
            for index, token in enumerate(tokens):
                await self._wait_for_token(started, index)
                if index == 0:
                    await self.stop_ttfb_metrics()
                await self._push_llm_text(token)
            if reply.tool_calls:
                if not tokens:
                    await self._wait_for_token(started, 0)
                    await self.stop_ttfb_metrics()
                await self.stop_ttfat_metrics()
                await self.run_function_calls(
                    [
                        FunctionCallFromLLM(
                            function_name=call.name,
                            tool_call_id=f"call_{uuid.uuid4().hex[:24]}",
                            arguments=dict(call.arguments),
                            context=context,
                        )
                        for call in reply.tool_calls
                    ]
                )
        finally:
            await self.start_llm_usage_metrics(usage)

    async def _wait_for_token(self, started: float, index: int) -> None:
        due = started + self.ttft_seconds
        if self.tokens_per_second:
            due += index / self.tokens_per_second
        delay = due - asyncio.get_running_loop().time()
        if delay > 0:
            await asyncio.sleep(delay)


def _prompt_tokens(context: LLMContext) -> int:
    return sum(len(split_tokens(standard_message_text(m))) for m in context.get_messages())


def _call_tokens(call: PlannedToolCall) -> int:
    return len(split_tokens(f"{call.name} {json.dumps(dict(call.arguments), default=str)}"))
