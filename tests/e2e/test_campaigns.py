"""Campaigns end to end, offline: prospects uploaded to the API, dialled by the hopper's tick
through the simulator's carrier API, the agent's dispositions and callbacks, an opt-out,
an abandoned call, and a campaign paused, resumed and stopped.

The prospects are UK drama numbers (``+447700900...``): no legal calling-hours floor is
encoded for them and ``phonenumbers`` places them in no zone, so their clock is the
campaign's ``default_timezone``, and with hours open all day every day no test depends on
the time it runs at.

SQLite only: the API and storage are covered on both databases by
``tests/integration/test_campaigns_api.py``.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from switchboard.db.models import Call, CallStatus, Campaign
from tests.conftest import wait_until
from tests.e2e.live import LiveServer, events_of, fake_agent
from tests.e2e.test_dnc_dialing import dialled_numbers
from tests.e2e.test_opt_out import dnc_entries
from tests.e2e.test_outbound import FROM, callee, caller

LONDON = "+447700900"
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ALL_DAY = {"weekly": {day: [{"start": "00:00", "end": "24:00"}] for day in WEEKDAYS}}
QUICK = {"ring_seconds": 0.02}


def phone(n: int) -> str:
    return f"{LONDON}{n:03d}"


def replies_setting(*replies: dict[str, Any], ttft_ms: int = 100) -> dict[str, Any]:
    return {"provider": "fake", "options": {"replies": list(replies), "ttft_ms": ttft_ms}}


def disposition(name: str, text: str = "Noted.") -> dict[str, Any]:
    """A reply that records ``name`` (the tool's result then asks for the next reply)."""
    return {
        "text": text,
        "tool_calls": [{"name": "set_disposition", "arguments": {"disposition": name}}],
    }


GOODBYE = {"text": "Goodbye!", "tool_calls": [{"name": "end_call"}]}
PITCH = {"greeting": "Hi, this is the clinic. Would you like our new plan?"}


async def new_campaign(server: LiveServer, agent_id: str, **fields: Any) -> dict[str, Any]:
    body = {
        "agent_id": agent_id,
        "name": "Renewals",
        "hours": ALL_DAY,
        "default_timezone": "Europe/London",
        "machine_detection": "off",
        "min_gap_seconds": 0,
        "max_concurrent": 4,
        "calls_per_second": 5,
        **fields,
    }
    async with caller(server) as http:
        response = await http.post("/api/v1/campaigns", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    assert created["status"] == "running"
    return created


async def upload_prospects(server: LiveServer, campaign_id: str, csv_text: str) -> dict[str, Any]:
    async with caller(server) as http:
        response = await http.post(
            f"/api/v1/campaigns/{campaign_id}/prospects",
            files={"file": ("prospects.csv", csv_text.encode(), "text/csv")},
        )
    assert response.status_code == 200, response.text
    done: dict[str, Any] = response.json()
    assert done["row_errors"] == []
    return done


async def campaign_of(server: LiveServer, campaign_id: str) -> dict[str, Any]:
    async with caller(server) as http:
        response = await http.get(f"/api/v1/campaigns/{campaign_id}")
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


async def stats_of(server: LiveServer, campaign_id: str) -> dict[str, Any]:
    async with caller(server) as http:
        response = await http.get(f"/api/v1/campaigns/{campaign_id}/stats")
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


async def prospects_of(server: LiveServer, campaign_id: str) -> dict[str, dict[str, Any]]:
    """The campaign's prospects by phone number, as the API lists them."""
    async with caller(server) as http:
        response = await http.get(f"/api/v1/campaigns/{campaign_id}/prospects")
    assert response.status_code == 200, response.text
    return {p["phone"]: p for p in response.json()["data"]}


async def steer(server: LiveServer, campaign_id: str, action: str) -> dict[str, Any]:
    async with caller(server) as http:
        response = await http.post(f"/api/v1/campaigns/{campaign_id}/{action}")
    assert response.status_code == 200, response.text
    moved: dict[str, Any] = response.json()
    return moved


async def finished(server: LiveServer, campaign_id: str, seconds: float = 60) -> dict[str, Any]:
    """The campaign once the hopper has finished it (completed, or stopped and settled)."""

    async def done() -> bool:
        return (await campaign_of(server, campaign_id))["finished_at"] is not None

    await wait_until(done, seconds=seconds, what=f"campaign {campaign_id} finishing", every=0.25)
    return await campaign_of(server, campaign_id)


async def campaign_calls(server: LiveServer, campaign_id: str) -> list[Call]:
    """The campaign's calls, oldest first."""
    async with server.services.sessions() as session:
        found = await session.scalars(
            select(Call).where(Call.campaign_id == campaign_id).order_by(Call.created_at)
        )
        return list(found)


def to(calls: list[Call], number: str) -> list[Call]:
    return [c for c in calls if c.to_number == number]


async def test_each_prospect_ends_with_the_disposition_its_calls_came_to(
    server: LiveServer,
) -> None:
    agent_id = await server.agent(
        FROM,
        **fake_agent(
            ["yes please"],
            [disposition("interested", "Wonderful, noted."), GOODBYE],
            outbound=PITCH,
        ),
    )
    keen, busy_first, away, silent = phone(101), phone(102), phone(103), phone(104)
    await callee(server, keen, outcomes=[{"outcome": "answer", **QUICK}], script=["Yes, please."])
    await callee(
        server,
        busy_first,
        sequence=["busy", "answer"],
        outcomes=[{"outcome": "answer", **QUICK}, {"outcome": "busy", **QUICK}],
        script=["Yes, please."],
    )
    await callee(server, away, outcomes=[{"outcome": "no_answer", **QUICK}])
    await callee(server, silent, outcomes=[{"outcome": "answer", **QUICK}], script=[])
    campaign = await new_campaign(server, agent_id, max_attempts=3, min_gap_seconds=2)
    uploaded = await upload_prospects(
        server,
        campaign["id"],
        "phone,name\n"
        + "".join(f"{number},P{n}\n" for n, number in enumerate((keen, busy_first, away, silent))),
    )
    assert (uploaded["rows"], uploaded["added"], uploaded["on_dnc"]) == (4, 4, 0)

    done = await finished(server, campaign["id"])
    assert done["status"] == "completed"
    prospects = await prospects_of(server, campaign["id"])
    summary = {
        p["phone"]: (p["state"], p["disposition"], p["attempts"]) for p in prospects.values()
    }
    assert summary == {
        keen: ("final", "interested", 1),
        busy_first: ("final", "interested", 2),
        away: ("final", "no_answer", 3),
        silent: ("final", "completed", 1),
    }
    calls = await campaign_calls(server, campaign["id"])
    assert [c.status for c in to(calls, busy_first)] == [CallStatus.BUSY, CallStatus.COMPLETED]
    assert [c.status for c in to(calls, away)] == [CallStatus.NO_ANSWER] * 3
    # Each retry waited the campaign's minimum gap after the attempt before it ended.
    for number in (busy_first, away):
        tries = to(calls, number)
        for before, after in itertools.pairwise(tries):
            assert before.ended_at is not None
            assert after.created_at - before.ended_at >= timedelta(seconds=2)
    assert prospects[keen]["call_id"] == to(calls, keen)[0].id
    stats = done["stats"]
    assert stats == await stats_of(server, campaign["id"])
    assert (stats["prospects"], stats["dialed"], stats["answered"]) == (4, 7, 3)
    # Whether an answered call was abandoned is the next test's (here the simulated callee
    # shares the server's CPU, so a greeting may start late on a busy machine).
    assert stats["machine"] == 0
    assert stats["abandoned"] == sum(bool(c.abandoned) for c in calls)
    assert stats["by_state"] == {"pending": 0, "dialing": 0, "final": 4, "expired": 0, "dnc": 0}
    assert stats["by_disposition"] == {"completed": 1, "interested": 2, "no_answer": 1}
    assert stats["answered_30d"] == 3
    assert sorted(await dialled_numbers(server)) == sorted(c.to_number for c in calls)
    assert await server.services.slots.in_use(server.workspace_id) == 0


async def test_a_callback_is_dialled_at_the_booked_time_on_the_prospects_clock(
    server: LiveServer,
) -> None:
    # Kolkata (UTC+05:30, no daylight saving) tells a naive time read on the prospect's clock
    # from one read in UTC or London, whatever the date.
    zone = ZoneInfo("Asia/Kolkata")
    # Far enough ahead for the first call to end before it (it takes about 5 s), so that the
    # second call shows the hopper waiting for the time, not redialling at once.
    booked_local = (datetime.now(zone) + timedelta(seconds=16)).replace(tzinfo=None, microsecond=0)
    booked = booked_local.replace(tzinfo=zone).astimezone(UTC)
    book = {"name": "schedule_callback", "arguments": {"at": booked_local.isoformat()}}
    agent_id = await server.agent(
        FROM,
        **fake_agent(
            ["call me later"],
            [{"text": "", "tool_calls": [book]}, GOODBYE],
            outbound={"greeting": "Hi, it's the clinic."},
        ),
    )
    number = phone(201)
    await callee(
        server, number, outcomes=[{"outcome": "answer", **QUICK}], script=["Call me later."]
    )
    campaign = await new_campaign(server, agent_id, max_attempts=3)
    await upload_prospects(server, campaign["id"], f"phone,timezone\n{number},Asia/Kolkata\n")

    async def first_settled() -> bool:
        prospect = (await prospects_of(server, campaign["id"]))[number]
        attempts: int = prospect["attempts"]
        return attempts > 1 or (attempts == 1 and prospect["state"] != "dialing")

    await wait_until(first_settled, seconds=30, what="the first call being settled", every=0.2)
    first, *_ = await campaign_calls(server, campaign["id"])
    assert first.ended_at is not None and first.ended_at < booked, "the call outlasted the margin"
    prospect = (await prospects_of(server, campaign["id"]))[number]
    assert (prospect["state"], prospect["disposition"], prospect["attempts"]) == (
        "pending",
        "callback",
        1,
    )
    assert datetime.fromisoformat(prospect["next_due_at"]) == booked
    assert first.status is CallStatus.COMPLETED
    results: list[dict[str, Any]] = [
        data for name, data in await events_of(server, first) if name == "tool_result"
    ]
    assert [(r["name"], r["status"]) for r in results] == [
        ("schedule_callback", "ok"),
        ("end_call", "ok"),
    ]
    assert results[0]["result"]["at"].endswith(booked_local.strftime("%H:%M IST"))

    # The next call's agent hears a yes: the second call's disposition ends the prospect.
    async with caller(server) as http:
        changed = await http.patch(
            f"/api/v1/agents/{agent_id}",
            json={"llm": replies_setting(disposition("interested"), GOODBYE)},
        )
    assert changed.status_code == 200, changed.text

    done = await finished(server, campaign["id"], seconds=40)
    assert done["status"] == "completed"
    prospect = (await prospects_of(server, campaign["id"]))[number]
    assert (prospect["state"], prospect["disposition"], prospect["attempts"]) == (
        "final",
        "interested",
        2,
    )
    first, second = await campaign_calls(server, campaign["id"])
    assert second.created_at >= booked and second.placed_at is not None
    assert second.placed_at >= booked
    assert second.status is CallStatus.COMPLETED and prospect["call_id"] == second.id
    assert done["stats"]["by_disposition"] == {"interested": 1}
    assert (done["stats"]["dialed"], done["stats"]["answered"]) == (2, 2)
    assert (await dialled_numbers(server)).count(number) == 2


async def test_a_prospect_who_opts_out_is_listed_and_never_dialled_again(
    server: LiveServer,
) -> None:
    agent_id = await server.agent(
        FROM,
        **fake_agent(
            ["please don't call me again"],
            [{"text": "", "tool_calls": [{"name": "opt_out"}]}],
            outbound={"greeting": "Hi, it's the clinic."},
        ),
    )
    number = phone(301)
    await callee(
        server,
        number,
        outcomes=[{"outcome": "answer", **QUICK}],
        script=["Please don't call me again."],
    )
    campaign = await new_campaign(server, agent_id, max_attempts=3)
    await upload_prospects(server, campaign["id"], f"phone\n{number}\n")

    done = await finished(server, campaign["id"])
    assert done["status"] == "completed"
    (call,) = await campaign_calls(server, campaign["id"])
    assert (call.status, call.end_reason) == (CallStatus.COMPLETED, "opted_out")
    prospect = (await prospects_of(server, campaign["id"]))[number]
    assert (prospect["state"], prospect["disposition"], prospect["attempts"]) == (
        "dnc",
        "do_not_call",
        1,
    )
    # Listed for the whole workspace, by the call, once: not again by the campaign.
    (entry,) = await dnc_entries(server, number)
    assert (entry["scope"], entry["source"], entry["call_id"]) == ("workspace", "opt_out", call.id)
    stats = done["stats"]
    assert stats["by_state"]["dnc"] == 1 and stats["by_disposition"] == {"do_not_call": 1}
    assert (stats["dialed"], stats["answered"]) == (1, 1)

    # Another campaign may not dial the number either: it is set aside at upload.
    await callee(server, phone(302), outcomes=[{"outcome": "busy", **QUICK}])
    other = await new_campaign(server, agent_id, name="Winback", max_attempts=1)
    uploaded = await upload_prospects(server, other["id"], f"phone\n{number}\n{phone(302)}\n")
    assert (uploaded["added"], uploaded["on_dnc"]) == (2, 1)
    listed = (await prospects_of(server, other["id"]))[number]
    assert (listed["state"], listed["disposition"], listed["attempts"]) == ("dnc", "do_not_call", 0)
    await finished(server, other["id"], seconds=30)
    assert (await dialled_numbers(server)).count(number) == 1
    assert [c.to_number for c in await campaign_calls(server, other["id"])] == [phone(302)]


async def test_an_answered_call_the_agent_is_slow_to_speak_to_is_abandoned(
    server: LiveServer,
) -> None:
    # No greeting of its own: the agent waits for the callee, then takes 3 s to answer.
    slow = fake_agent(
        ["hello"],
        [{"text": "Sorry to keep you. Goodbye!", "tool_calls": [{"name": "end_call"}]}],
        greeting="",
        outbound={"first_speaker": "callee"},
    )
    slow["llm"]["options"]["ttft_ms"] = 3000
    agent_id = await server.agent(FROM, **slow)
    number = phone(401)
    await callee(
        server,
        number,
        outcomes=[{"outcome": "answer", **QUICK}],
        script=["Hello?"],
        greeting_wait_seconds=0.5,
    )
    campaign = await new_campaign(server, agent_id, max_attempts=1)
    await upload_prospects(server, campaign["id"], f"phone\n{number}\n")

    done = await finished(server, campaign["id"])
    (call,) = await campaign_calls(server, campaign["id"])
    assert call.status is CallStatus.COMPLETED and call.abandoned is True
    events: list[tuple[str, dict[str, Any]]] = await events_of(server, call)
    names = [name for name, _ in events]
    assert names.index("user_spoke") < names.index("latency") < names.index("agent_spoke")
    # The callee's "Hello?" went unanswered for the LLM's 3 s (and the end of turn before it).
    (latency,) = [data for name, data in events if name == "latency"]
    assert latency["voice_to_voice_ms"] > 3000
    stats = done["stats"]
    assert (stats["dialed"], stats["answered"], stats["abandoned"]) == (1, 1, 1)
    assert (stats["answered_30d"], stats["abandoned_30d"]) == (1, 1)
    assert stats["abandonment_rate_30d"] == 1.0


async def hopper_ticks(server: LiveServer, witness_id: str, count: int) -> None:
    """Wait for ``count`` whole hopper ticks that began after this call, seen on ``witness_id``:
    an empty running campaign, whose pacing bucket each tick stamps with its time.

    Ticks never overlap, and each runs every campaign in turn. The first stamp read may be
    an old one, and the next one's tick may have read the campaigns before this call; each
    later stamp is a tick that began after the one before it had ended.
    """
    seen: set[str] = set()

    async def ticked() -> bool:
        async with server.services.sessions() as session:
            found = await session.get(Campaign, witness_id, populate_existing=True)
            assert found is not None
            stamp = (found.pacing or {}).get("at")
        if stamp is not None:
            seen.add(stamp)
        return len(seen) >= count + 2

    await wait_until(ticked, seconds=15, what=f"{count} hopper ticks", every=0.05)


async def test_a_paused_campaign_dials_nobody_until_resumed_and_a_stopped_one_nobody_more(
    server: LiveServer,
) -> None:
    agent_id = await server.agent(FROM, **fake_agent(["hello"], [GOODBYE]))
    # Dialled in order of priority, one at a time; the first two ring for 3 s, then are busy:
    # long enough to steer the campaign while each rings.
    numbers = [phone(n) for n in range(501, 505)]
    for number in numbers[:2]:
        await callee(server, number, outcomes=[{"outcome": "busy", "ring_seconds": 3}])
    await callee(server, "*", outcomes=[{"outcome": "busy", **QUICK}])
    campaign = await new_campaign(server, agent_id, max_attempts=1, max_concurrent=1)
    witness = await new_campaign(server, agent_id, name="Witness")
    paused = await steer(server, campaign["id"], "pause")
    assert paused["status"] == "paused"
    rows = "".join(f"{number},{10 - n}\n" for n, number in enumerate(numbers))
    await upload_prospects(server, campaign["id"], "phone,priority\n" + rows)

    await hopper_ticks(server, witness["id"], 2)
    assert await campaign_calls(server, campaign["id"]) == []
    assert await dialled_numbers(server) == []
    assert {p["state"] for p in (await prospects_of(server, campaign["id"])).values()} == {
        "pending"
    }

    # Resumed, it dials one at a time; paused during a call, that call ends and is settled
    # but nobody else is dialled.
    assert (await steer(server, campaign["id"], "resume"))["status"] == "running"

    async def dialling() -> bool:
        return any(
            p["state"] == "dialing" for p in (await prospects_of(server, campaign["id"])).values()
        )

    await wait_until(dialling, seconds=15, what="a prospect being dialled", every=0.1)
    await steer(server, campaign["id"], "pause")

    async def settled() -> bool:
        states = [p["state"] for p in (await prospects_of(server, campaign["id"])).values()]
        return sorted(states) == ["final", "pending", "pending", "pending"]

    await wait_until(settled, seconds=15, what="the live call being settled", every=0.1)
    await hopper_ticks(server, witness["id"], 2)
    (first,) = await campaign_calls(server, campaign["id"])
    assert (first.to_number, first.status) == (numbers[0], CallStatus.BUSY)
    assert await dialled_numbers(server) == [numbers[0]]

    # Resumed again, then stopped while its next call rings: that call is settled, the
    # campaign finished (the hopper never ticks it again), and the two left never dialled.
    await steer(server, campaign["id"], "resume")
    await wait_until(dialling, seconds=15, what="the next prospect being dialled", every=0.1)
    stopped = await steer(server, campaign["id"], "stop")
    assert stopped["status"] == "stopped"
    done = await finished(server, campaign["id"], seconds=20)
    assert done["status"] == "stopped"
    calls = await campaign_calls(server, campaign["id"])
    assert [(c.to_number, c.status) for c in calls] == [
        (numbers[0], CallStatus.BUSY),
        (numbers[1], CallStatus.BUSY),
    ]
    assert await dialled_numbers(server) == numbers[:2]
    prospects = await prospects_of(server, campaign["id"])
    assert [(prospects[n]["state"], prospects[n]["attempts"]) for n in numbers] == [
        ("final", 1),
        ("final", 1),
        ("pending", 0),
        ("pending", 0),
    ]
    assert prospects[numbers[2]]["call_id"] is None and prospects[numbers[3]]["call_id"] is None
    assert (done["stats"]["dialed"], done["stats"]["by_state"]["pending"]) == (2, 2)
    async with caller(server) as http:
        again = await http.post(f"/api/v1/campaigns/{campaign['id']}/resume")
    assert again.status_code == 409, again.text
