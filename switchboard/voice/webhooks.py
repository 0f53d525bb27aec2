"""Running a workspace's webhook tools during a call.

Each call goes through the SSRF-safe client (one checked lookup, pinned
address, signed request). A slow tool never freezes the call: after
``WAIT_MESSAGE_AFTER_SECONDS`` the tool's wait message is said, every attempt
has the tool's timeout, and whatever happens the LLM gets a result it can
speak from (an ``error`` it should apologise for, at worst). Every call is
recorded as ``tool_called`` / ``tool_result`` with arguments, status,
attempts and latency.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import httpx

from switchboard.errors import ExternalError, ExternalStatusError, ExternalTimeout, InvalidInput
from switchboard.schema_validation import instance_problem
from switchboard.tools.loading import WebhookTool
from switchboard.tools.safe_http import SafeHttpClient, ToolResponse
from switchboard.voice.functions import CallFunction, Outcome, record_tool_result, signature
from switchboard.voice.tap import EventSink

log = logging.getLogger(__name__)

WAIT_MESSAGE_AFTER_SECONDS = 1.0
# A result longer than this (as JSON) is cut before it reaches the LLM's context.
MAX_RESULT_CHARS = 4_000
FAILURE_HINT = (
    "The tool failed. Apologise briefly in one sentence, do not invent a result, and offer"
    " to help another way."
)
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})

Say = Callable[[str], Awaitable[None]]


class _Failed(Exception):
    def __init__(self, error: ExternalError | InvalidInput, attempts: int) -> None:
        super().__init__(error.message)
        self.error = error
        self.attempts = attempts


class WebhookRunner:
    """Calls webhook tools for one call and records what happened."""

    def __init__(
        self,
        client: SafeHttpClient,
        *,
        event: EventSink,
        say: Say | None,
        call_headers: Mapping[str, str],
    ) -> None:
        self.client = client
        self.event = event
        self.say = say
        self.call_headers = dict(call_headers)

    def function(self, tool: WebhookTool) -> CallFunction:
        """The tool as an LLM function."""

        async def run(arguments: dict[str, Any]) -> Outcome:
            return await self.invoke(tool, arguments)

        return CallFunction(
            name=tool.name,
            description=tool.description,
            **signature(tool.parameters),
            run=run,
            # A booking half-sent when the caller says "uh-huh" must still finish.
            cancel_on_interruption=False,
            timeout_seconds=budget_seconds(tool) + 5.0,
        )

    async def invoke(
        self, tool: WebhookTool, arguments: dict[str, Any], **event_fields: Any
    ) -> Outcome:
        started = time.monotonic()
        await self.event(
            "tool_called", name=tool.name, arguments=arguments, kind="webhook", **event_fields
        )
        # LLMs do invent arguments; the schema's checks run without fetching or backtracking.
        problem = instance_problem(tool.parameters, arguments)
        if problem is not None:
            await record_tool_result(
                self.event, tool.name, "invalid_arguments", started, attempts=0, error=problem
            )
            return Outcome({"error": f"invalid arguments: {problem}"}, succeeded=False)
        waiting = self._wait_message(tool)
        try:
            response, attempts = await self._attempts(tool, arguments)
        except _Failed as failed:
            exc = failed.error
            await record_tool_result(
                self.event,
                tool.name,
                failure_status(exc),
                started,
                attempts=failed.attempts,
                error=exc.message,
            )
            return Outcome({"error": exc.message, "instructions": FAILURE_HINT}, succeeded=False)
        finally:
            if waiting is not None:
                waiting.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await waiting
        result = response_result(response)
        await record_tool_result(
            self.event,
            tool.name,
            "ok",
            started,
            attempts=attempts,
            http_status=response.status,
            result=result,
        )
        return Outcome(result)

    async def _attempts(
        self, tool: WebhookTool, arguments: dict[str, Any]
    ) -> tuple[ToolResponse, int]:
        """Up to ``1 + retries`` attempts; only failures that may pass are retried."""
        url, body = request_parts(tool, arguments)
        headers = {**tool.headers, **self.call_headers, "X-Switchboard-Tool": tool.name}
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await self.client.request(
                    tool.method,
                    url,
                    headers=headers,
                    secret_headers=tool.secret_headers,
                    json=body,
                    time_limit=tool.timeout_seconds,
                )
                return response, attempt
            except InvalidInput as exc:
                raise _Failed(exc, attempt) from exc
            except ExternalError as exc:
                if not exc.retryable or attempt > tool.retries:
                    raise _Failed(exc, attempt) from exc
                log.info("tool %s attempt %d failed (%s); retrying", tool.name, attempt, exc)

    def _wait_message(self, tool: WebhookTool) -> asyncio.Task[None] | None:
        if self.say is None or not tool.wait_message:
            return None
        say, text = self.say, tool.wait_message

        async def later() -> None:
            await asyncio.sleep(WAIT_MESSAGE_AFTER_SECONDS)
            await say(text)

        return asyncio.create_task(later(), name=f"wait-message-{tool.name}")


def budget_seconds(tool: WebhookTool) -> float:
    """The longest a call of ``tool`` can take, retries included."""
    return tool.timeout_seconds * (1 + tool.retries)


def request_parts(tool: WebhookTool, arguments: dict[str, Any]) -> tuple[str, Any]:
    """Arguments go in a JSON body, or in the query string for GET and DELETE."""
    if tool.method in BODY_METHODS:
        return tool.url, arguments
    params = {k: v if isinstance(v, str) else json.dumps(v) for k, v in arguments.items()}
    return str(httpx.URL(tool.url).copy_merge_params(params)), None


def response_result(response: ToolResponse) -> Any:
    """The answer as the LLM sees it: JSON when it is JSON, else text; cut when long."""
    value: Any
    try:
        value = response.json()
    except ExternalError:
        value = response.text
    encoded = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value
    if len(encoded) > MAX_RESULT_CHARS:
        return {"truncated": True, "text": encoded[:MAX_RESULT_CHARS]}
    return value


def failure_status(exc: Exception) -> str:
    if isinstance(exc, InvalidInput):
        return "refused"
    if isinstance(exc, ExternalTimeout):
        return "timeout"
    if isinstance(exc, ExternalStatusError):
        return f"http_{exc.status}"
    return "failed"
