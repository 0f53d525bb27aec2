"""Phone numbers normalise to E.164; test numbers need only the shape."""

from __future__ import annotations

import pytest

from switchboard.phone import reported_to_e164, to_e164


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+1 415 867 5309", "+14158675309"),
        ("+1 (415) 867-5309", "+14158675309"),
        ("+44 20 7946 0958", "+442079460958"),
        ("+91 98765 43210", "+919876543210"),
    ],
)
def test_real_numbers_normalise(raw: str, expected: str) -> None:
    assert to_e164(raw) == expected


@pytest.mark.parametrize("raw", ["4158675309", "+1 555", "+1 415 867 530", "hello", "+999 1234567"])
def test_invalid_numbers_are_refused_with_a_reason(raw: str) -> None:
    with pytest.raises(ValueError, match=r"\w"):
        to_e164(raw)


def test_test_numbers_need_only_the_e164_shape() -> None:
    assert to_e164("+1 555 0100", strict=False) == "+15550100"
    with pytest.raises(ValueError, match=r"E\.164"):
        to_e164("5550100", strict=False)
    with pytest.raises(ValueError):
        to_e164("+15550100")


@pytest.mark.parametrize(
    ("reported", "region", "expected"),
    [
        ("09876543210", "IN", "+919876543210"),
        ("14158675309", None, "+14158675309"),
        ("+14158675309", None, "+14158675309"),
        ("+15550100", None, "+15550100"),  # not a real number: left as sent
        ("anonymous", None, "anonymous"),
    ],
)
def test_numbers_as_carriers_report_them(reported: str, region: str | None, expected: str) -> None:
    assert reported_to_e164(reported, region) == expected
