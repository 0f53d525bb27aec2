"""Dispositions: what one call to a prospect came to, and what the campaign does next.

Each campaign has a set of named dispositions with flags: ``final`` (stop),
``callback`` (call again at the time the callee asked for, within the window),
``dnc`` (add the number to the campaign's do-not-call list) and ``retry``
(call again after the campaign's minimum gap, while attempts remain). The
agent sets one with its ``set_disposition`` or ``schedule_callback`` tool;
otherwise the call's outcome does (busy, no answer, an answering machine,
a failure, or a conversation that ended without one).

``settle`` is the whole rule, as a pure function: the hopper applies it to
each ended call, and the property tests drive it with random outcomes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from switchboard.db.models import ProspectState
from switchboard.schema_base import Identifier

Outcome = Literal["completed", "busy", "no_answer", "machine", "failed", "canceled", "dnc"]


class DispositionFlags(BaseModel):
    model_config = ConfigDict(extra="forbid")

    final: bool = False
    callback: bool = False
    dnc: bool = False
    retry: bool = False
    description: str = Field(default="", max_length=300)

    @model_validator(mode="after")
    def _one_way(self) -> DispositionFlags:
        ways = [self.final, self.callback, self.dnc, self.retry]
        if sum(ways) != 1:
            raise ValueError("a disposition is exactly one of final, callback, dnc or retry")
        return self


def _final(description: str) -> DispositionFlags:
    return DispositionFlags(final=True, description=description)


def _retry(description: str) -> DispositionFlags:
    return DispositionFlags(retry=True, description=description)


DNC_DISPOSITION = "do_not_call"  # a number found on a do-not-call list gets this one
DEFAULT_DISPOSITIONS: dict[str, DispositionFlags] = {
    "interested": _final("the callee wants what was offered"),
    "not_interested": _final("the callee declined"),
    "completed": _final("the conversation ended without a disposition"),
    "callback": DispositionFlags(callback=True, description="call again at the time asked for"),
    DNC_DISPOSITION: DispositionFlags(dnc=True, description="the callee asked not to be called"),
    "busy": _retry("the line was busy"),
    "no_answer": _retry("nobody answered"),
    "machine": _retry("an answering machine answered"),
    "failed": _retry("the call could not be placed or dropped"),
}
# The disposition each outcome gets when the agent set none.
OUTCOME_DISPOSITIONS: dict[str, str] = {
    "completed": "completed",
    "busy": "busy",
    "no_answer": "no_answer",
    "machine": "machine",
    "failed": "failed",
    "canceled": "failed",
    "dnc": DNC_DISPOSITION,
}


def disposition_set(
    custom: dict[Identifier, DispositionFlags] | None,
) -> dict[str, DispositionFlags]:
    """The campaign's set: the defaults (the outcomes need theirs), overridden and extended."""
    return {**DEFAULT_DISPOSITIONS, **(custom or {})}


@dataclass(frozen=True)
class Rules:
    """What settling needs to know of a campaign."""

    dispositions: dict[str, DispositionFlags]
    max_attempts: int
    min_gap: timedelta


@dataclass(frozen=True)
class Settled:
    """A prospect after one of its calls ended."""

    state: ProspectState
    disposition: str
    due_at: datetime | None  # when it may be dialled again (before its window is applied)
    add_to_dnc: bool = False


def settle(
    rules: Rules,
    *,
    outcome: Outcome,
    chosen: str | None,
    callback_at: datetime | None,
    attempts: int,
    now: datetime,
) -> Settled:
    """The prospect's next state after an attempt ended with ``outcome``.

    ``chosen`` is the disposition the agent set (if any, and known to the set);
    ``callback_at`` the time a callback was booked for. Attempts are never
    exceeded: a retry or a callback with none left is final.
    """
    name = chosen if chosen in rules.dispositions else OUTCOME_DISPOSITIONS[outcome]
    flags = rules.dispositions[name]
    left = attempts < rules.max_attempts
    if flags.dnc or outcome == "dnc":
        return Settled(ProspectState.DNC, name, None, add_to_dnc=outcome != "dnc")
    if flags.callback and left:
        return Settled(ProspectState.PENDING, name, callback_at or now + rules.min_gap)
    if flags.retry and left:
        return Settled(ProspectState.PENDING, name, now + rules.min_gap)
    return Settled(ProspectState.FINAL, name, None)
