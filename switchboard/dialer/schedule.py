"""What the hopper decides about one prospect, as pure functions of the facts it reads.

``before_dial``: a prospect the selection query found due is dialled now, or
moved to when its window next opens, or ended (expired, do-not-call).
``after_call``: an attempt ended; the prospect is due again (when, already in
its window), or final, expired or do-not-call. The hopper applies these to
rows; the property tests drive the same functions with a simulated clock, so
what they prove is what the hopper does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from switchboard.db.models import ProspectState
from switchboard.dialer.dispositions import DNC_DISPOSITION, Outcome, Rules, settle
from switchboard.dialer.windows import CallingHours, is_open, next_open


@dataclass(frozen=True)
class Facts:
    """What the hopper knows of a prospect when it decides."""

    phone: str
    zones: tuple[str, ...]
    expires_at: datetime | None  # the prospect's own expiry or the campaign's end, if sooner
    attempts: int


@dataclass(frozen=True)
class Verdict:
    """The prospect's next state, and when it is due (``state`` pending) or its disposition."""

    state: ProspectState
    due_at: datetime | None = None
    disposition: str | None = None
    add_to_dnc: bool = False

    @property
    def dial_now(self) -> bool:
        return self.state is ProspectState.DIALING


DIAL = Verdict(ProspectState.DIALING)
EXPIRED = Verdict(ProspectState.EXPIRED)


def before_dial(hours: CallingHours, prospect: Facts, now: datetime, *, on_dnc: bool) -> Verdict:
    """Dial now, or not yet (pending, due when its window next opens), or never."""
    if on_dnc:
        return Verdict(ProspectState.DNC, disposition=DNC_DISPOSITION)
    if _expired(prospect, now):
        return EXPIRED
    if is_open(hours, prospect.zones, now, number=prospect.phone):
        return DIAL
    return _due(hours, prospect, now)


def after_call(
    rules: Rules,
    hours: CallingHours,
    prospect: Facts,
    *,
    outcome: Outcome,
    chosen: str | None,
    callback_at: datetime | None,
    now: datetime,
) -> Verdict:
    """The prospect after its attempt ended with ``outcome`` (and the agent's ``chosen``
    disposition, and the callback it booked)."""
    done = settle(
        rules,
        outcome=outcome,
        chosen=chosen,
        callback_at=callback_at,
        attempts=prospect.attempts,
        now=now,
    )
    if done.due_at is None:
        return Verdict(done.state, disposition=done.disposition, add_to_dnc=done.add_to_dnc)
    due = _due(hours, prospect, done.due_at)
    return Verdict(due.state, due.due_at, done.disposition)


def first_due(hours: CallingHours, prospect: Facts, now: datetime) -> Verdict:
    """A new prospect: pending until its window first opens (or expired if it never does)."""
    if _expired(prospect, now):
        return EXPIRED
    return _due(hours, prospect, now)


def _due(hours: CallingHours, prospect: Facts, after: datetime) -> Verdict:
    due = next_open(hours, prospect.zones, after, number=prospect.phone)
    if due is None or _expired(prospect, due):
        return EXPIRED
    return Verdict(ProspectState.PENDING, due)


def _expired(prospect: Facts, at: datetime) -> bool:
    return prospect.expires_at is not None and prospect.expires_at <= at
