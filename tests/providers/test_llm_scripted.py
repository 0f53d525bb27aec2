"""The scripted LLM: keyword rules, tool calls through Pipecat's function calling, fallback."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from pipecat.adapters.llm.schemas.function_schema import FunctionSchema
from pipecat.adapters.llm.schemas.tools_schema import ToolsSchema
from pipecat.frames.frames import (
    Frame,
    FunctionCallResultFrame,
    LLMContextFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMServiceMetadataFrame,
    LLMTextFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import LLMContextAggregatorPair
from pipecat.services.llm_service import FunctionCallParams
from pipecat.tests.utils import run_test

from switchboard.agents.schema import LLMSettings
from switchboard.providers.base import BuildContext, ProviderKind
from switchboard.providers.llm.scripted import (
    ScriptedLLMService,
    captures,
    contains_words,
    name_words,
)
from switchboard.providers.options import ScriptedRule
from switchboard.providers.registry import load_adapter
from tests.deadline import deadline

HOURS = ScriptedRule(match=["hours", "open"], reply="We are open nine to five.")
HUMAN = ScriptedRule(
    match=["a person", "human", "agent"],
    reply="Connecting you now.",
    tool="transfer_call",
    arguments={"department": "support"},
)
TRANSFER = FunctionSchema(
    "transfer_call",
    "Transfer the caller to a department",
    {"department": {"type": "string", "enum": ["sales", "support"]}},
    ["department"],
)


def user_says(text: str, tools: Sequence[FunctionSchema] = ()) -> LLMContext:
    return LLMContext(
        messages=[{"role": "user", "content": text}],
        tools=ToolsSchema(standard_tools=list(tools)) if tools else ToolsSchema(standard_tools=[]),
    )


def spoken(frames: Sequence[Frame]) -> str:
    return "".join(f.text for f in frames if isinstance(f, LLMTextFrame))


async def answer(llm: ScriptedLLMService, context: LLMContext) -> Sequence[Frame]:
    down, _ = await run_test(llm, frames_to_send=[LLMContextFrame(context)])
    return down


class Recorder:
    """A function handler that remembers its calls and answers ``{"ok": true}``."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    async def __call__(self, params: FunctionCallParams) -> None:
        self.calls.append((params.function_name, dict(params.arguments)))
        await params.result_callback({"ok": True})


def test_keywords_match_whole_words_ignoring_case() -> None:
    assert contains_words("When do you OPEN tomorrow?", "open")
    assert contains_words("I want to talk to a person, please", "a person")
    assert not contains_words("It reopened", "open")
    assert not contains_words("anything", "")
    assert name_words("transferToBilling") == ["transfer", "billing"]
    assert name_words("go_to_main_menu") == ["main", "menu"]


async def test_a_matching_rule_says_its_reply() -> None:
    llm = ScriptedLLMService(rules=[HOURS])
    down = await answer(llm, user_says("When are you OPEN tomorrow?"))
    assert spoken(down) == "We are open nine to five."
    kinds = [type(f) for f in down if not isinstance(f, LLMServiceMetadataFrame)]
    assert kinds == [LLMFullResponseStartFrame] + [LLMTextFrame] * 6 + [LLMFullResponseEndFrame]


async def test_no_match_says_the_fallback() -> None:
    llm = ScriptedLLMService(rules=[HOURS], fallback="Could you say that again?")
    assert spoken(await answer(llm, user_says("It reopened last week"))) == (
        "Could you say that again?"
    )


async def test_the_first_matching_rule_wins() -> None:
    other = ScriptedRule(match=["open"], reply="second")
    llm = ScriptedLLMService(rules=[HOURS, other])
    assert spoken(await answer(llm, user_says("are you open"))) == HOURS.reply


async def test_a_rule_tool_call_reaches_the_registered_handler() -> None:
    llm = ScriptedLLMService(rules=[HOURS, HUMAN])
    handler = Recorder()
    llm.register_function("transfer_call", handler)
    down = await answer(llm, user_says("Can I talk to a HUMAN?", tools=[TRANSFER]))
    assert spoken(down) == "Connecting you now."
    assert handler.calls == [("transfer_call", {"department": "support"})]
    results = [f for f in down if isinstance(f, FunctionCallResultFrame)]
    assert [r.result for r in results] == [{"ok": True}]


async def test_a_rule_whose_tool_is_not_offered_is_skipped() -> None:
    llm = ScriptedLLMService(rules=[HUMAN], fallback="fallback")
    handler = Recorder()
    llm.register_function("transfer_call", handler)
    assert spoken(await answer(llm, user_says("a human please"))) == "fallback"
    assert handler.calls == []


async def test_tools_can_be_chosen_by_the_words_of_their_names() -> None:
    billing = FunctionSchema("transfer_to_billing", "Billing questions", {}, [])
    sales = FunctionSchema("transfer_to_sales", "Buying", {}, [])
    needs_args = FunctionSchema("billing_lookup", "Look up a bill", {"id": {}}, ["id"])
    llm = ScriptedLLMService(match_tool_names=True, fallback="fallback")
    handler = Recorder()
    llm.register_function(None, handler)  # catch-all: whatever the LLM calls
    tools = [sales, needs_args, billing]
    await answer(llm, user_says("Billing, please", tools=tools))
    assert handler.calls == [("transfer_to_billing", {})]
    assert spoken(await answer(llm, user_says("the weather", tools=tools))) == "fallback"


async def test_after_the_tool_result_the_turn_is_done() -> None:
    """Pipecat runs the LLM again with the result; the scripted LLM must not loop."""
    context = user_says("get me an agent", tools=[TRANSFER])
    llm = ScriptedLLMService(rules=[HUMAN])
    handler = Recorder()
    llm.register_function("transfer_call", handler)
    pair = LLMContextAggregatorPair(context)
    await run_test(Pipeline([llm, pair.assistant()]), frames_to_send=[LLMContextFrame(context)])
    assert handler.calls == [("transfer_call", {"department": "support"})]
    messages: list[Any] = context.get_messages()
    # Pipecat records the words and the call as two assistant messages, then the result.
    assert [m["role"] for m in messages] == ["user", "assistant", "assistant", "tool"]
    assert messages[1]["content"] == "Connecting you now."
    assert messages[2]["tool_calls"][0]["function"]["name"] == "transfer_call"
    assert messages[3]["content"] == '{"ok": true}'
    assert llm.requests == 2  # run again with the result, and answered with silence


async def test_nothing_is_said_before_the_caller_speaks() -> None:
    llm = ScriptedLLMService(rules=[HOURS])
    context = LLMContext(messages=[{"role": "assistant", "content": "Hello!"}])
    assert spoken(await answer(llm, context)) == ""


async def test_the_adapter_builds_the_service_from_options() -> None:
    settings = LLMSettings(
        provider="scripted",
        options={"rules": [HOURS.model_dump()], "fallback": "Pardon?"},
    )
    llm = load_adapter(ProviderKind.LLM, "scripted").create(settings, BuildContext(8000))
    assert isinstance(llm, ScriptedLLMService)
    assert spoken(await answer(llm, user_says("opening times?"))) == "Pardon?"
    assert spoken(await answer(llm, user_says("your hours?"))) == HOURS.reply


BOOK = FunctionSchema(
    "book_appointment",
    "Book a slot",
    {"day": {"type": "string"}, "time": {"type": "string"}},
    ["day", "time"],
)
BOOKING = ScriptedRule(
    match=["tuesday", "wednesday"],
    tool="book_appointment",
    capture={"day": r"\b(tuesday|wednesday)\b", "time": r"\b(\d{1,2}\s*(?:am|pm))"},
    result_reply="Booked for {{slot}}.",
    error_reply="That slot is taken.",
)


def test_captures_fill_arguments_and_a_missing_one_skips_the_rule() -> None:
    llm = ScriptedLLMService(rules=[BOOKING], fallback="Which time?")
    reply = llm.decide("Tuesday at 10 am, please.", [BOOK])
    assert [(c.name, dict(c.arguments)) for c in reply.tool_calls] == [
        ("book_appointment", {"day": "Tuesday", "time": "10 am"})
    ]
    assert llm.decide("Tuesday, please.", [BOOK]).text == "Which time?"


def after_tool(result: str, name: str = "book_appointment") -> list[Any]:
    return [
        {"role": "user", "content": "Tuesday at 10 am"},
        {
            "role": "assistant",
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": name, "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": result},
    ]


def test_the_rule_speaks_from_the_tool_result_or_its_error() -> None:
    llm = ScriptedLLMService(rules=[BOOKING], tool_error_reply="Generic failure.")
    ok = LLMContext(messages=after_tool('{"slot": "Tuesday at 10 am"}'))
    assert llm.follow_up(ok, ok.get_messages()[1:]).text == "Booked for Tuesday at 10 am."
    failed = LLMContext(messages=after_tool('{"error": "409 taken"}'))
    assert llm.follow_up(failed, failed.get_messages()[1:]).text == "That slot is taken."
    other = LLMContext(messages=after_tool('{"error": "down"}', name="lookup"))
    assert llm.follow_up(other, other.get_messages()[1:]).text == "Generic failure."
    still_running = LLMContext(messages=after_tool("IN_PROGRESS"))
    assert llm.follow_up(still_running, still_running.get_messages()[1:]).text == ""


def test_a_capture_that_is_not_a_regular_expression_is_refused() -> None:
    with pytest.raises(ValueError, match="capture 'day'"):
        ScriptedRule(match=["x"], capture={"day": "(unclosed"})


@pytest.mark.parametrize("pattern", [r"(\w+) \1", r"(?=tuesday)\w+", r"(?<!not )tuesday"])
def test_a_capture_re2_cannot_run_in_linear_time_is_refused(pattern: str) -> None:
    with pytest.raises(ValueError, match="capture 'day'"):
        ScriptedRule(match=["x"], capture={"day": pattern})


def test_a_backtracking_capture_cannot_stall_the_call() -> None:
    # Hours of backtracking for Python's re; the caller chooses the words.
    stuck = ScriptedRule(match=["name"], reply="Thanks.", capture={"name": r"(a+)+b"})
    llm = ScriptedLLMService(rules=[stuck], fallback="Say again?")
    with deadline(5):
        assert captures("a" * 40 + "!", {"name": r"^(a+)+$"}) is None
        assert llm.decide("my name is " + "a" * 40, []).text == "Say again?"
