"""Calling windows: when a campaign may ring a prospect, judged by the prospect's own clock.

A campaign sets hours per weekday and local dates off (``CallingHours``). They
are read on the wall clock of each of the prospect's zones
(``switchboard.dialer.zones.prospect_zones``): a prospect with several zones is
open only while every one of them is. A number whose country has a legal
calling-hours rule never gets more than the rule allows: ``effective(hours,
number)`` is what the campaign's hours become for that number; ``is_open``,
``next_open`` and ``window_close`` apply it themselves when given the prospect's
``number=`` (pass it: without it only the campaign's hours count). Everything here
is pure: aware UTC datetimes in and out (naive ones are refused), no database.

Daylight saving time: a window is judged only by what the clock shows, its
local date (weekday, holidays) and time of day.

- Spring forward: the skipped times are never shown. A window opening inside
  the gap (02:30 on a day New York jumps from 02:00 to 03:00) opens at the
  jump, 03:00 EDT; one ending inside it ends at the jump.
- Fall back: the repeated hour is shown twice and judged alike both times. A
  window ending at 01:30 closes at 01:30 EDT, opens again at 01:00 EST and
  closes at 01:30 EST; one opening at 01:30 first opens at 01:30 EDT.

US and Canadian clocks change at 02:00, outside the legal 08:00-21:00, so only
night hours (outside the NANP) ever meet these cases.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Iterable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, Field

from switchboard.agents.schema import OpenInterval, Weekday, open_intervals, open_on_clock
from switchboard.dialer.zones import country_code, load_zone
from switchboard.dialer.zones import prospect_zones as prospect_zones
from switchboard.errors import InvalidInput
from switchboard.schema_base import StrictModel

DEFAULT_HOURS = ("08:00", "21:00")
# 47 CFR 64.1200(c)(1): no solicitation before 8 am or after 9 pm, called party's local time.
NANP_LEGAL_HOURS = ("08:00", "21:00")
NANP_COUNTRY_CODE = 1
DEFAULT_HORIZON_DAYS = 400

_DAY = timedelta(days=1)
_SECOND = timedelta(seconds=1)

Run = tuple[datetime, datetime]  # [start, end) in naive UTC


def every_day(start: str, end: str) -> dict[Weekday, list[OpenInterval]]:
    """The same interval on all seven weekdays."""
    return {day: [OpenInterval(start=start, end=end)] for day in Weekday}


def _disjoint(intervals: list[OpenInterval]) -> list[OpenInterval]:
    ordered = sorted(intervals, key=lambda interval: interval.minutes)
    for before, after in itertools.pairwise(ordered):
        if after.minutes[0] < before.minutes[1]:
            raise ValueError(f"{before.start}-{before.end} overlaps {after.start}-{after.end}")
    return ordered


# One weekday's intervals, sorted; they may touch (09:00-12:00, 12:00-13:00), not overlap.
DayHours = Annotated[list[OpenInterval], AfterValidator(_disjoint)]


class CallingHours(StrictModel):
    """When a campaign may call, on the prospect's clock: hours per weekday and local dates off.

    A weekday left out, or given no intervals, is closed all day.
    """

    weekly: dict[Weekday, DayHours] = Field(default_factory=lambda: every_day(*DEFAULT_HOURS))
    holidays: list[date] = Field(default_factory=list, max_length=366)

    def ever_opens(self) -> bool:
        """Whether any instant is ever open: some weekday has an interval.

        Holidays cannot close a weekday for good: there are at most 366 of them.
        """
        return any(self.weekly.values())


def require_opening(hours: CallingHours, *, field: str = "hours") -> CallingHours:
    """``hours``, or ``InvalidInput`` naming ``{field}.weekly`` (a 422) when they never open."""
    if not hours.ever_opens():
        raise InvalidInput(
            "the calling hours never open: give a weekday an interval", field=f"{field}.weekly"
        )
    return hours


def legal_floor(number: str) -> CallingHours | None:
    """The hours the law allows calling ``number``, on its clock; None where we encode no rule.

    Every +1 number gets the US rule, 08:00-21:00 daily: the US and Canada, and the other
    NANP countries too (wrong there only on the strict side).
    """
    floor = _LEGAL_FLOORS.get(country_code(number))
    return None if floor is None else floor.model_copy(deep=True)


def effective(hours: CallingHours, number: str) -> CallingHours:
    """The campaign's ``hours`` as they apply to ``number``: clipped to its legal floor, if any."""
    floor = _LEGAL_FLOORS.get(country_code(number))
    return hours if floor is None else _intersect(hours, floor)


def _intersect(first: CallingHours, second: CallingHours) -> CallingHours:
    weekly: dict[Weekday, list[OpenInterval]] = {}
    for day in Weekday:
        theirs = [interval.minutes for interval in second.weekly.get(day, [])]
        overlaps = sorted(
            (max(opens, their_opens), min(closes, their_closes))
            for opens, closes in (interval.minutes for interval in first.weekly.get(day, []))
            for their_opens, their_closes in theirs
        )
        weekly[day] = [_interval(start, end) for start, end in overlaps if start < end]
    holidays = sorted(set(first.holidays) | set(second.holidays))
    # Valid by construction (it runs for each prospect, so validating again would cost).
    return CallingHours.model_construct(weekly=weekly, holidays=holidays)


def _interval(start: int, end: int) -> OpenInterval:
    return OpenInterval.model_construct(
        start=f"{start // 60:02d}:{start % 60:02d}", end=f"{end // 60:02d}:{end % 60:02d}"
    )


# Shared, never handed out: legal_floor gives copies.
_LEGAL_FLOORS = {NANP_COUNTRY_CODE: CallingHours(weekly=every_day(*NANP_LEGAL_HOURS))}


def is_open(
    hours: CallingHours, zones: Iterable[str], at: datetime, *, number: str | None = None
) -> bool:
    """Whether ``at`` is inside ``hours`` (clipped to ``number``'s legal floor, when given)
    on the clock of every one of ``zones``."""
    return _open_in(_for_number(hours, number), _load(zones), _utc(at))


def next_open(
    hours: CallingHours,
    zones: Iterable[str],
    after: datetime,
    *,
    number: str | None = None,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
) -> datetime | None:
    """The earliest instant at or after ``after`` at which ``is_open`` holds.

    ``after`` itself when it is open (to the microsecond), else the exact instant a
    window opens; None when no window opens within ``horizon_days``. Each zone's
    open stretches are walked a day at a time, and the zones are intersected by
    leapfrogging: the candidate jumps to the next opening of whichever zone is
    closed at it until all are open at once.
    """
    hours = _for_number(hours, number)
    start = _utc(after)
    limit = start + timedelta(days=horizon_days)
    holidays = frozenset(hours.holidays)
    streams = [_runs(hours, holidays, zone, start, limit) for zone in _load(zones)]
    current: list[Run | None] = [None] * len(streams)
    candidate, agreeing, index = start, 0, 0
    while agreeing < len(streams):
        run = current[index]
        while run is None or run[1] <= candidate:
            run = next(streams[index], None)
            if run is None:
                return None
        current[index] = run
        if run[0] > candidate:
            candidate, agreeing = run[0], 1
        else:
            agreeing += 1
        index = (index + 1) % len(streams)
    return candidate.replace(tzinfo=UTC)


def window_close(
    hours: CallingHours,
    zones: Iterable[str],
    at: datetime,
    *,
    number: str | None = None,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
) -> datetime | None:
    """When the window open at ``at`` closes: the first later instant closed in some zone.

    None when ``at`` is closed, and when the window stays open for all of ``horizon_days``.
    """
    hours = _for_number(hours, number)
    loaded = _load(zones)
    start = _utc(at)
    if not _open_in(hours, loaded, start):
        return None
    limit = start + timedelta(days=horizon_days)
    holidays = frozenset(hours.holidays)
    for zone in loaded:
        end = start
        for run_start, run_end in _runs(hours, holidays, zone, start, limit):
            if run_start > end:
                break
            end = run_end
        limit = min(limit, end)  # later zones need only be walked up to the earliest close
    if limit - start >= timedelta(days=horizon_days):
        return None
    return limit.replace(tzinfo=UTC)


def _open_in(hours: CallingHours, zones: list[ZoneInfo], utc: datetime) -> bool:
    moment = utc.replace(tzinfo=UTC)
    holidays = frozenset(hours.holidays)
    return all(open_on_clock(hours.weekly, holidays, moment.astimezone(zone)) for zone in zones)


def _for_number(hours: CallingHours, number: str | None) -> CallingHours:
    return hours if number is None else effective(hours, number)


def _utc(moment: datetime) -> datetime:
    """``moment`` as naive UTC, the form the walk computes in."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("calling windows need aware datetimes (UTC), not naive ones")
    return moment.astimezone(UTC).replace(tzinfo=None)


def _load(zones: Iterable[str]) -> list[ZoneInfo]:
    loaded = [load_zone(name) for name in dict.fromkeys(zones)]
    if not loaded:
        raise ValueError("a calling window needs at least one time zone")
    return loaded


def _offset(zone: ZoneInfo, utc: datetime) -> timedelta:
    return zone.fromutc(utc.replace(tzinfo=zone)).utcoffset() or timedelta(0)


def _runs(
    hours: CallingHours, holidays: Collection[date], zone: ZoneInfo, start: datetime, end: datetime
) -> Iterator[Run]:
    """The stretches of [start, end) in which ``zone``'s clock shows an open time, in order.

    Between offset changes the clock is UTC plus a constant, so each local interval
    is one UTC interval. Stretches may touch (at midnight, at an offset change).
    """
    for piece_start, piece_end, offset in _constant_offsets(zone, start, end):
        wall_start, wall_end = piece_start + offset, piece_end + offset
        day = wall_start.date()
        while (midnight := datetime.combine(day, time())) < wall_end:
            for interval in sorted(
                open_intervals(hours.weekly, holidays, day), key=lambda interval: interval.minutes
            ):
                opens, closes = interval.minutes
                low = max(wall_start, midnight + timedelta(minutes=opens))
                high = min(wall_end, midnight + timedelta(minutes=closes))
                if low < high:
                    yield low - offset, high - offset
            day += _DAY


def _constant_offsets(
    zone: ZoneInfo, start: datetime, end: datetime
) -> Iterator[tuple[datetime, datetime, timedelta]]:
    """[start, end) cut where ``zone``'s UTC offset changes, a day at a time, with each offset.

    One probe a day finds every change: tzdata never changes an offset twice within
    two days (checked for every zone, 1800-2100).
    """
    offset = _offset(zone, start)
    while start < end:
        stop = min(start + _DAY, end)
        if _offset(zone, stop) == offset:
            yield start, stop, offset
            start = stop
            continue
        change = _offset_change(zone, start, stop, offset)
        yield start, change, offset
        start, offset = change, _offset(zone, change)


def _offset_change(
    zone: ZoneInfo, before: datetime, after: datetime, offset: timedelta
) -> datetime:
    """The one instant in (before, after] where ``zone``'s offset stops being ``offset``.

    Offsets change on whole seconds (tzdata counts in seconds), so bisecting whole
    seconds finds it exactly.
    """
    low = before.replace(microsecond=0)
    span = int((after - low) / _SECOND) + (1 if after.microsecond else 0)
    while span > 1:
        half = span // 2
        if _offset(zone, low + half * _SECOND) == offset:
            low, span = low + half * _SECOND, span - half
        else:
            span = half
    return low + span * _SECOND
