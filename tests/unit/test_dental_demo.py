"""The shipped dental receptionist: its flow is valid and its appointment book is strict."""

from __future__ import annotations

import pytest

from switchboard.demo.booking import AppointmentBook, parse_hour
from switchboard.demo.dental import BOOK_TOOL, dental_agent, dental_flow
from switchboard.flows.schema import check_references


def test_the_seed_flow_is_valid_for_the_seed_agent_and_tool() -> None:
    flow = dental_flow()
    agent = dental_agent()
    check_references(
        flow,
        tool_names=[BOOK_TOOL["name"]],
        departments=[d.name for d in agent.transfer_destinations],
    )
    assert flow.initial.key == "greet"
    assert {n.key for n in flow.nodes if n.is_terminal} == {"transfer", "goodbye"}


@pytest.mark.parametrize(
    ("spoken", "hour"),
    [("10 am", 10), ("10 a.m.", 10), ("2:30 p.m.", 14), ("ten", 10), ("noon", 12),
     ("14:00", 14), ("3", 15), ("9", 9), ("late", None), ("25", None)],
)  # fmt: skip
def test_spoken_times_become_hours(spoken: str, hour: int | None) -> None:
    assert parse_hour(spoken) == hour


def test_a_slot_is_booked_once_and_only_in_opening_hours() -> None:
    book = AppointmentBook()
    assert book.book("tuesday", "10 am") == (
        201,
        {"status": "booked", "slot": "Tuesday at 10 am", "reference": "SD-1001"},
    )
    assert book.book("Tuesday", "10") == (409, {"error": "Tuesday at 10 am is already taken"})
    assert book.book("Saturday", "10 am")[0] == 422
    assert book.book("Monday", "7 am") == (422, {"error": "we are open from 8 am to 5 pm"})
    assert book.book("Monday", "4 pm")[1]["reference"] == "SD-1002"
