"""Webhook tools, pre-call tools and flows in real calls over the simulator.

The tool backend is a real HTTP server on 127.0.0.1 that each test starts and
the workspace allows explicitly; calls use fake speech (set transcripts) and
the scripted LLM, so every branch is deterministic.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from switchboard.caller.conversation import run_conversation
from switchboard.calls import service as calls
from switchboard.db.models import Call, CallStatus
from switchboard.demo.dental import BOOK_TOOL, FRONT_DESK_NUMBER, dental_agent, dental_flow
from switchboard.tools import SIGNATURE_HEADER, verify_signature
from tests.e2e.live import LiveServer, caller_line, events_of
from tests.tools.backends import Backend, tool_backend

FAKE_SPEECH: dict[str, Any] = {
    "tts": {"provider": "fake", "options": {"ttfb_ms": 20, "chars_per_second": 60}},
}


def fake_ears(transcripts: list[str]) -> dict[str, Any]:
    return {"stt": {"provider": "fake", "options": {"transcripts": transcripts, "latency_ms": 30}}}


@pytest.fixture
async def backend() -> AsyncIterator[Backend]:
    async with tool_backend() as running:
        yield running


class Workspace:
    """The live server's workspace, driven through its public API."""

    def __init__(self, server: LiveServer) -> None:
        self.server = server
        self.http = httpx.AsyncClient(
            base_url=f"{server.url}/api/v1", headers={"Authorization": f"Bearer {server.key}"}
        )

    async def allow(self, *hosts: str) -> None:
        answer = await self.http.patch("/workspace", json={"allowed_private_hosts": list(hosts)})
        assert answer.status_code == 200, answer.text

    async def signing_secret(self) -> str:
        answer = await self.http.post("/workspace/signing-secret")
        assert answer.status_code == 200, answer.text
        secret: str = answer.json()["signing_secret"]
        return secret

    async def tool(self, **fields: Any) -> str:
        answer = await self.http.post("/tools", json=fields)
        assert answer.status_code == 201, answer.text
        tool_id: str = answer.json()["id"]
        return tool_id

    async def flow(self, agent_id: str, document: dict[str, Any]) -> None:
        answer = await self.http.put(f"/agents/{agent_id}/flow", json=document)
        assert answer.status_code == 200, answer.text


@pytest.fixture
async def workspace(server: LiveServer) -> AsyncIterator[Workspace]:
    ws = Workspace(server)
    try:
        yield ws
    finally:
        await ws.http.aclose()


async def dental_line(
    server: LiveServer, workspace: Workspace, backend: Backend, number: str, heard: list[str]
) -> str:
    """The demo receptionist on ``number``, booking through ``backend``, hearing ``heard``."""
    await workspace.allow("127.0.0.1")
    await workspace.tool(**{**BOOK_TOOL, "url": backend.url("/appointments"), "wait_message": ""})
    config = dental_agent(**fake_ears(heard), **FAKE_SPEECH)
    agent_id = await server.agent(number, **config.model_dump(mode="json", exclude={"name"}))
    await workspace.flow(agent_id, dental_flow().model_dump(mode="json"))
    return agent_id


async def converse(
    server: LiveServer, number: str, lines: int
) -> tuple[Call, list[Any], list[str]]:
    """Ring ``number``, say ``lines`` caller lines; the finished call, its events, agent turns."""
    audio = [await caller_line("opening_hours") for _ in range(lines)]
    report = await run_conversation(server.address, number, audio)
    call = await server.finished_call(report.call_id)
    async with server.services.sessions() as session:
        turns = await calls.transcript_of(session, call.id)
    return call, await events_of(server, call), [t.text for t in turns if t.role == "agent"]


def nodes_entered(events: list[Any]) -> list[str]:
    return [data["node"] for name, data in events if name == "node_entered"]


async def test_the_receptionist_books_through_the_webhook_and_confirms(
    server: LiveServer, workspace: Workspace, backend: Backend
) -> None:
    heard = [
        "Yes, I have.",
        "I'd like to book an appointment.",
        "Tuesday at 10 am.",
        "No, that's all.",
    ]
    await dental_line(server, workspace, backend, "+15550150", heard)
    secret = await workspace.signing_secret()

    call, events, said = await converse(server, "+15550150", len(heard))

    assert nodes_entered(events) == ["greet", "identify_need", "book", "confirm", "goodbye"]
    transitions = [
        (d["source"], d["target"], d["function"]) for n, d in events if n == "node_transition"
    ]
    assert transitions == [
        ("greet", "identify_need", "existing_patient"),
        ("identify_need", "book", "book_appointment_step"),
        ("book", "confirm", "book_appointment"),
        ("confirm", "goodbye", "no_thanks"),
    ]
    called = [d for n, d in events if n == "tool_called" and d["name"] == "book_appointment"]
    assert called == [
        {
            "name": "book_appointment",
            "arguments": {"day": "Tuesday", "time": "10 am"},
            "kind": "webhook",
        }
    ]
    [result] = [d for n, d in events if n == "tool_result" and d["name"] == "book_appointment"]
    assert result["status"] == "ok" and result["http_status"] == 201
    assert "You are booked for Tuesday at 10 am. Your reference is SD-1001." in " ".join(said)
    assert said[-1] == "Thank you for calling Switchboard Dental. Goodbye!"
    assert call.status is CallStatus.COMPLETED and call.end_reason == "flow_ended"
    [request] = backend.to("/appointments")
    assert request.json() == {"day": "Tuesday", "time": "10 am"}
    assert request.headers["X-Switchboard-Call-Id"] == call.id
    assert verify_signature(secret, request.headers[SIGNATURE_HEADER], request.body, time.time())


async def test_a_taken_slot_is_said_and_another_is_booked(
    server: LiveServer, workspace: Workspace, backend: Backend
) -> None:
    backend.book.book("Tuesday", "10 am")
    heard = ["No, it's my first time.", "Book an appointment please.", "Tuesday at 10 am.",
             "Wednesday at 9 am then.", "No, that's all."]  # fmt: skip
    await dental_line(server, workspace, backend, "+15550151", heard)

    call, events, said = await converse(server, "+15550151", len(heard))

    statuses = [
        d["status"] for n, d in events if n == "tool_result" and d["name"] == "book_appointment"
    ]
    assert statuses == ["http_409", "ok"]
    assert "Sorry, that time is not available. Which other day and time suit you?" in said
    assert "You are booked for Wednesday at 9 am. Your reference is SD-1002." in " ".join(said)
    assert nodes_entered(events) == ["greet", "identify_need", "book", "confirm", "goodbye"]
    assert call.end_reason == "flow_ended"


async def test_the_receptionist_answers_questions_then_says_goodbye(
    server: LiveServer, workspace: Workspace, backend: Backend
) -> None:
    heard = ["Yes.", "I have a question.", "What are your opening hours?", "That's all, bye."]
    await dental_line(server, workspace, backend, "+15550152", heard)

    call, events, said = await converse(server, "+15550152", len(heard))

    assert nodes_entered(events) == ["greet", "identify_need", "faq", "goodbye"]
    assert "We are open Monday to Friday, 8 am to 5 pm. Anything else?" in said
    assert backend.received == []
    assert call.status is CallStatus.COMPLETED and call.end_reason == "flow_ended"


async def test_the_receptionist_transfers_to_the_front_desk_on_request(
    server: LiveServer, workspace: Workspace, backend: Backend
) -> None:
    heard = ["Yes.", "Can you put me through to the front desk?"]
    await dental_line(server, workspace, backend, "+15550153", heard)

    call, events, said = await converse(server, "+15550153", len(heard))

    assert nodes_entered(events) == ["greet", "identify_need", "transfer"]
    assert (
        "flow_action",
        {"node": "transfer", "action": "transfer", "department": "front_desk"},
    ) in events
    assert ("transferred", {"department": "front_desk", "to": FRONT_DESK_NUMBER}) in events
    assert "Of course, let me put you through to the front desk." in said
    assert call.status is CallStatus.TRANSFERRED and call.end_reason == "transferred"


def plain_agent(heard: list[str], rules: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    """An agent without a flow: scripted rules over webhook tools."""
    return {
        "greeting": "Hello, order line.",
        **fake_ears(heard),
        **FAKE_SPEECH,
        "llm": {"provider": "scripted", "options": {"rules": rules}},
        **fields,
    }


BYE = {"match": ["bye"], "reply": "Goodbye.", "tool": "end_call"}


async def test_a_hanging_tool_is_waited_out_and_the_call_goes_on(
    server: LiveServer, workspace: Workspace, backend: Backend
) -> None:
    await workspace.allow("127.0.0.1")
    tool_id = await workspace.tool(
        name="order_status",
        description="Look up an order",
        url=backend.url("/hang"),
        timeout_seconds=1.5,
        wait_message="One moment while I check.",
    )
    rules = [
        {
            "match": ["order"],
            "tool": "order_status",
            "error_reply": "Sorry, the order system is not answering.",
        },
        BYE,
    ]
    await server.agent(
        "+15550154", **plain_agent(["Where is my order?", "OK, bye."], rules, tool_ids=[tool_id])
    )

    call, events, said = await converse(server, "+15550154", 2)

    [result] = [d for n, d in events if n == "tool_result" and d["name"] == "order_status"]
    assert result["status"] == "timeout" and result["latency_ms"] >= 1500
    assert "One moment while I check." in said
    assert "Sorry, the order system is not answering." in said
    assert said[-1] == "Goodbye." and call.end_reason == "agent_ended"


async def test_a_tool_aimed_at_a_private_address_is_refused_in_the_call(
    server: LiveServer, workspace: Workspace, backend: Backend
) -> None:
    # The workspace allows nothing private: the backend on 127.0.0.1 must not be reached.
    tool_id = await workspace.tool(
        name="lookup_order", description="Look up", url=backend.url("/lookup")
    )
    rules = [{"match": ["order"], "tool": "lookup_order"}, BYE]
    await server.agent(
        "+15550155", **plain_agent(["My order please.", "Bye."], rules, tool_ids=[tool_id])
    )

    call, events, said = await converse(server, "+15550155", 2)

    [result] = [d for n, d in events if n == "tool_result" and d["name"] == "lookup_order"]
    assert result["status"] == "refused" and "loopback" in result["error"]
    assert backend.received == []
    assert "I'm sorry, I couldn't do that just now. Is there anything else I can help with?" in said
    assert call.end_reason == "agent_ended"


@pytest.mark.parametrize(
    ("path", "greeting", "filled"),
    [("/lookup", "Hello Sam, order line.", True), ("/hang", "Hello there, order line.", False)],
)
async def test_a_pre_call_lookup_fills_the_greeting_or_falls_back_to_the_plain_one(
    server: LiveServer,
    workspace: Workspace,
    backend: Backend,
    path: str,
    greeting: str,
    filled: bool,
) -> None:
    await workspace.allow("127.0.0.1")
    tool_id = await workspace.tool(
        name="find_caller",
        description="Find the caller by number",
        url=backend.url(path),
        parameters={"type": "object", "properties": {"caller_number": {"type": "string"}}},
        timeout_seconds=1.0,
    )
    number = "+15550156" if filled else "+15550157"
    await server.agent(
        number,
        **plain_agent(
            ["Bye."],
            [BYE],
            greeting="Hello {{customer_name}}, order line.",
            variables={"customer_name": {"default": "there"}},
            pre_call_tool_ids=[tool_id],
        ),
    )

    call, events, said = await converse(server, number, 1)

    assert said[0] == greeting
    [request] = backend.to(path)
    assert request.json() == {"caller_number": call.from_number}
    assert (
        ("variables_filled", {"name": "find_caller", "variables": ["customer_name"]}) in events
    ) is filled
    [result] = [d for n, d in events if n == "tool_result" and d["name"] == "find_caller"]
    assert result["status"] == ("ok" if filled else "timeout")


async def test_a_transition_carries_what_the_caller_said_into_later_nodes(
    server: LiveServer, workspace: Workspace
) -> None:
    flow = {
        "nodes": [
            {
                "key": "qualify",
                "is_initial": True,
                "respond_immediately": False,
                "pre_actions": [{"type": "say", "text": "Who am I speaking with?"}],
                "transitions": [
                    {
                        "name": "caller_named",
                        "description": "The caller said their name.",
                        "to": "thanks",
                        "parameters": {
                            "type": "object",
                            "properties": {"name": {"type": "string"}},
                            "required": ["name"],
                        },
                    }
                ],
            },
            {
                "key": "thanks",
                "is_terminal": True,
                "respond_immediately": False,
                "pre_actions": [
                    {"type": "say", "text": "Thank you, {{ caller_named.name }}. Goodbye."},
                    {"type": "end_call"},
                ],
            },
        ]
    }
    rule = {
        "match": ["my name is"],
        "tool": "caller_named",
        "capture": {"name": r"my name is (\w+)"},
    }
    agent_id = await server.agent(
        "+15550158",
        **plain_agent(["Hi, my name is Robin."], [rule], greeting=""),
    )
    await workspace.flow(agent_id, flow)

    call, events, said = await converse(server, "+15550158", 1)

    assert ("node_transition", {"source": "qualify", "target": "thanks",
            "function": "caller_named", "arguments": {"name": "Robin"}}) in events  # fmt: skip
    assert said == ["Who am I speaking with?", "Thank you, Robin. Goodbye."]
    assert call.end_reason == "flow_ended"
