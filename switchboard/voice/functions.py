"""One shape for everything the LLM can call during a call, whatever runs it.

A ``CallFunction`` is a name, a JSON-schema signature and a coroutine from
arguments to an ``Outcome``. The same function is offered two ways: as a
plain ``FunctionSchema`` carrying its handler (agents without a flow), or as
a ``FlowsFunctionSchema`` (agents with a flow, where a successful call may
also move the conversation to another node).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pipecat.adapters.llm.schemas.direct_function import tool_options
from pipecat.adapters.llm.schemas.function_schema import FunctionSchema
from pipecat.flows import NO_RESPONSE, FlowManager, FlowsFunctionSchema, NodeConfig
from pipecat.frames.frames import FunctionCallResultProperties
from pipecat.services.llm_service import FunctionCallParams

from switchboard.voice.tap import EventSink


@dataclass(frozen=True)
class Outcome:
    """What a call of a function gave: the result for the LLM, and what happens next.

    ``respond``: let the LLM speak after the result (false when the function
    already settled the turn, e.g. by ending the call).
    """

    result: Any
    succeeded: bool = True
    respond: bool = True


Runner = Callable[[dict[str, Any]], Awaitable[Outcome]]
# Given an outcome and the arguments it was called with, the flow node to go to next
# (None: stay).
NextNode = Callable[[Outcome, dict[str, Any]], Awaitable[NodeConfig | None]]


@dataclass(frozen=True)
class CallFunction:
    name: str
    description: str
    run: Runner
    properties: dict[str, Any] = field(default_factory=dict)
    required: list[str] = field(default_factory=list)
    # False: an interruption by the caller does not cancel the call (a booking must finish).
    cancel_on_interruption: bool = True
    timeout_seconds: float | None = None

    def schema(self) -> FunctionSchema:
        """For agents without a flow: the schema carries its handler."""

        async def handler(params: FunctionCallParams) -> None:
            outcome = await self.run(dict(params.arguments))
            await params.result_callback(
                outcome.result, properties=FunctionCallResultProperties(run_llm=outcome.respond)
            )

        return FunctionSchema(
            name=self.name,
            description=self.description,
            properties=self.properties,
            required=self.required,
            handler=tool_options(
                cancel_on_interruption=self.cancel_on_interruption,
                timeout_secs=self.timeout_seconds,
            )(handler),
        )

    def flows_schema(self, next_node: NextNode | None = None) -> FlowsFunctionSchema:
        """For agents with a flow: after the call, ``next_node`` may name where to go."""

        async def handler(args: dict[str, Any], _manager: FlowManager) -> tuple[Any, Any]:
            outcome = await self.run(args)
            target = await next_node(outcome, args) if next_node is not None else None
            if target is not None:
                return outcome.result, target
            return outcome.result, (None if outcome.respond else NO_RESPONSE)

        return FlowsFunctionSchema(
            name=self.name,
            description=self.description,
            properties=self.properties,
            required=self.required,
            handler=handler,
            cancel_on_interruption=self.cancel_on_interruption,
            timeout_secs=self.timeout_seconds,
        )


def signature(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON Schema object as a ``CallFunction``'s ``properties`` and ``required``."""
    return {
        "properties": dict(parameters.get("properties", {})),
        "required": list(parameters.get("required", [])),
    }


async def record_tool_result(
    event: EventSink, name: str, status: str, started: float, **fields: Any
) -> None:
    """The ``tool_result`` event: status, latency since ``started``, and the fields given."""
    latency = round((time.monotonic() - started) * 1000, 1)
    await event(
        "tool_result",
        name=name,
        status=status,
        latency_ms=latency,
        **{k: v for k, v in fields.items() if v is not None},
    )
