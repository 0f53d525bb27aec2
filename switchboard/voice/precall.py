"""Pre-call tools: lookups that run before the greeting and fill the call's variables.

Each pre-call tool is sent the call's built-in variables (those its schema
declares, or all of them when it declares none). A JSON object answer fills
the agent's declared variables it names. The whole lookup has a budget: a
slow backend costs the caller at most ``PRE_CALL_BUDGET_SECONDS`` of silence,
after which the call goes on with the variables' defaults (the plain greeting).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from typing import Any

from switchboard.agents.schema import AgentConfig
from switchboard.agents.template import BUILTIN_VARIABLES
from switchboard.tools.loading import WebhookTool
from switchboard.voice.tap import EventSink
from switchboard.voice.webhooks import WebhookRunner

PRE_CALL_BUDGET_SECONDS = 3.0
_SCALARS = (str, int, float, bool)


async def run_pre_call_tools(
    runner: WebhookRunner,
    tools: Sequence[WebhookTool],
    config: AgentConfig,
    variables: dict[str, Any],
    event: EventSink,
    *,
    budget_seconds: float = PRE_CALL_BUDGET_SECONDS,
) -> None:
    """Run ``tools`` in order within the budget, filling ``variables`` in place."""
    deadline = time.monotonic() + budget_seconds
    for tool in tools:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            await event("pre_call_skipped", name=tool.name, reason="budget spent")
            continue
        limited = dataclasses.replace(
            tool, timeout_seconds=min(tool.timeout_seconds, remaining), retries=0
        )
        outcome = await runner.invoke(limited, call_arguments(tool, variables), pre_call=True)
        if not outcome.succeeded:
            continue
        filled = declared_values(outcome.result, config)
        variables.update(filled)
        if filled:
            await event("variables_filled", name=tool.name, variables=sorted(filled))


def call_arguments(tool: WebhookTool, variables: Mapping[str, Any]) -> dict[str, Any]:
    """The built-in variables the tool's schema asks for (all of them if it names none)."""
    declared = set(tool.parameters.get("properties", {}))
    names = BUILTIN_VARIABLES & declared if declared else BUILTIN_VARIABLES
    return {name: variables[name] for name in sorted(names) if variables.get(name) is not None}


def declared_values(result: Any, config: AgentConfig) -> dict[str, Any]:
    """The answer's top-level values for variables the agent declares (scalars only)."""
    if not isinstance(result, Mapping):
        return {}
    return {
        name: value
        for name, value in result.items()
        if name in config.variables and isinstance(value, _SCALARS)
    }
