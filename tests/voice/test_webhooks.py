"""Webhook tools as a call runs them: results, failures, retries, waits and signatures."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet

from switchboard.crypto import SecretBox
from switchboard.db.models import Tool
from switchboard.tools import SIGNATURE_HEADER, SafeHttpClient, verify_signature
from switchboard.tools.loading import WebhookTool, webhook_tool
from switchboard.voice.webhooks import MAX_RESULT_CHARS, WebhookRunner
from tests.deadline import deadline
from tests.tools.backends import Backend, file_server, tool_backend

SECRET = "whsec_unit"


@pytest.fixture
async def backend() -> AsyncIterator[Backend]:
    async with tool_backend() as running:
        yield running


@dataclasses.dataclass
class Sink:
    events: list[tuple[str, dict[str, Any]]] = dataclasses.field(default_factory=list)
    said: list[str] = dataclasses.field(default_factory=list)

    async def event(self, kind: str, /, **data: Any) -> None:
        self.events.append((kind, data))

    async def say(self, text: str) -> None:
        self.said.append(text)

    def of(self, name: str) -> list[dict[str, Any]]:
        return [data for event, data in self.events if event == name]


def tool(url: str, **fields: Any) -> WebhookTool:
    base: dict[str, Any] = {
        "id": "tool_1",
        "name": "book_appointment",
        "description": "Book",
        "parameters": {
            "type": "object",
            "properties": {"day": {"type": "string"}, "time": {"type": "string"}},
            "required": ["day", "time"],
        },
        "url": url,
        "method": "POST",
        "headers": {"Authorization": "Bearer backend-token"},
        "secret_headers": {},
        "timeout_seconds": 2.0,
        "retries": 0,
        "wait_message": "",
    }
    return WebhookTool(**{**base, **fields})


def runner(sink: Sink, *, allowed: tuple[str, ...] = ("127.0.0.1",)) -> WebhookRunner:
    client = SafeHttpClient(allowed_private_hosts=allowed, signing_secret=SECRET)
    return WebhookRunner(
        client, event=sink.event, say=sink.say, call_headers={"X-Switchboard-Call-Id": "call_1"}
    )


async def test_a_booking_goes_through_signed_and_is_recorded(backend: Backend) -> None:
    sink = Sink()
    outcome = await runner(sink).invoke(
        tool(backend.url("/appointments")), {"day": "Tuesday", "time": "10 am"}
    )
    assert outcome.succeeded
    assert outcome.result == {
        "status": "booked",
        "slot": "Tuesday at 10 am",
        "reference": "SD-1001",
    }
    [request] = backend.to("/appointments")
    assert request.json() == {"day": "Tuesday", "time": "10 am"}
    assert request.headers["Authorization"] == "Bearer backend-token"
    assert request.headers["X-Switchboard-Call-Id"] == "call_1"
    assert request.headers["X-Switchboard-Tool"] == "book_appointment"
    signature = request.headers[SIGNATURE_HEADER]
    assert verify_signature(SECRET, signature, request.body, now=time.time())
    assert not verify_signature("whsec_other", signature, request.body, now=time.time())
    [called] = sink.of("tool_called")
    assert called == {
        "name": "book_appointment",
        "arguments": {"day": "Tuesday", "time": "10 am"},
        "kind": "webhook",
    }
    [result] = sink.of("tool_result")
    assert result["status"] == "ok" and result["http_status"] == 201 and result["attempts"] == 1
    assert result["latency_ms"] >= 0


async def test_an_error_status_becomes_an_error_the_llm_can_speak_from(backend: Backend) -> None:
    backend.book.book("Tuesday", "10 am")
    sink = Sink()
    outcome = await runner(sink).invoke(
        tool(backend.url("/appointments")), {"day": "Tuesday", "time": "10 am"}
    )
    assert not outcome.succeeded and outcome.respond
    assert "409" in outcome.result["error"] and "instructions" in outcome.result
    [result] = sink.of("tool_result")
    assert result["status"] == "http_409" and result["attempts"] == 1


async def test_arguments_that_break_the_schema_are_refused_without_a_request(
    backend: Backend,
) -> None:
    sink = Sink()
    outcome = await runner(sink).invoke(tool(backend.url("/appointments")), {"day": "Tuesday"})
    assert not outcome.succeeded
    assert "'time' is a required property" in outcome.result["error"]
    assert backend.received == []
    assert sink.of("tool_result")[0]["status"] == "invalid_arguments"


async def test_retryable_failures_are_retried_up_to_the_limit(backend: Backend) -> None:
    backend.flaky_failures = 2
    sink = Sink()
    flaky = tool(backend.url("/flaky"), parameters={"type": "object"}, retries=2)
    outcome = await runner(sink).invoke(flaky, {})
    assert outcome.succeeded and len(backend.to("/flaky")) == 3
    assert sink.of("tool_result")[0]["attempts"] == 3


async def test_retries_stop_at_the_limit_and_a_4xx_is_not_retried(backend: Backend) -> None:
    backend.flaky_failures = 5
    sink = Sink()
    outcome = await runner(sink).invoke(
        tool(backend.url("/flaky"), parameters={"type": "object"}, retries=1), {}
    )
    assert not outcome.succeeded and len(backend.to("/flaky")) == 2
    await runner(sink).invoke(
        tool(backend.url("/missing"), parameters={"type": "object"}, retries=3), {}
    )
    assert len(backend.to("/missing")) == 1
    assert [r["status"] for r in sink.of("tool_result")] == ["http_503", "http_404"]


async def test_a_slow_tool_says_its_wait_message_then_times_out(backend: Backend) -> None:
    sink = Sink()
    slow = tool(
        backend.url("/hang"),
        parameters={"type": "object"},
        timeout_seconds=1.5,
        wait_message="One moment.",
    )
    outcome = await asyncio.wait_for(runner(sink).invoke(slow, {}), timeout=10)
    assert not outcome.succeeded and "did not answer within 1.5 s" in outcome.result["error"]
    assert sink.said == ["One moment."]
    assert sink.of("tool_result")[0]["status"] == "timeout"


async def test_a_quick_tool_says_no_wait_message(backend: Backend) -> None:
    sink = Sink()
    quick = tool(backend.url("/lookup"), parameters={"type": "object"}, wait_message="Hold on.")
    assert (await runner(sink).invoke(quick, {})).succeeded
    assert sink.said == []


async def test_get_tools_send_arguments_in_the_query(backend: Backend) -> None:
    sink = Sink()
    get = tool(
        backend.url("/flaky"),
        method="GET",
        parameters={"type": "object", "properties": {"order": {"type": "integer"}}},
    )
    outcome = await runner(sink).invoke(get, {"order": 42})
    assert outcome.result == {"status": "ok", "query": {"order": "42"}}
    assert backend.to("/flaky")[0].body == b""


@pytest.mark.parametrize(
    "url", ["http://10.0.0.1/hook", "http://169.254.169.254/latest/meta-data/", "http://[::1]/"]
)
async def test_private_targets_are_refused_and_reported(url: str) -> None:
    sink = Sink()
    outcome = await runner(sink, allowed=()).invoke(
        tool(url, parameters={"type": "object"}, retries=3), {}
    )
    assert not outcome.succeeded
    [result] = sink.of("tool_result")
    assert result["status"] == "refused" and result["attempts"] == 1


async def test_loopback_is_refused_unless_the_workspace_allows_it(backend: Backend) -> None:
    sink = Sink()
    lookup = tool(backend.url("/lookup"), parameters={"type": "object"})
    refused = await runner(sink, allowed=()).invoke(lookup, {})
    assert not refused.succeeded and backend.received == []
    assert (await runner(sink, allowed=("127.0.0.1",)).invoke(lookup, {})).succeeded


async def test_huge_results_are_cut_before_they_reach_the_llm(backend: Backend) -> None:
    backend.customer = {"notes": "x" * (MAX_RESULT_CHARS * 2)}
    sink = Sink()
    outcome = await runner(sink).invoke(
        tool(backend.url("/lookup"), parameters={"type": "object"}), {}
    )
    assert outcome.result["truncated"] is True
    assert len(outcome.result["text"]) == MAX_RESULT_CHARS


# --- the tool's schema is the tenant's: it may not fetch or stall ----------------------
# These schemas are given to the runner as stored, past the check a save makes, to test
# the defence a call has on its own.


@pytest.mark.parametrize("keyword", ["$ref", "$dynamicRef"])
async def test_a_schema_reference_to_elsewhere_is_never_fetched(
    backend: Backend, keyword: str
) -> None:
    sink = Sink()
    with file_server(b'{"type": "string"}') as schemas:
        remote = tool(
            backend.url("/lookup"),
            parameters={
                "type": "object",
                "properties": {"day": {keyword: schemas.url("/day.json")}},
            },
        )
        outcome = await runner(sink).invoke(remote, {"day": "Tuesday"})
    assert schemas.requested == []
    assert not outcome.succeeded and backend.received == []
    [result] = sink.of("tool_result")
    assert result["status"] == "invalid_arguments"
    assert schemas.url("/day.json") in result["error"]


BACKTRACKING = "^(a+)+$"
CALLER_TEXT = "a" * 40 + "!"  # hours of backtracking for Python's re on that pattern


@pytest.mark.parametrize(
    ("parameters", "arguments", "status"),
    [
        pytest.param(
            {"properties": {"name": {"type": "string", "pattern": BACKTRACKING}}},
            {"name": CALLER_TEXT},
            "invalid_arguments",
            id="pattern",
        ),
        pytest.param(
            {"patternProperties": {BACKTRACKING: {"type": "integer"}}},
            {CALLER_TEXT: "not checked: the name does not match"},
            "ok",
            id="patternProperties",
        ),
        pytest.param(
            {"patternProperties": {BACKTRACKING: {}}, "additionalProperties": False},
            {CALLER_TEXT: 1},
            "invalid_arguments",
            id="additionalProperties",
        ),
        pytest.param(
            {
                "properties": {
                    "name": {
                        # jsonschema would validate this part with its own 2020-12 class
                        "$schema": "https://json-schema.org/draft/2020-12/schema",
                        "pattern": BACKTRACKING,
                    }
                }
            },
            {"name": CALLER_TEXT},
            "invalid_arguments",
            id="pattern-under-$schema",
        ),
        pytest.param(
            # jsonschema would match these patterns with re to find what was evaluated
            {"patternProperties": {BACKTRACKING: {}}, "unevaluatedProperties": False},
            {CALLER_TEXT: 1},
            "invalid_arguments",
            id="unevaluatedProperties",
        ),
    ],
)
async def test_a_backtracking_pattern_cannot_stall_the_call(
    backend: Backend, parameters: dict[str, Any], arguments: dict[str, Any], status: str
) -> None:
    sink = Sink()
    checked = tool(backend.url("/lookup"), parameters={"type": "object", **parameters})
    with deadline(5):
        await runner(sink).invoke(checked, arguments)
    assert sink.of("tool_result")[0]["status"] == status


async def test_a_pattern_re2_cannot_run_fails_the_arguments_cleanly(backend: Backend) -> None:
    sink = Sink()
    lookaround = {"properties": {"day": {"type": "string", "pattern": "^(?!x).*$"}}}
    checked = tool(backend.url("/lookup"), parameters={"type": "object", **lookaround})
    outcome = await runner(sink).invoke(checked, {"day": "Tuesday"})
    assert not outcome.succeeded and backend.received == []
    [result] = sink.of("tool_result")
    assert result["status"] == "invalid_arguments"
    assert "(?!x)" in result["error"]


# --- secret headers go to the tool's own origin only ------------------------------------


def stored_tool(url: str, box: SecretBox) -> WebhookTool:
    """A tool as a call loads it from its row: plain headers, and secret ones decrypted."""
    row = Tool(
        id="tool_1",
        name="lookup",
        description="Look up the caller",
        parameters={"type": "object"},
        url=url,
        method="GET",
        headers={"X-Plain": "shown"},
        secret_headers=box.seal({"X-Api-Key": "secret-key", "Authorization": "Bearer secret"}),
        timeout_seconds=2.0,
        retries=0,
        wait_message="",
    )
    return webhook_tool(row, box)


async def test_secret_headers_do_not_follow_a_redirect_to_another_origin(
    backend: Backend,
) -> None:
    box = SecretBox(Fernet.generate_key())
    async with tool_backend() as elsewhere:  # another port: another origin
        to = elsewhere.url("/lookup")
        url = str(httpx.URL(backend.url("/redirect"), params={"to": to}))
        outcome = await runner(Sink()).invoke(stored_tool(url, box), {})
    assert outcome.succeeded
    [first] = backend.to("/redirect")
    assert first.headers["X-Api-Key"] == "secret-key"
    assert first.headers["Authorization"] == "Bearer secret"
    [followed] = elsewhere.to("/lookup")
    assert "X-Api-Key" not in followed.headers
    assert "Authorization" not in followed.headers
    assert followed.headers["X-Plain"] == "shown"


async def test_secret_headers_follow_a_redirect_within_the_origin(backend: Backend) -> None:
    box = SecretBox(Fernet.generate_key())
    url = str(httpx.URL(backend.url("/redirect"), params={"to": "/lookup"}))
    assert (await runner(Sink()).invoke(stored_tool(url, box), {})).succeeded
    [followed] = backend.to("/lookup")
    assert followed.headers["X-Api-Key"] == "secret-key"
    assert followed.headers["X-Plain"] == "shown"
