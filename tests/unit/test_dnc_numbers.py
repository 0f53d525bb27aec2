"""Do-not-call numbers: how entries are normalised, and whose number ``opt_out`` lists."""

from __future__ import annotations

import pytest

from switchboard.db.models import Call, CallDirection
from switchboard.dialer.csv_rows import BadRow, GoodRow, set_aside
from switchboard.dialer.dnc import dnc_number
from switchboard.voice.tools import other_party


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+1 (415) 867-5309", "+14158675309"),  # a real number, as phonenumbers formats it
        ("+44 (0)20 7946 0958", "+442079460958"),  # the national trunk zero dropped
        ("+1 555 0100", "+15550100"),  # a simulator number: only E.164's shape
    ],
)
def test_numbers_are_listed_in_e164(raw: str, expected: str) -> None:
    assert dnc_number(raw) == expected


@pytest.mark.parametrize("raw", ["4158675309", "+1555", "call me", ""])
def test_what_is_not_a_number_is_refused_with_a_reason(raw: str) -> None:
    with pytest.raises(ValueError, match=r"E\.164"):
        dnc_number(raw)


def call(direction: CallDirection, carrier: str, from_number: str, to_number: str) -> Call:
    return Call(
        workspace_id="ws_1",
        direction=direction,
        carrier=carrier,
        from_number=from_number,
        to_number=to_number,
    )


def test_opt_out_lists_the_other_party_of_the_call() -> None:
    outbound = call(CallDirection.OUTBOUND, "twilio", "+14155550100", "+1 415 867 5309")
    inbound = call(CallDirection.INBOUND, "simulator", "+15550199", "+15550100")
    assert other_party(outbound) == ("+14158675309", None)  # the callee, not our number
    assert other_party(inbound) == ("+15550199", None)  # the caller, not the agent's number


def test_opt_out_lists_nothing_without_a_phone_number() -> None:
    browser = call(CallDirection.INBOUND, "browser", "browser", "+15550100")
    anonymous = call(CallDirection.INBOUND, "twilio", "anonymous", "+14155550100")
    assert other_party(browser) == (None, "a browser call has no phone number")
    assert other_party(anonymous) == (None, "the other party's number is unknown")


def test_listed_batch_rows_join_the_bad_rows_in_line_order() -> None:
    good = [GoodRow(2, "+15550101", {}, None), GoodRow(4, "+15550102", {}, None)]
    bad = [BadRow(3, "not a number", "phone")]
    kept, refused = set_aside(good, bad, {"+15550102"})
    assert kept == good[:1]
    assert refused == [bad[0], BadRow(4, "on the do-not-call list", "phone")]
