"""Agent configuration rules that the schema alone enforces."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from switchboard.agents.schema import AgentConfig, BusinessHours
from switchboard.agents.template import placeholders, render


def test_language_joins_supported_languages() -> None:
    config = AgentConfig(name="a", system_prompt="p", language="es", supported_languages=["en"])
    assert config.supported_languages == ["es", "en"]


def test_undeclared_template_variable_is_refused_and_declared_one_accepted() -> None:
    with pytest.raises(ValidationError, match="undeclared variable"):
        AgentConfig(name="a", system_prompt="p", greeting="Hi {{ first_name }}")
    config = AgentConfig(
        name="a",
        system_prompt="Caller is {{caller_number}}",
        greeting="Hi {{ first_name }}",
        variables={"first_name": {"type": "string"}},
    )
    assert placeholders(config.greeting) == {"first_name"}


def test_render_fills_and_blanks_missing_values() -> None:
    assert render("Hi {{ name }}, from {{caller_number}}.", {"name": "Sam"}) == "Hi Sam, from ."


def test_duplicate_transfer_names_are_refused() -> None:
    with pytest.raises(ValidationError, match="unique"):
        AgentConfig(
            name="a",
            system_prompt="p",
            transfer_destinations=[
                {"name": "sales", "number": "+14158675309"},
                {"name": "sales", "number": "+14158675310"},
            ],
        )


HOURS = BusinessHours(
    timezone="America/New_York",
    weekly={
        "mon": [{"start": "09:00", "end": "12:00"}, {"start": "13:00", "end": "17:00"}],
        "sat": [{"start": "10:00", "end": "24:00"}],
    },
    holidays=["2026-11-23"],
)


@pytest.mark.parametrize(
    ("utc", "is_open"),
    [
        ("2026-11-16T14:00:00", True),  # Monday 09:00 EST
        ("2026-11-16T13:59:00", False),  # Monday 08:59 EST
        ("2026-11-16T17:30:00", False),  # lunch, 12:30 EST
        ("2026-11-16T22:00:00", False),  # 17:00 EST: end is exclusive
        ("2026-11-23T15:00:00", False),  # Monday, but a holiday
        ("2026-11-22T04:59:00", True),  # Saturday 23:59 EST
        ("2026-11-17T15:00:00", False),  # Tuesday: no hours
        ("2026-07-06T13:30:00", True),  # Monday 09:30 EDT (summer time)
    ],
)
def test_business_hours_in_local_time(utc: str, is_open: bool) -> None:
    moment = datetime.fromisoformat(utc).replace(tzinfo=UTC)
    assert HOURS.is_open(moment) is is_open


@pytest.mark.parametrize(
    "interval",
    [
        {"start": "17:00", "end": "09:00"},
        {"start": "9:00", "end": "10:00"},
        {"start": "25:00", "end": "26:00"},
    ],
)
def test_bad_intervals_are_refused(interval: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        BusinessHours(weekly={"mon": [interval]})


@given(st.datetimes(timezones=st.just(UTC)))
def test_closed_everywhere_without_hours(moment: datetime) -> None:
    assert BusinessHours(timezone="Asia/Kolkata").is_open(moment) is False
