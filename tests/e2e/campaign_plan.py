"""A 1,000-prospect campaign both scale tests run: embedded on SQLite
(``test_campaign_scale``) and on two workers over PostgreSQL (``test_distributed_campaign``).

Every prospect's callee is set on the simulator by number class, deterministically (a
``sequence`` of outcomes, one per planned attempt), so the final state, disposition and
attempts of each prospect follow from the plan alone, and both runs must end alike. By
``n % 50`` (20 prospects a class):

- ``0``: answers; the agent hears "Hello?", sets ``appointment_booked`` (a custom final
  disposition) with its ``set_disposition`` tool and hangs up: 1 attempt;
- ``1``: busy, then answers (``appointment_booked``): 2 attempts;
- ``2``-``31``: the carrier fails the call: ``failed``, which this campaign makes final
  (it overrides the default, a retry): 1 attempt;
- ``32``-``39``: busy twice: ``busy`` after 2 attempts (``max_attempts``);
- ``40``-``45``: no answer twice: ``no_answer`` after 2 attempts;
- ``46``-``49``: busy, then no answer: ``no_answer`` after 2 attempts.

Answered calls are few (4 %): each runs a whole voice pipeline, about ten times what an
unanswered dial costs, and this machine has two cores for everything.

Numbers are UK drama numbers (``+447700900000``-``+447700900999``): no legal calling-hours
floor is encoded for them, so with hours 00:00-24:00 every day on Europe/London the window
is open whatever the clock says. Everything goes through the HTTP API and the simulator's
own routes, so the same code drives an in-process server and separate processes.
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from switchboard.dialer.attempts import STALLED_REASON
from switchboard.jobs.queue import CONCURRENCY as JOBS_AT_ONCE
from tests.conftest import wait_until
from tests.e2e.live import fake_agent

PROSPECTS = 1000
MAX_ATTEMPTS = 2
FROM = "+15550180"
RING_SECONDS = 0.05
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WORKSPACE_CALLS = 150  # the workspace's call limit (10 by default), and each server's (20)
BOOKED = "appointment_booked"  # the campaign's own final disposition, set by the agent
# The agent greets at once (two seconds more would make the call abandoned, and pacing
# slow down), hears the callee's line, records the disposition and hangs up. Its turns end
# on VAD silence: Smart Turn's verdict on a lone "Hello?" varies with the CPU's load.
AGENT = {
    "name": "Scale campaign",
    "system_prompt": "Be brief.",
    **fake_agent(
        ["hello"],
        [
            {
                "text": "Booked, bye.",
                "tool_calls": [
                    {"name": "set_disposition", "arguments": {"disposition": BOOKED}},
                    {"name": "end_call"},
                ],
            }
        ],
        outbound={"greeting": "Hi."},
        pipeline={"turn_detection": "vad"},
    ),
}
# What each simulator outcome leaves on our call record.
CALL_STATUS = {"answer": "completed", "busy": "busy", "no_answer": "no_answer", "fail": "failed"}


@dataclass(frozen=True)
class Expected:
    """One prospect's callee, and what the campaign must make of it."""

    phone: str
    sequence: tuple[str, ...]  # the simulator's outcome for each attempt, in order
    disposition: str

    @property
    def attempts(self) -> int:
        return len(self.sequence)

    @property
    def call_statuses(self) -> list[str]:
        return [CALL_STATUS[outcome] for outcome in self.sequence]


def phone(n: int) -> str:
    return f"+4477009{n:05d}"


def _expected(n: int) -> Expected:
    kind = n % 50
    if kind == 0:
        return Expected(phone(n), ("answer",), BOOKED)
    if kind == 1:
        return Expected(phone(n), ("busy", "answer"), BOOKED)
    if kind < 32:
        return Expected(phone(n), ("fail",), "failed")
    if kind < 40:
        return Expected(phone(n), ("busy", "busy"), "busy")
    if kind < 46:
        return Expected(phone(n), ("no_answer", "no_answer"), "no_answer")
    return Expected(phone(n), ("busy", "no_answer"), "no_answer")


PLAN: dict[str, Expected] = {e.phone: e for e in map(_expected, range(PROSPECTS))}
DIALS = sum(e.attempts for e in PLAN.values())  # 1,380
ANSWERED = sum(e.sequence.count("answer") for e in PLAN.values())  # 40
DISPOSITIONS = {number: e.disposition for number, e in PLAN.items()}


def callee(expected: Expected) -> dict[str, Any]:
    """The simulator's callee for one number: its outcomes in order, each ringing briefly
    (a dial beyond the plan would draw one of them, and show in the simulator's log)."""
    outcomes = sorted(set(expected.sequence))
    return {
        "sequence": list(expected.sequence),
        "outcomes": [{"outcome": o, "ring_seconds": RING_SECONDS} for o in outcomes],
        "script": ["Hello?"],
        # Patient, so that a loaded machine slows an answered call down but does not end it
        # before the agent has heard the line and set the disposition.
        "greeting_wait_seconds": 30,
        "reply_timeout_seconds": 60,
        "seed": 1,
    }


# Pacing, which changes how fast the plan runs, not how it ends. Embedded, the in-process
# job runner (four jobs at a time, the calls' placing among them) holds dialling to what
# the one process can take. Distributed, the workers would flood the one server that
# hosts the simulator, the carrier's webhooks and every call's media: answered calls would
# wait over two seconds for the agent's greeting (abandoned, so pacing drops to one call
# at a time) and the callee's line could go unheard.
EMBEDDED_PACING = {"max_concurrent": 100, "calls_per_second": 50}
DISTRIBUTED_PACING = {"max_concurrent": 30, "calls_per_second": 20}


def campaign_body(agent_id: str, pacing: dict[str, Any]) -> dict[str, Any]:
    return {
        "agent_id": agent_id,
        "name": "Scale",
        "default_timezone": "Europe/London",
        "hours": {"weekly": {day: [{"start": "00:00", "end": "24:00"}] for day in WEEKDAYS}},
        "max_attempts": MAX_ATTEMPTS,
        "min_gap_seconds": 1,
        **pacing,
        "machine_detection": "off",
        "ring_timeout_seconds": 10,
        # A call or two that a loaded test machine answers late must not slow the rest
        # to one call at a time (the default, 3 %, is two of these 40 answered calls).
        "abandon_target": 0.1,
        "dispositions": {
            BOOKED: {"final": True, "description": "the callee booked an appointment"},
            "failed": {"final": True, "description": "the carrier could not place the call"},
        },
    }


def prospects_csv() -> str:
    return "phone,name\n" + "".join(f"{number},P{i}\n" for i, number in enumerate(PLAN))


async def set_up_callees(simulator: httpx.AsyncClient) -> None:
    """Every number's callee on the simulator (its fake carrier API)."""
    limit = asyncio.Semaphore(20)

    async def one(expected: Expected) -> None:
        async with limit:
            response = await simulator.put(
                f"/simulator/numbers/{expected.phone}", json=callee(expected)
            )
        assert response.status_code == 200, response.text

    await asyncio.gather(*(one(e) for e in PLAN.values()))


async def start_campaign(api: httpx.AsyncClient, pacing: dict[str, Any]) -> str:
    """The agent, its number, the workspace's limit, the campaign and its prospects:
    the campaign's id (it runs from the hopper's next tick)."""
    agent = await api.post("/api/v1/agents", json=AGENT)
    assert agent.status_code == 201, agent.text
    agent_id = agent.json()["id"]
    number = await api.post(
        "/api/v1/numbers", json={"number": FROM, "carrier": "simulator", "agent_id": agent_id}
    )
    assert number.status_code == 201, number.text
    raised = await api.patch("/api/v1/workspace", json={"max_concurrent_calls": WORKSPACE_CALLS})
    assert raised.status_code == 200, raised.text
    created = await api.post("/api/v1/campaigns", json=campaign_body(agent_id, pacing))
    assert created.status_code == 201, created.text
    campaign_id: str = created.json()["id"]
    uploaded = await api.post(
        f"/api/v1/campaigns/{campaign_id}/prospects",
        files={"file": ("prospects.csv", prospects_csv().encode(), "text/csv")},
    )
    assert uploaded.status_code == 200, uploaded.text
    assert (uploaded.json()["added"], uploaded.json()["row_errors"]) == (PROSPECTS, [])
    return campaign_id


async def campaign_of(api: httpx.AsyncClient, campaign_id: str) -> dict[str, Any]:
    response = await api.get(f"/api/v1/campaigns/{campaign_id}")
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


async def finished(api: httpx.AsyncClient, campaign_id: str) -> bool:
    campaign = await campaign_of(api, campaign_id)
    return campaign["status"] == "completed" and campaign["finished_at"] is not None


async def until_finished(
    api: httpx.AsyncClient, simulator: httpx.AsyncClient, campaign_id: str, *, seconds: float
) -> None:
    """Wait for the campaign to complete; else fail with what it was waiting on."""
    try:
        await wait_until(
            lambda: finished(api, campaign_id), seconds=seconds, what="completion", every=1.0
        )
    except pytest.fail.Exception:
        run = await collect(api, simulator, campaign_id)
        stats = run.campaign["stats"]
        stuck = [p["phone"] for p in run.prospects if p["state"] not in ("final", "expired")]
        rate = stats["abandonment_rate_30d"] or 0.0
        why = (
            f"{stats['abandoned']} of {stats['answered']} answered calls abandoned (the agent"
            " spoke over two seconds after the answer: is the machine loaded?), so pacing is"
            " down to one call at a time; "
            if rate >= run.campaign["abandon_target"]
            else ""
        )
        pytest.fail(
            f"the campaign did not complete within {seconds} s: {why}{stats};"
            f" {len(stuck)} prospects open, e.g.\n{explain(run, stuck)}"
        )


async def final_count(api: httpx.AsyncClient, campaign_id: str) -> int:
    found: int = (await campaign_of(api, campaign_id))["stats"]["by_state"]["final"]
    return found


async def _pages(api: httpx.AsyncClient, path: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    after: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 200, **({"after": after} if after else {})}
        response = await api.get(path, params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        rows += page["data"]
        after = page.get("next_after")
        if not page["data"] or not after:
            return rows


@dataclass
class Run:
    """What one run left: the API's prospects and calls, and the simulator's own log."""

    campaign: dict[str, Any]
    prospects: list[dict[str, Any]]
    calls: list[dict[str, Any]]
    dialled: list[dict[str, Any]]  # GET /simulator/calls: every call the carrier was asked for


async def collect(api: httpx.AsyncClient, simulator: httpx.AsyncClient, campaign_id: str) -> Run:
    campaign = await campaign_of(api, campaign_id)
    prospects = await _pages(api, f"/api/v1/campaigns/{campaign_id}/prospects")
    calls = await _pages(api, "/api/v1/calls")
    dialled = (await simulator.get("/simulator/calls")).json()
    return Run(campaign, prospects, calls, [c for c in dialled if c["to"] in PLAN])


@dataclass(frozen=True)
class Ending:
    """How one prospect must end: its disposition, its calls' statuses in order (one per
    attempt), and how many of them reached the carrier."""

    disposition: str
    call_statuses: list[str]
    carrier_dials: int


def ending(expected: Expected, cut_at: int | None = None) -> Ending:
    """The plan's ending for a prospect, or, when a crash cut short the placing of its
    attempt ``cut_at``, the one the dialer gives it then: the carrier may or may not have
    been asked, so it is never asked again, and the call ends ``failed``
    (``placement_interrupted``) once it has stalled for a minute; this campaign makes
    ``failed`` final. The attempts before it went as planned."""
    if cut_at is None:
        return Ending(expected.disposition, expected.call_statuses, expected.attempts)
    return Ending("failed", [*expected.call_statuses[: cut_at - 1], "failed"], cut_at - 1)


def calls_by_number(run: Run) -> dict[str, list[dict[str, Any]]]:
    """Our records of the plan's calls, each number's in the order they were made."""
    by_number: dict[str, list[dict[str, Any]]] = defaultdict(list)
    calls = [c for c in run.calls if c["to_number"] in PLAN]
    for call in sorted(calls, key=lambda c: (c["created_at"], c["id"])):
        by_number[call["to_number"]].append(call)
    return by_number


def cut_short(run: Run) -> dict[str, int]:
    """The numbers whose placing a crash cut short, with that attempt (see ``ending``)."""
    return {
        number: attempt
        for number, made in calls_by_number(run).items()
        for attempt, call in enumerate(made, start=1)
        if call["end_reason"] == STALLED_REASON
    }


def explain(run: Run, numbers: Iterable[str]) -> str:
    """What our records and the simulator's say of a few of ``numbers``, for a failure."""
    lines = []
    for number in list(numbers)[:5]:
        ours = [(c["status"], c["end_reason"]) for c in calls_by_number(run).get(number, [])]
        theirs = [
            (c["posted"], c["callback_errors"], c["callee"])
            for c in run.dialled
            if c["to"] == number
        ]
        lines.append(f"{number}: planned {PLAN[number].sequence}; ours {ours}; carrier {theirs}")
    return "\n".join(lines)


def check(run: Run, *, crashed: bool = False) -> dict[str, str]:
    """Assert the run ended as planned; each prospect's disposition, by number.

    ``crashed``: a worker was killed mid-run, and the attempts whose placing it cut short
    (at most one per job it was running) end as ``ending`` says.
    """
    assert run.campaign["status"] == "completed", run.campaign
    prospects = {p["phone"]: p for p in run.prospects}
    assert len(run.prospects) == len(prospects) == PROSPECTS
    states = Counter(p["state"] for p in run.prospects)
    assert states == {"final": PROSPECTS}, states
    by_number = calls_by_number(run)
    calls = [c for made in by_number.values() for c in made]
    assert len(calls) == len({c["id"] for c in calls})
    cut = cut_short(run)
    assert len(cut) <= (JOBS_AT_ONCE if crashed else 0), cut
    endings = {number: ending(e, cut.get(number)) for number, e in PLAN.items()}
    wrong = {
        number: (p["disposition"], p["attempts"])
        for number, p in prospects.items()
        if (p["disposition"], p["attempts"])
        != (endings[number].disposition, len(endings[number].call_statuses))
    }
    some = dict(list(wrong.items())[:5])
    assert not wrong, f"{len(wrong)} prospects off plan: {some}\n{explain(run, wrong)}"
    # One call per (prospect, attempt), with the planned outcomes in order; the prospect
    # names its last one.
    off = {
        number: [c["status"] for c in by_number[number]]
        for number, end in endings.items()
        if [c["status"] for c in by_number[number]] != end.call_statuses
    }
    assert not off, f"{len(off)} numbers' calls off plan\n{explain(run, off)}"
    assert all(prospects[n]["call_id"] == made[-1]["id"] for n, made in by_number.items())
    # The carrier's side: each number asked for exactly its dials, never one more.
    asked = Counter(c["to"] for c in run.dialled)
    extra = {n: asked[n] for n, end in endings.items() if asked[n] != end.carrier_dials}
    assert not extra, f"{len(extra)} numbers dialled off plan\n{explain(run, extra)}"
    stats = run.campaign["stats"]
    answered = sum(end.call_statuses.count("completed") for end in endings.values())
    assert (stats["dialed"], stats["answered"]) == (len(calls), answered)
    dispositions = Counter(end.disposition for end in endings.values())
    assert stats["by_disposition"] == dict(sorted(dispositions.items()))
    return {number: p["disposition"] for number, p in prospects.items()}
