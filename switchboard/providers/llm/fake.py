"""A deterministic fake LLM for tests and benchmarks: set replies, set timing, set failures.

It subclasses the same base as the scripted LLM, which subclasses Pipecat's
``LLMService``, so the code under test cannot tell it from a real model:
frames, tool calls, metrics and errors all travel the usual way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pipecat.processors.aggregators.llm_context import LLMContext

from switchboard.agents.schema import LLMSettings
from switchboard.providers.base import BuildContext, LLMProvider
from switchboard.providers.llm.offline import (
    OfflineLLMService,
    PlannedReply,
    PlannedToolCall,
    SimulatedFailure,
)
from switchboard.providers.options import FakeLLMOptions, FakeLLMReply

DEFAULT_REPLY = FakeLLMReply(text="Okay.")


class FakeLLMService(OfflineLLMService):
    """Answers request *n* with ``replies[n]`` (the last one repeats).

    With ``fail_after`` set, request number ``fail_after`` (counting from 0)
    and every one after it fail: a retryable ``SERVER`` error is pushed and the
    service marks itself unusable, as a provider that went down would, so a
    failover ``ServiceSwitcher`` moves to its next service.
    """

    def __init__(
        self,
        *,
        replies: Sequence[FakeLLMReply] = (),
        ttft_seconds: float = 0.2,
        tokens_per_second: float | None = 50.0,
        fail_after: int | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("model", "fake")
        super().__init__(ttft_seconds=ttft_seconds, tokens_per_second=tokens_per_second, **kwargs)
        self.replies = list(replies) or [DEFAULT_REPLY]
        self.fail_after = fail_after

    async def plan_reply(self, context: LLMContext) -> PlannedReply:
        index = self.requests - 1  # this request, counting from 0
        if self.fail_after is not None and index >= self.fail_after:
            raise SimulatedFailure(f"simulated outage on request {index}")
        reply = self.replies[min(index, len(self.replies) - 1)]
        return PlannedReply(
            text=reply.text,
            tool_calls=[PlannedToolCall(c.name, dict(c.arguments)) for c in reply.tool_calls],
        )


class FakeLLM(LLMProvider):
    """``FakeLLMOptions`` as a service."""

    def create(self, settings: LLMSettings, ctx: BuildContext) -> FakeLLMService:
        options = FakeLLMOptions.model_validate(settings.options)
        return FakeLLMService(
            replies=options.replies,
            ttft_seconds=options.ttft_ms / 1000,
            tokens_per_second=options.tokens_per_second,
            fail_after=options.fail_after,
        )
