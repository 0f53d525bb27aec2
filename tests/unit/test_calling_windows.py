"""Calling windows, by example: zones from numbers, DST days in New York, holidays, the legal floor.

New York in 2026 springs forward on Sunday 8 March (02:00 EST -> 03:00 EDT, 07:00
UTC) and falls back on Sunday 1 November (02:00 EDT -> 01:00 EST, 06:00 UTC).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from switchboard.agents.schema import Weekday
from switchboard.dialer.windows import (
    CallingHours,
    effective,
    every_day,
    is_open,
    legal_floor,
    next_open,
    require_opening,
    window_close,
)
from switchboard.dialer.zones import prospect_zones
from switchboard.errors import InvalidInput

NEW_YORK = ("America/New_York",)
US_NUMBER = "+12125551234"  # Manhattan
CA_NUMBER = "+16045551234"  # Vancouver
UK_NUMBER = "+442071234567"  # London
TOLL_FREE = "+18005551212"


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, micro: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)


def sundays(start: str, end: str) -> CallingHours:
    return CallingHours(weekly={"sun": [{"start": start, "end": end}]})


# Zones from numbers


def test_a_us_number_has_its_area_zone() -> None:
    assert prospect_zones(US_NUMBER, None, "Europe/London") == ("America/New_York",)
    assert prospect_zones(CA_NUMBER, None, "Europe/London") == ("America/Vancouver",)


def test_a_toll_free_number_has_every_zone_of_the_plan() -> None:
    zones = prospect_zones(TOLL_FREE, None, "America/New_York")
    assert {"Pacific/Guam", "Pacific/Pago_Pago", "America/St_Johns", "America/New_York"} <= set(
        zones
    )
    assert "Etc/Unknown" not in zones


def test_the_rows_zone_wins_and_is_checked() -> None:
    assert prospect_zones(US_NUMBER, "Europe/London", "America/Chicago") == ("Europe/London",)
    assert prospect_zones(US_NUMBER, "  ", "America/Chicago") == ("America/New_York",)
    for unknown in ("Mars/Olympus_Mons", "America", "../etc/passwd"):
        with pytest.raises(InvalidInput) as caught:
            prospect_zones(US_NUMBER, unknown, "America/Chicago")
        assert caught.value.field == "timezone"


def test_a_number_phonenumbers_cannot_place_gets_the_default_zone() -> None:
    assert prospect_zones("+15555551234", None, "America/Chicago") == ("America/Chicago",)
    assert prospect_zones("not a number", None, "America/Chicago") == ("America/Chicago",)
    with pytest.raises(InvalidInput) as caught:
        prospect_zones("not a number", None, "Nowhere/Special")
    assert caught.value.field == "default_timezone"


# Several zones: open only while all are


def test_a_toll_free_number_is_open_only_while_every_zone_is() -> None:
    zones = prospect_zones(TOLL_FREE, None, "America/New_York")
    # Guam (UTC+10) opens at 22:00 UTC; St. John's closes at 21:00 NST (00:30 UTC) in
    # winter and 21:00 NDT (23:30 UTC) in summer, before Halifax, Samoa or Hawaii do.
    january = next_open(CallingHours(), zones, utc(2026, 1, 15, 12), number=TOLL_FREE)
    assert january == utc(2026, 1, 15, 22)
    assert window_close(CallingHours(), zones, january, number=TOLL_FREE) == utc(2026, 1, 16, 0, 30)
    july = next_open(CallingHours(), zones, utc(2026, 7, 15, 12), number=TOLL_FREE)
    assert july == utc(2026, 7, 15, 22)
    assert window_close(CallingHours(), zones, july, number=TOLL_FREE) == utc(2026, 7, 15, 23, 30)
    assert not is_open(CallingHours(), zones, utc(2026, 7, 15, 21, 59))


def test_zones_whose_windows_never_meet_never_open() -> None:
    zones = ("Asia/Tokyo", "America/Los_Angeles")  # 16-17 hours apart
    morning = CallingHours(weekly=every_day("09:00", "12:00"))
    assert next_open(morning, zones, utc(2026, 3, 1), horizon_days=30) is None
    assert next_open(morning, zones[:1], utc(2026, 3, 1), horizon_days=30) == utc(2026, 3, 1, 0)


# Daylight saving time in New York


def test_a_window_opening_in_the_skipped_hour_opens_at_the_jump() -> None:
    hours = sundays("02:30", "04:00")
    assert next_open(hours, NEW_YORK, utc(2026, 3, 8, 5)) == utc(2026, 3, 8, 7)  # 03:00 EDT
    assert not is_open(hours, NEW_YORK, utc(2026, 3, 8, 6, 59, 59))  # 01:59:59 EST
    assert window_close(hours, NEW_YORK, utc(2026, 3, 8, 7)) == utc(2026, 3, 8, 8)  # 04:00 EDT


def test_a_window_ending_in_the_skipped_hour_ends_at_the_jump() -> None:
    hours = sundays("01:00", "02:30")
    assert next_open(hours, NEW_YORK, utc(2026, 3, 8, 5)) == utc(2026, 3, 8, 6)  # 01:00 EST
    assert window_close(hours, NEW_YORK, utc(2026, 3, 8, 6, 30)) == utc(2026, 3, 8, 7)
    assert next_open(hours, NEW_YORK, utc(2026, 3, 8, 7)) == utc(2026, 3, 15, 5)  # 01:00 EDT


def test_the_repeated_hour_is_judged_alike_both_times() -> None:
    ending = sundays("00:00", "01:30")
    assert next_open(ending, NEW_YORK, utc(2026, 11, 1, 3)) == utc(2026, 11, 1, 4)  # 00:00 EDT
    assert window_close(ending, NEW_YORK, utc(2026, 11, 1, 4)) == utc(2026, 11, 1, 5, 30)
    assert next_open(ending, NEW_YORK, utc(2026, 11, 1, 5, 30)) == utc(2026, 11, 1, 6)  # 01:00 EST
    assert window_close(ending, NEW_YORK, utc(2026, 11, 1, 6)) == utc(2026, 11, 1, 6, 30)

    opening = sundays("01:30", "03:00")
    assert next_open(opening, NEW_YORK, utc(2026, 11, 1, 4)) == utc(2026, 11, 1, 5, 30)  # EDT
    assert window_close(opening, NEW_YORK, utc(2026, 11, 1, 5, 30)) == utc(2026, 11, 1, 6)
    assert next_open(opening, NEW_YORK, utc(2026, 11, 1, 6)) == utc(2026, 11, 1, 6, 30)  # EST
    assert window_close(opening, NEW_YORK, utc(2026, 11, 1, 6, 30)) == utc(2026, 11, 1, 8)


def test_default_hours_follow_the_clock_across_both_changes() -> None:
    hours = CallingHours()
    assert next_open(hours, NEW_YORK, utc(2026, 3, 8, 5)) == utc(2026, 3, 8, 12)  # 08:00 EDT
    assert window_close(hours, NEW_YORK, utc(2026, 3, 8, 12)) == utc(2026, 3, 9, 1)
    assert next_open(hours, NEW_YORK, utc(2026, 11, 1, 5)) == utc(2026, 11, 1, 13)  # 08:00 EST
    assert window_close(hours, NEW_YORK, utc(2026, 11, 1, 13)) == utc(2026, 11, 2, 2)


# Holidays are local dates


def test_a_holiday_closes_its_local_date() -> None:
    hours = CallingHours(holidays=[date(2026, 7, 3)])  # a Friday
    assert next_open(hours, NEW_YORK, utc(2026, 7, 3, 12)) == utc(2026, 7, 4, 12)  # Sat 08:00
    assert not is_open(hours, NEW_YORK, utc(2026, 7, 4, 0, 30))  # still 3 July in New York
    assert is_open(hours, NEW_YORK, utc(2026, 7, 2, 0, 30))  # 1 July, 20:30 EDT
    assert window_close(hours, NEW_YORK, utc(2026, 7, 2, 20)) == utc(2026, 7, 3, 1)


def test_each_zone_keeps_its_own_holiday_date() -> None:
    hours = CallingHours(weekly=every_day("00:00", "24:00"), holidays=[date(2026, 1, 1)])
    zones = ("Pacific/Kiritimati", "Pacific/Pago_Pago")  # UTC+14 and UTC-11
    # Kiritimati's 1 January runs from 31 Dec 10:00 to 1 Jan 10:00 UTC, Pago Pago's from
    # 1 Jan 11:00 to 2 Jan 11:00 UTC: the hour between is a working day in both.
    assert next_open(hours, zones, utc(2025, 12, 31, 9)) == utc(2025, 12, 31, 9)
    assert window_close(hours, zones, utc(2025, 12, 31, 9)) == utc(2025, 12, 31, 10)
    assert next_open(hours, zones, utc(2025, 12, 31, 10)) == utc(2026, 1, 1, 10)
    assert window_close(hours, zones, utc(2026, 1, 1, 10)) == utc(2026, 1, 1, 11)
    assert next_open(hours, zones, utc(2026, 1, 1, 11)) == utc(2026, 1, 2, 11)


# Hours that never open


def test_hours_that_never_open_are_refusable() -> None:
    for closed in (CallingHours(weekly={}), CallingHours(weekly={"mon": []})):
        assert not closed.ever_opens()
        assert next_open(closed, NEW_YORK, utc(2026, 1, 1)) is None
        assert window_close(closed, NEW_YORK, utc(2026, 1, 1)) is None
        with pytest.raises(InvalidInput) as caught:
            require_opening(closed)
        assert caught.value.field == "hours.weekly"
    assert CallingHours(weekly={"sun": [{"start": "10:00", "end": "11:00"}]}).ever_opens()
    assert require_opening(CallingHours()).ever_opens()


def test_night_hours_never_open_for_a_us_number() -> None:
    night = CallingHours(weekly=every_day("22:00", "23:00"))
    assert not effective(night, US_NUMBER).ever_opens()
    assert next_open(night, NEW_YORK, utc(2026, 1, 1), number=US_NUMBER) is None
    assert next_open(night, ("Europe/London",), utc(2026, 1, 1), number=UK_NUMBER) == utc(
        2026, 1, 1, 22
    )


# The legal floor


def test_the_legal_floor_clips_hours_for_plus_one_numbers() -> None:
    wide = CallingHours(weekly=every_day("07:00", "23:00"))
    for number in (US_NUMBER, CA_NUMBER, TOLL_FREE):
        assert effective(wide, number).weekly == every_day("08:00", "21:00")
    assert effective(wide, UK_NUMBER) is wide
    assert legal_floor(UK_NUMBER) is None
    floor = legal_floor(US_NUMBER)
    assert floor is not None and floor.weekly == every_day("08:00", "21:00")

    early = utc(2026, 1, 15, 12, 30)  # 07:30 EST
    assert is_open(wide, NEW_YORK, early)
    assert not is_open(wide, NEW_YORK, early, number=US_NUMBER)
    assert next_open(wide, NEW_YORK, early, number=US_NUMBER) == utc(2026, 1, 15, 13)
    assert window_close(wide, NEW_YORK, utc(2026, 1, 15, 13), number=US_NUMBER) == utc(
        2026, 1, 16, 2
    )
    assert window_close(wide, NEW_YORK, utc(2026, 1, 15, 13)) == utc(2026, 1, 16, 4)


def test_the_floor_follows_the_prospect_to_the_zone_its_row_names() -> None:
    wide = CallingHours(weekly=every_day("07:00", "23:00"))
    london = prospect_zones(US_NUMBER, "Europe/London", "America/New_York")
    assert next_open(wide, london, utc(2026, 1, 15, 7), number=US_NUMBER) == utc(2026, 1, 15, 8)
    assert is_open(wide, ("Europe/London",), utc(2026, 1, 15, 7), number=UK_NUMBER)


def test_intersected_hours_keep_both_sides_intervals_and_holidays() -> None:
    split = CallingHours(
        weekly={
            "mon": [{"start": "06:00", "end": "09:00"}, {"start": "20:00", "end": "24:00"}],
            "tue": [{"start": "10:00", "end": "12:00"}],
        },
        holidays=[date(2026, 12, 25)],
    )
    clipped = effective(split, US_NUMBER)
    assert [i.model_dump() for i in clipped.weekly[Weekday.MON]] == [
        {"start": "08:00", "end": "09:00"},
        {"start": "20:00", "end": "21:00"},
    ]
    assert [i.model_dump() for i in clipped.weekly[Weekday.TUE]] == [
        {"start": "10:00", "end": "12:00"}
    ]
    assert clipped.weekly[Weekday.WED] == []
    assert clipped.holidays == [date(2026, 12, 25)]


def test_a_number_that_is_not_a_number_has_no_floor_to_choose() -> None:
    with pytest.raises(InvalidInput) as caught:
        legal_floor("call me maybe")
    assert caught.value.field == "phone"


# Validation


def test_default_hours_are_8_to_21_every_day() -> None:
    assert CallingHours().weekly == every_day("08:00", "21:00")
    assert CallingHours().holidays == []


@pytest.mark.parametrize(
    ("weekly", "location"),
    [
        ({"funday": []}, ("weekly", "funday", "[key]")),
        ({"mon": [{"start": "9:00", "end": "10:00"}]}, ("weekly", "mon", 0, "start")),
        ({"mon": [{"start": "10:00", "end": "24:30"}]}, ("weekly", "mon", 0, "end")),
        ({"mon": [{"start": "12:00", "end": "10:00"}]}, ("weekly", "mon", 0)),
        (
            {"mon": [{"start": "09:00", "end": "12:00"}, {"start": "11:00", "end": "13:00"}]},
            ("weekly", "mon"),
        ),
    ],
)
def test_bad_hours_are_refused_naming_the_field(
    weekly: dict[str, object], location: tuple[object, ...]
) -> None:
    with pytest.raises(ValidationError) as caught:
        CallingHours.model_validate({"weekly": weekly})
    assert [error["loc"] for error in caught.value.errors()] == [location]


def test_touching_intervals_are_kept_in_order() -> None:
    hours = CallingHours.model_validate(
        {
            "weekly": {
                "mon": [{"start": "12:00", "end": "13:00"}, {"start": "09:00", "end": "12:00"}]
            }
        }
    )
    assert [i.start for i in hours.weekly[Weekday.MON]] == ["09:00", "12:00"]
    monday_noon = utc(2026, 1, 12, 17)
    assert window_close(hours, NEW_YORK, monday_noon) == utc(2026, 1, 12, 18)


def test_at_most_366_holidays() -> None:
    days = [date(2026, 1, 1) + timedelta(days=n) for n in range(367)]
    with pytest.raises(ValidationError) as caught:
        CallingHours(holidays=days)
    assert caught.value.errors()[0]["loc"] == ("holidays",)
    assert CallingHours(holidays=days[:366]).ever_opens()


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(ValidationError):
        CallingHours.model_validate({"weekly": {}, "timezone": "UTC"})


# Datetimes


def test_naive_datetimes_are_refused() -> None:
    naive = datetime(2026, 1, 15, 12)
    with pytest.raises(ValueError, match="aware"):
        is_open(CallingHours(), NEW_YORK, naive)
    with pytest.raises(ValueError, match="aware"):
        next_open(CallingHours(), NEW_YORK, naive)
    with pytest.raises(ValueError, match="aware"):
        window_close(CallingHours(), NEW_YORK, naive)


def test_any_aware_datetime_is_read_and_utc_comes_out() -> None:
    plus_five = timezone(timedelta(hours=5))
    found = next_open(CallingHours(), NEW_YORK, datetime(2026, 1, 15, 12, tzinfo=plus_five))
    assert found == utc(2026, 1, 15, 13)
    assert found is not None and found.tzinfo is UTC


def test_an_open_instant_is_its_own_next_opening_to_the_microsecond() -> None:
    moment = utc(2026, 1, 15, 15, 4, 5, 678)
    assert next_open(CallingHours(), NEW_YORK, moment) == moment


def test_no_zones_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="time zone"):
        next_open(CallingHours(), (), utc(2026, 1, 15))


def test_hours_open_around_the_clock_never_close_within_the_horizon() -> None:
    always = CallingHours(weekly=every_day("00:00", "24:00"))
    assert window_close(always, NEW_YORK, utc(2026, 1, 15), horizon_days=30) is None
    with_day_off = CallingHours(weekly=always.weekly, holidays=[date(2026, 1, 20)])
    assert window_close(with_day_off, NEW_YORK, utc(2026, 1, 15)) == utc(2026, 1, 20, 5)


def test_the_horizon_bounds_the_search() -> None:
    sundays_only = sundays("10:00", "11:00")
    thursday = utc(2026, 1, 15, 12)
    assert next_open(sundays_only, NEW_YORK, thursday, horizon_days=2) is None
    assert next_open(sundays_only, NEW_YORK, thursday, horizon_days=4) == utc(2026, 1, 18, 15)
