"""The dialer's pure rules by example: what the property tests check at random, shown once
each with the numbers a reader can follow."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from switchboard.db.models import ProspectState
from switchboard.dialer import pacing
from switchboard.dialer.dispositions import DEFAULT_DISPOSITIONS, DispositionFlags, Rules
from switchboard.dialer.schedule import Facts, after_call, before_dial
from switchboard.dialer.windows import CallingHours

NEW_YORK = ("America/New_York",)
# Monday 2026-11-30, 15:00 in New York (UTC-5).
MONDAY_3PM = datetime(2026, 11, 30, 20, 0, tzinfo=UTC)
RULES = Rules(dict(DEFAULT_DISPOSITIONS), max_attempts=3, min_gap=timedelta(hours=1))
HOURS = CallingHours()  # every day 08:00-21:00


def prospect(attempts: int = 1, expires_at: datetime | None = None) -> Facts:
    return Facts("+12125550123", NEW_YORK, expires_at, attempts)


def test_a_due_prospect_is_dialled_only_inside_its_window() -> None:
    assert before_dial(HOURS, prospect(0), MONDAY_3PM, on_dnc=False).dial_now
    ten_pm = MONDAY_3PM + timedelta(hours=7)
    later = before_dial(HOURS, prospect(0), ten_pm, on_dnc=False)
    assert later.state is ProspectState.PENDING
    assert later.due_at == datetime(2026, 12, 1, 13, 0, tzinfo=UTC)  # Tuesday 08:00 local


def test_the_us_floor_clips_hours_wider_than_the_law() -> None:
    all_day = CallingHours.model_validate(
        {"weekly": {d: [{"start": "00:00", "end": "24:00"}] for d in ("mon", "tue")}}
    )
    eleven_pm = MONDAY_3PM + timedelta(hours=8)
    verdict = before_dial(all_day, prospect(0), eleven_pm, on_dnc=False)
    assert verdict.due_at == datetime(2026, 12, 1, 13, 0, tzinfo=UTC)


def test_a_listed_or_expired_prospect_is_never_dialled() -> None:
    listed = before_dial(HOURS, prospect(0), MONDAY_3PM, on_dnc=True)
    assert (listed.state, listed.disposition) == (ProspectState.DNC, "do_not_call")
    gone = before_dial(HOURS, prospect(0, MONDAY_3PM), MONDAY_3PM, on_dnc=False)
    assert gone.state is ProspectState.EXPIRED


def test_a_retry_waits_the_gap_and_then_for_the_window() -> None:
    busy = after_call(
        RULES, HOURS, prospect(1), outcome="busy", chosen=None, callback_at=None, now=MONDAY_3PM
    )
    assert (busy.state, busy.disposition) == (ProspectState.PENDING, "busy")
    assert busy.due_at == MONDAY_3PM + timedelta(hours=1)

    at_8_30pm = MONDAY_3PM + timedelta(hours=5, minutes=30)
    late = after_call(
        RULES, HOURS, prospect(1), outcome="busy", chosen=None, callback_at=None, now=at_8_30pm
    )
    assert late.due_at == datetime(2026, 12, 1, 13, 0, tzinfo=UTC)  # 21:30 is shut: Tuesday 08:00


def test_the_last_attempt_is_final_whatever_the_outcome() -> None:
    last = after_call(
        RULES,
        HOURS,
        prospect(3),
        outcome="no_answer",
        chosen=None,
        callback_at=None,
        now=MONDAY_3PM,
    )
    assert (last.state, last.disposition, last.due_at) == (ProspectState.FINAL, "no_answer", None)


def test_the_agents_disposition_wins_over_the_outcome() -> None:
    chosen = after_call(
        RULES,
        HOURS,
        prospect(1),
        outcome="completed",
        chosen="interested",
        callback_at=None,
        now=MONDAY_3PM,
    )
    assert (chosen.state, chosen.disposition) == (ProspectState.FINAL, "interested")
    unknown = after_call(
        RULES,
        HOURS,
        prospect(1),
        outcome="completed",
        chosen="nonsense",
        callback_at=None,
        now=MONDAY_3PM,
    )
    assert unknown.disposition == "completed"  # a name the campaign lacks is ignored


def test_a_callback_is_due_at_the_time_booked_and_a_dnc_disposition_lists_the_number() -> None:
    booked = MONDAY_3PM + timedelta(days=1)
    callback = after_call(
        RULES,
        HOURS,
        prospect(1),
        outcome="completed",
        chosen="callback",
        callback_at=booked,
        now=MONDAY_3PM,
    )
    assert (callback.state, callback.due_at) == (ProspectState.PENDING, booked)

    custom = Rules(
        {**DEFAULT_DISPOSITIONS, "wrong_person": DispositionFlags(dnc=True)}, 3, timedelta(0)
    )
    listed = after_call(
        custom,
        HOURS,
        prospect(1),
        outcome="completed",
        chosen="wrong_person",
        callback_at=None,
        now=MONDAY_3PM,
    )
    assert (listed.state, listed.add_to_dnc) == (ProspectState.DNC, True)


def test_pacing_takes_the_smallest_limit() -> None:
    limits = pacing.Limits(max_concurrent=10, calls_per_second=2.0)
    start = pacing.Bucket(tokens=2.0, at=MONDAY_3PM)

    def free(live: int, workspace_free: int, rate: float | None, bucket: pacing.Bucket) -> int:
        return pacing.capacity(
            limits,
            bucket,
            live=live,
            workspace_free=workspace_free,
            abandon_rate=rate,
            now=MONDAY_3PM,
        )[0]

    assert free(0, 100, None, start) == 2  # the bucket: two a second
    assert free(9, 100, None, start) == 1  # concurrency
    assert free(0, 1, None, start) == 1  # the workspace's free slots
    assert free(0, -3, None, start) == 0  # a workspace over its limit starts nothing
    assert free(0, 100, None, pacing.Bucket(0.5, MONDAY_3PM)) == 0


def test_the_bucket_refills_at_the_rate_and_holds_a_second() -> None:
    limits = pacing.Limits(max_concurrent=100, calls_per_second=4.0)
    empty = pacing.Bucket(0.0, MONDAY_3PM)
    assert pacing.refill(limits, empty, MONDAY_3PM + timedelta(seconds=0.5)).tokens == 2.0
    assert pacing.refill(limits, empty, MONDAY_3PM + timedelta(minutes=5)).tokens == 4.0
    slow = pacing.Limits(max_concurrent=100, calls_per_second=0.2)
    assert slow.burst == 1.0  # at least one call


def test_abandonment_halves_then_throttles_concurrency() -> None:
    limits = pacing.Limits(max_concurrent=10, calls_per_second=5.0, abandon_target=0.03)
    assert pacing.concurrency(limits, None) == 10
    assert pacing.concurrency(limits, 0.02) == 10
    assert pacing.concurrency(limits, 0.025) == 5  # past 80 % of the target
    assert pacing.concurrency(limits, 0.03) == 1
    assert pacing.abandon_rate(0, 0) is None
    assert pacing.abandon_rate(200, 6) == 0.03
