"""The call-latency benchmark's measurements, on recorded calls: no Switchboard server needed."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from switchboard.agents.schema import AgentConfig
from switchboard.caller.conversation import (
    AgentReply,
    Answer,
    CallReport,
    ConversationSettings,
    RenderedLine,
    TurnReport,
)
from switchboard.caller.media_client import SentLine
from switchboard.caller.twilio_messages import StreamIdentity
from tests.caller.fake_twilio_app import FakeTwilioApp, Script, serving, tone

BENCH_FILE = Path(__file__).parents[2] / "bench" / "call_latency.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_call_latency", BENCH_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def runtime_config(body: dict[str, object]) -> dict[str, object]:
    """What ``GET /agents/{id}/runtime-config`` returns for an agent created with ``body``."""
    config = AgentConfig.model_validate(body).model_dump(mode="json")
    return {"agent_id": "ag_1", "workspace_id": "ws_1", "version": 1, "config": config}


def report(*turns: tuple[float, AgentReply | None]) -> CallReport:
    """A call whose turn n ended its line at ``end`` and got ``reply``."""
    return CallReport(
        answer=Answer("ws://h/media/simulator/call_1", {}),
        identity=StreamIdentity(),
        started_at=0.0,
        ended_at=100.0,
        hung_up_by="caller",
        greeting=None,
        turns=[
            TurnReport(n, f"line {n}", SentLine(end - 1, end, 1.0), reply)
            for n, (end, reply) in enumerate(turns, start=1)
        ],
    )


def reply(at: float, *gaps: float, seconds: float = 2.0) -> AgentReply:
    return AgentReply(at, seconds, gaps, finished=True, cleared=False)


def test_percentile_is_nearest_rank(bench: ModuleType) -> None:
    assert bench.percentile([], 50) is None
    assert bench.percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert bench.percentile([float(n) for n in range(1, 11)], 90) == 9.0
    assert bench.first_sentence_tokens("Sure, I can help you with that. Anything else?") == 7


def test_the_fake_agents_budget_comes_from_its_runtime_config(bench: ModuleType) -> None:
    body = bench.fake_agent(["hello"], "vad")
    budget = bench.budget_from_runtime_config(runtime_config(body))
    assert budget.providers_known
    assert (budget.vad_stop_s, budget.stt_s, budget.llm_ttft_s, budget.tts_ttfb_s) == (
        0.8,
        0.15,
        0.3,
        0.15,
    )
    # 0.8 VAD + 0.15 STT + 0.3 TTFT + 6 more words at 50/s + 0.15 TTFB
    assert budget.seconds("Sure, I can help you with that.") == pytest.approx(1.52)


def test_the_embedded_agents_providers_are_not_subtracted(bench: ModuleType) -> None:
    budget = bench.budget_from_runtime_config(runtime_config(bench.EMBEDDED_AGENT))
    assert not budget.providers_known
    [sample] = bench.turn_samples(report((10.0, reply(11.5))), "embedded", budget)
    assert sample.v2v_s == pytest.approx(1.5)
    assert sample.platform_s is None


def test_a_blip_as_the_agent_hangs_up_is_not_a_reply(bench: ModuleType) -> None:
    budget = bench.ProviderBudget(0.8)
    [sample] = bench.turn_samples(report((10.0, reply(16.8, seconds=0.001))), "e", budget)
    assert sample.v2v_s is None


def test_turns_become_samples_and_a_summary(bench: ModuleType) -> None:
    budget = bench.ProviderBudget(0.8, 0.15, 0.3, 50, 0.15, providers_known=True)
    replies = ("One two three four five six seven.", "Okay.")
    call = report(
        (10.0, reply(11.62, 40.0)), (20.0, reply(21.5)), (30.0, None), (40.0, reply(41.3))
    )
    samples = bench.turn_samples(call, "fake", budget, replies)
    assert [s.v2v_s for s in samples] == pytest.approx([1.62, 1.5, None, 1.3], abs=1e-9)
    # turn 1: 1.62 - (1.4 + 6/50); turns 2 and 4: reply 2 ("Okay.", one word), the last repeats
    platform_share = [s.platform_s for s in samples]
    assert platform_share[0] == pytest.approx(0.1)
    assert platform_share[1] == pytest.approx(0.1)
    assert platform_share[2] is None
    assert platform_share[3] == pytest.approx(-0.1)
    row = bench.summarize("fake", 2, [call], samples)
    assert (row["calls"], row["failed_calls"], row["agent_hung_up"]) == (2, 1, 0)
    assert row["turns"] == 4 and row["no_reply"] == 1
    assert (row["v2v_p50_ms"], row["v2v_p90_ms"]) == (1500, 1620)
    assert (row["turns_with_gaps"], row["gaps"], row["gap_total_ms"], row["gap_max_ms"]) == (
        1,
        1,
        40,
        40,
    )


async def test_concurrent_calls_each_get_a_report(bench: ModuleType) -> None:
    app = FakeTwilioApp(Script(greeting_seconds=0.1, reply_delay=0.05, reply_seconds=0.1))
    settings = ConversationSettings(reply_timeout=3, greeting_timeout=3, speech_gap=0.1)
    lines = [RenderedLine("hello", await tone(0.2))]
    async with serving(app) as server:
        reports = await bench.calls(server, "+15550199", lines, 3, True, settings)
    assert sorted(r.call_id for r in reports) == ["call-1", "call-2", "call-3"]
    assert all(r.turns[0].voice_to_voice == pytest.approx(0.05, abs=0.03) for r in reports)


def test_preferred_utterances_come_first(bench: ModuleType) -> None:
    items = bench.utterances(("opening_hours.wav", "cancel_order.wav"))
    assert [path.name for path, _ in items[:2]] == ["opening_hours.wav", "cancel_order.wav"]
    assert items[0][1] == "What are your opening hours?"
    assert all(path.is_file() for path, _ in items)
