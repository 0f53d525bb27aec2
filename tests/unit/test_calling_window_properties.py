"""Calling windows, by property: random hours, holidays, zones and instants against the clock.

The oracle (``clock_open``) reads each zone's wall clock with ``zoneinfo`` and
nothing else, so ``is_open`` is checked against it and ``next_open`` and
``window_close`` against both. Half of the instants are drawn within two days
of one of the first zone's offset changes, where the DST rules bite. Each
property runs a fixed, derandomized set of examples, so CI sees the same cases.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, available_timezones

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from switchboard.agents.schema import OpenInterval, Weekday
from switchboard.dialer.windows import CallingHours, is_open, next_open, window_close
from switchboard.dialer.zones import prospect_zones

# "localtime" is whatever the machine is set to: not a zone a run can repeat.
ZONES = sorted(available_timezones() - {"localtime"})
NANP_NUMBERS = ("+12125551234", "+14158675309", "+16045551234", "+13065551234", "+18005551212")
HORIZON_DAYS = 21  # bounds the brute-force checks; the walk itself does not depend on it
WEEKDAYS = list(Weekday)
MINUTE = timedelta(minutes=1)
TINY = timedelta(microseconds=1)

PROPERTY = settings(
    max_examples=2000,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

Weekly = dict[Weekday, list[tuple[int, int]]]


class Case:
    """One drawn situation: hours (as minutes, and as the model), holidays, zones, an instant."""

    def __init__(self, weekly: Weekly, holidays: set[date], zones: tuple[str, ...], at: datetime):
        self.weekly, self.holidays, self.zones, self.at = weekly, holidays, zones, at
        self.hours = CallingHours(
            weekly={
                day: [OpenInterval(start=_hhmm(s), end=_hhmm(e)) for s, e in intervals]
                for day, intervals in weekly.items()
            },
            holidays=sorted(holidays),
        )

    def clock_open(self, moment: datetime) -> bool:
        return all(self.clock_open_in(zone, moment) for zone in self.zones)

    def clock_open_in(self, zone: str, moment: datetime) -> bool:
        local = moment.astimezone(ZoneInfo(zone))
        if local.date() in self.holidays:
            return False
        minute = local.hour * 60 + local.minute
        return any(s <= minute < e for s, e in self.weekly.get(WEEKDAYS[local.weekday()], []))

    def __repr__(self) -> str:
        return f"Case({self.weekly!r}, {sorted(self.holidays)!r}, {self.zones!r}, {self.at!r})"


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def offset_changes(
    zone: str, start: datetime, end: datetime, step: timedelta = timedelta(hours=6)
) -> list[datetime]:
    """Instants in (start, end] where ``zone``'s UTC offset changes, to the second (one per
    ``step`` at most)."""
    tz = ZoneInfo(zone)

    def offset(moment: datetime) -> timedelta | None:
        return moment.astimezone(tz).utcoffset()

    found, probe, current = [], start, offset(start)
    while probe < end:
        after = min(probe + step, end)
        if (following := offset(after)) != current:
            low, high = probe, after
            while high - low > timedelta(seconds=1):
                middle = low + (high - low) / 2
                low, high = (middle, high) if offset(middle) == current else (low, middle)
            found.append(high.replace(microsecond=0))
        probe, current = after, following
    return found


def _paired(bounds: list[int]) -> list[tuple[int, int]]:
    # Sorted boundaries paired off: disjoint intervals, sometimes touching, sometimes to 24:00.
    ordered = sorted(bounds)
    return [(s, e) for s, e in zip(ordered[::2], ordered[1::2], strict=False) if s < e]


# Edge values a generator should favour: midnight, the legal limits, the end of the day.
EDGE_MINUTES = (0, 1, 480, 1259, 1260, 1439, 1440)


def random_weekly(rng: random.Random) -> Weekly:
    """Hours for most weekdays, up to three intervals each, at any minute or at the edges."""
    weekly: Weekly = {}
    for day in WEEKDAYS:
        if rng.random() < 0.8:
            bounds = [
                rng.choice(EDGE_MINUTES) if rng.random() < 0.3 else rng.randint(0, 1440)
                for _ in range(rng.randint(0, 6))
            ]
            weekly[day] = _paired(bounds)
    return weekly


# Strategies are built once: building them inside each draw costs more than the draws.
# Not unique: a repeated zone must change nothing.
ZONE_LISTS = st.lists(st.sampled_from(ZONES), min_size=1, max_size=3).map(tuple)
# The week comes from one drawn seed: as a dictionary of lists it takes ~60 draws a case,
# which doubles the run time. Failures still replay exactly (derandomized).
WEEKLY = st.integers(0, 2**32 - 1).map(lambda seed: random_weekly(random.Random(seed)))
INSTANTS = st.datetimes(datetime(1900, 1, 1), datetime(2100, 1, 1), timezones=st.just(UTC))
# None: the instant as drawn; else this many minutes from the zone's next offset change.
NEAR_CHANGE = st.one_of(st.none(), st.integers(-48 * 60, 24 * 60))
HOLIDAY_DAYS = st.lists(st.integers(-2, HORIZON_DAYS), max_size=4)


@st.composite
def cases(draw: st.DrawFn, zones: st.SearchStrategy[tuple[str, ...]] = ZONE_LISTS) -> Case:
    chosen = draw(zones)
    at = draw(INSTANTS)
    shift = draw(NEAR_CHANGE)
    if shift is not None:
        changes = offset_changes(chosen[0], at, at + timedelta(days=370), timedelta(days=7))
        if changes:
            at = changes[0] + timedelta(minutes=shift)
    weekly = draw(WEEKLY)
    holidays = {at.date() + timedelta(days=n) for n in draw(HOLIDAY_DAYS)}
    return Case(weekly, holidays, chosen, at)


def probes(case: Case, start: datetime, end: datetime) -> list[datetime]:
    """Instants in [start, end) where a window could open unnoticed: the first and last
    minutes, every local interval start (both passes of a repeated hour), every offset change."""
    first = start.replace(second=0, microsecond=0) + MINUTE
    found = [start] + [first + n * MINUTE for n in range(30)]
    found += [end - n * MINUTE for n in range(1, 61)]
    for zone in case.zones:
        tz = ZoneInfo(zone)
        day = start.astimezone(tz).date() - timedelta(days=1)
        while day <= end.astimezone(tz).date() + timedelta(days=1):
            for s, _ in case.weekly.get(WEEKDAYS[day.weekday()], []):
                wall = datetime.combine(day, time()) + timedelta(minutes=s)
                found += [wall.replace(tzinfo=tz, fold=fold).astimezone(UTC) for fold in (0, 1)]
            day += timedelta(days=1)
        found += offset_changes(zone, start, end)
    return [moment for moment in found if start <= moment < end]


# (1) next_open(t) is at or after t, and open there.
@PROPERTY
@given(cases())
def test_next_open_is_an_open_instant_at_or_after(case: Case) -> None:
    found = next_open(case.hours, case.zones, case.at, horizon_days=HORIZON_DAYS)
    if found is not None:
        assert case.at <= found < case.at + timedelta(days=HORIZON_DAYS)
        assert found.tzinfo is UTC
        assert is_open(case.hours, case.zones, found)
        assert case.clock_open(found)


# (2) Nothing in [t, next_open(t)) is open: not at the minutes either side, not at any
# local interval start, not at any offset change.
@PROPERTY
@given(cases())
def test_nothing_opens_before_next_open(case: Case) -> None:
    found = next_open(case.hours, case.zones, case.at, horizon_days=HORIZON_DAYS)
    end = found or case.at + timedelta(days=HORIZON_DAYS)
    for moment in probes(case, case.at, end):
        assert not case.clock_open(moment), moment


# (3) Open at t means next_open(t) is t; and the window open at t stays open until
# window_close(t), which is closed.
@PROPERTY
@given(cases())
def test_open_now_means_next_open_is_now(case: Case) -> None:
    now_open = is_open(case.hours, case.zones, case.at)
    found = next_open(case.hours, case.zones, case.at, horizon_days=HORIZON_DAYS)
    assert (found == case.at) is now_open
    closes = window_close(case.hours, case.zones, case.at, horizon_days=HORIZON_DAYS)
    if not now_open:
        assert closes is None
    elif closes is not None:
        assert closes > case.at
        assert case.clock_open(closes - TINY)
        assert not case.clock_open(closes)
        for moment in probes(case, case.at, closes):
            assert case.clock_open(moment), moment


# (4) An open instant is, in every zone, inside that zone's local interval of that weekday
# and not on a holiday: is_open agrees with the clock everywhere.
@PROPERTY
@given(cases(), st.lists(st.integers(0, HORIZON_DAYS * 24 * 60), max_size=5))
def test_open_means_inside_the_local_hours_in_every_zone(case: Case, later: list[int]) -> None:
    moments = [case.at + timedelta(minutes=n) for n in later]
    found = next_open(case.hours, case.zones, case.at, horizon_days=HORIZON_DAYS)
    for moment in [case.at, *moments, *([found] if found else [])]:
        assert is_open(case.hours, case.zones, moment) is case.clock_open(moment)


NANP_NUMBER_ZONES = st.sampled_from(
    [(number, prospect_zones(number, None, "America/New_York")) for number in NANP_NUMBERS]
)
ONE_ZONE = st.sampled_from(ZONES).map(lambda zone: (zone,))


@st.composite
def nanp_cases(draw: st.DrawFn) -> tuple[str, Case]:
    """A +1 number, and its own zones or (as its row could name) any one zone."""
    number, own = draw(NANP_NUMBER_ZONES)
    zones = st.just(own) if draw(st.booleans()) else ONE_ZONE
    return number, draw(cases(zones))


# (5) For +1 numbers, whatever the campaign's hours, every open instant is between 08:00
# and 21:00 on each zone's clock.
@PROPERTY
@given(nanp_cases())
def test_plus_one_numbers_open_only_between_8_and_21(drawn: tuple[str, Case]) -> None:
    number, case = drawn
    horizon = 7 if len(case.zones) > 3 else HORIZON_DAYS  # the toll-free number's 42 zones
    found = next_open(case.hours, case.zones, case.at, number=number, horizon_days=horizon)
    moments = [case.at] if found is None else [case.at, found]
    closes = found and window_close(case.hours, case.zones, found, number=number)
    if closes is not None:
        moments.append(closes - TINY)
    for moment in moments:
        if moment is found or is_open(case.hours, case.zones, moment, number=number):
            assert case.clock_open(moment)
            for zone in case.zones:
                local = moment.astimezone(ZoneInfo(zone)).time()
                assert time(8) <= local < time(21), (zone, local)
