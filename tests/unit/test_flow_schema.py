"""Flow document rules the schema enforces alone, and how a broken rule reads in a problem."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from switchboard.api.problems import validation_problem
from switchboard.flows.schema import (
    MAX_NODES,
    FlowDocument,
    FlowError,
    check_references,
)


def end(key: str, **fields: Any) -> dict[str, Any]:
    return {"key": key, "is_terminal": True, "post_actions": [{"type": "end_call"}], **fields}


def go(name: str, to: str) -> dict[str, Any]:
    return {"name": name, "description": f"go to {to}", "to": to}


def flow_error(nodes: list[dict[str, Any]]) -> FlowError:
    """The ``FlowError`` a document of ``nodes`` is refused with."""
    with pytest.raises(ValidationError) as caught:
        FlowDocument.model_validate({"nodes": nodes})
    cause = caught.value.errors()[0]["ctx"]["error"]
    assert isinstance(cause, FlowError)
    return cause


def test_a_single_node_that_ends_the_call_is_a_flow() -> None:
    flow = FlowDocument.model_validate({"nodes": [end("bye", is_initial=True)]})
    assert flow.initial.key == "bye"
    assert flow.format == "switchboard.flow/v1"


def test_a_tool_success_edge_makes_its_target_reachable() -> None:
    flow = FlowDocument.model_validate(
        {
            "nodes": [
                {"key": "ask", "is_initial": True, "tools": [{"name": "lookup", "then": "bye"}]},
                end("bye"),
            ]
        }
    )
    assert flow.reachable_from("ask") == {"ask", "bye"}
    assert flow.tool_names() == {"lookup"}


def test_a_non_terminal_node_that_ends_the_call_is_no_dead_end() -> None:
    FlowDocument.model_validate(
        {"nodes": [{"key": "ask", "is_initial": True, "post_actions": [{"type": "end_call"}]}]}
    )


def test_a_loop_is_no_dead_end() -> None:
    # Every call also has the built-in end_call and transfer_call functions to leave by.
    FlowDocument.model_validate(
        {
            "nodes": [
                {"key": "a", "is_initial": True, "transitions": [go("loop", "b")]},
                {"key": "b", "transitions": [go("back", "a")]},
            ]
        }
    )


@pytest.mark.parametrize(
    ("nodes", "field", "words"),
    [
        pytest.param(
            [end("a", is_initial=True), end("a")],
            "nodes.1.key",
            "unique",
            id="duplicate-key",
        ),
        pytest.param(
            [{"key": "a", "is_initial": True, "tools": [{"name": "lookup", "then": "gone"}]}],
            "nodes.0.tools.0.then",
            "'gone', which is not a node",
            id="tool-leads-nowhere",
        ),
        pytest.param(
            [
                {"key": "a", "is_initial": True, "transitions": [go("next", "b"), go("next", "c")]},
                end("b"),
                end("c"),
            ],
            "nodes.0.transitions.1.name",
            "'next' is repeated",
            id="repeated-function-name",
        ),
        pytest.param(
            [
                {
                    "key": "a",
                    "is_initial": True,
                    "transitions": [go("lookup", "b")],
                    "tools": [{"name": "lookup"}],
                },
                end("b"),
            ],
            "nodes.0.tools.0.name",
            "'lookup' is repeated",
            id="transition-and-tool-share-a-name",
        ),
        pytest.param(
            [{"key": "a", "is_initial": True, "tools": [{"name": "transfer_call"}]}],
            "nodes.0.tools.0.name",
            "built-in function",
            id="built-in-tool-name",
        ),
        pytest.param(
            [end("a", is_initial=True, transitions=[go("more", "b")]), end("b")],
            "nodes.0.transitions.0.to",
            "terminal but leads on",
            id="terminal-leads-on",
        ),
        pytest.param(
            [
                {
                    "key": "a",
                    "is_initial": True,
                    "is_terminal": True,
                    "pre_actions": [{"type": "say", "text": "Bye"}],
                }
            ],
            "nodes.0.is_terminal",
            "must end the call",
            id="terminal-only-speaks",
        ),
        pytest.param(
            [end("a", is_initial=True), end("b"), end("c")],
            "nodes.1",
            "nodes ['b', 'c'] cannot be reached",
            id="unreachable-nodes",
        ),
    ],
)
def test_broken_rules_name_their_place(nodes: list[dict[str, Any]], field: str, words: str) -> None:
    error = flow_error(nodes)
    assert error.field == field
    assert words in error.message


def test_size_limit() -> None:
    nodes = [end("n0", is_initial=True)] + [end(f"n{i}") for i in range(1, MAX_NODES + 1)]
    with pytest.raises(ValidationError, match="at most 100 items"):
        FlowDocument.model_validate({"nodes": nodes})


def test_references_are_checked_against_tools_and_departments() -> None:
    flow = FlowDocument.model_validate(
        {
            "nodes": [
                {"key": "a", "is_initial": True, "tools": [{"name": "lookup", "then": "b"}]},
                end("b", pre_actions=[{"type": "transfer", "department": "sales"}]),
            ]
        }
    )
    check_references(flow, tool_names={"lookup"}, departments={"sales"})
    with pytest.raises(FlowError) as missing_tool:
        check_references(flow, tool_names=set(), departments={"sales"})
    assert missing_tool.value.field == "nodes.0.tools.0.name"
    with pytest.raises(FlowError) as missing_department:
        check_references(flow, tool_names={"lookup"}, departments=set())
    assert missing_department.value.field == "nodes.1.pre_actions.0.department"


def test_a_broken_rule_reads_plainly_in_a_problem() -> None:
    with pytest.raises(ValidationError) as caught:
        FlowDocument.model_validate({"nodes": [end("a", is_initial=True), end("b")]})
    response = validation_problem(caught.value.errors(), prefix=("body",))
    body = json.loads(bytes(response.body))
    assert response.status_code == 422
    assert body["field"] == "nodes.1"
    assert body["detail"] == ("nodes.1: nodes ['b'] cannot be reached from the initial node 'a'")


@pytest.mark.parametrize(
    ("parameters", "reason"),
    [
        ({"type": "nonsense"}, "not a valid JSON Schema"),
        ({"type": "string"}, "must be an object schema"),
        # Nothing is fetched: a reference stays inside the schema.
        (
            {"type": "object", "properties": {"day": {"$ref": "https://schemas.example/d"}}},
            "properties.day.$ref: 'https://schemas.example/d' is not a reference within",
        ),
        ({"type": "object", "$dynamicRef": "day.json#meta"}, "$dynamicRef: 'day.json#meta'"),
        (
            {"type": "object", "$defs": {"d": {"$recursiveRef": "http://10.0.0.1/"}}},
            "$defs.d.$recursiveRef: 'http://10.0.0.1/' is not a reference within",
        ),
        # Patterns run on RE2: what it cannot run in linear time is refused.
        (
            {"type": "object", "properties": {"n": {"type": "string", "pattern": "(a)\\1"}}},
            "properties.n.pattern: '(a)\\\\1' cannot run on RE2",
        ),
        (
            {"type": "object", "patternProperties": {"^(?!x)": {}}},
            "patternProperties: '^(?!x)' cannot run on RE2",
        ),
    ],
)
def test_transition_parameters_must_be_an_object_json_schema(
    parameters: dict[str, Any], reason: str
) -> None:
    transition = {**go("named", "bye"), "parameters": parameters}
    with pytest.raises(ValidationError) as caught:
        FlowDocument.model_validate(
            {"nodes": [{"key": "ask", "is_initial": True, "transitions": [transition]}, end("bye")]}
        )
    [error] = caught.value.errors()
    assert error["loc"] == ("nodes", 0, "transitions", 0, "parameters")
    assert reason in error["msg"]
