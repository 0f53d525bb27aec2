"""Answering-machine detection as a call runs it: synthesized greetings in 20 ms Pipecat frames.

The greetings come from the labelled set (``machine_detection.corpus``),
rendered once per session by the embedded Piper voice through the 8 kHz
µ-law line. Frames go in faster than real time: the detector counts audio
time, so its verdicts do not depend on how fast the test machine is.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pytest
from pipecat.frames.frames import (
    Frame,
    InputAudioRawFrame,
    InterruptionFrame,
    TTSAudioRawFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams
from pipecat.processors.frame_processor import FrameProcessor
from pipecat.tests.utils import SleepFrame, run_test

from switchboard.providers.phone_line import (
    PHONE_SAMPLE_RATE,
    decode_phone_line,
    encode_phone_line,
)
from switchboard.voice.machine_detection import (
    AnsweredBy,
    Decision,
    GreetingEnd,
    MachineDetectionParams,
    MachineDetector,
    MachineMuteStrategy,
    answered_by,
)
from switchboard.voice.machine_detection.block_features import BlockAnalyzer, BlockKind
from switchboard.voice.machine_detection.corpus import (
    BY_NAME,
    GREETINGS,
    RenderedGreeting,
    load_or_render,
)
from switchboard.voice.machine_detection.greeting import Block, GreetingAnalyzer

PARAMS = MachineDetectionParams()
SAMPLES = ("garcia_family", "dental_closed", "hello")
START_TIMEOUT_SECS = 30.0


@pytest.fixture(scope="session")
def greetings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, RenderedGreeting]:
    """A machine with a beep, a machine without one and a short "Hello?", rendered once."""
    cache = tmp_path_factory.mktemp("greetings")
    rendered = asyncio.run(load_or_render([BY_NAME[name] for name in SAMPLES], cache))
    return {r.greeting.name: r for r in rendered}


@dataclass
class Heard:
    """What the detector announced, and the frames that came out of it."""

    decisions: list[tuple[AnsweredBy, float, float]] = field(default_factory=list)
    greeting_ends: list[tuple[float, str]] = field(default_factory=list)
    down: Sequence[Frame] = ()


def frames_of(pcm: bytes, sample_rate: int = PHONE_SAMPLE_RATE) -> list[Frame]:
    """16-bit PCM as a transport sends it: 20 ms ``InputAudioRawFrame``s."""
    size = sample_rate // 50 * 2
    return [InputAudioRawFrame(pcm[i : i + size], sample_rate, 1) for i in range(0, len(pcm), size)]


def silence(seconds: float, sample_rate: int = PHONE_SAMPLE_RATE) -> bytes:
    return bytes(2 * round(seconds * sample_rate))


async def detect(
    frames: Sequence[Frame],
    detector: MachineDetector | None = None,
    *,
    processor: FrameProcessor | None = None,
    sample_rate: int = PHONE_SAMPLE_RATE,
) -> tuple[MachineDetector, Heard]:
    """Run the detector (or ``processor``, a pipeline holding it) over ``frames``."""
    detector = detector or MachineDetector()
    heard = Heard()

    async def on_decision(_d: MachineDetector, result: AnsweredBy, conf: float, at: float) -> None:
        heard.decisions.append((result, conf, at))

    async def on_greeting_end(_d: MachineDetector, at: float, cue: str) -> None:
        heard.greeting_ends.append((at, cue))

    detector.add_event_handler("on_decision", on_decision)
    detector.add_event_handler("on_greeting_end", on_greeting_end)
    params = PipelineParams(audio_in_sample_rate=sample_rate, audio_out_sample_rate=sample_rate)
    heard.down, _ = await run_test(
        processor or detector,
        frames_to_send=frames,
        pipeline_params=params,
        start_timeout=START_TIMEOUT_SECS,
    )
    return detector, heard


# ---- the three cases a call meets ------------------------------------------------------


async def test_machine_greeting_with_a_beep_is_a_machine_whose_greeting_ends_after_the_beep(
    greetings: dict[str, RenderedGreeting],
) -> None:
    machine = greetings["garcia_family"]
    assert machine.greeting_end is not None
    detector, heard = await detect(frames_of(machine.pcm))

    [(result, confidence, after)] = heard.decisions
    assert result is AnsweredBy.MACHINE and confidence > 0.5
    assert after <= PARAMS.decision_deadline
    [(ended, cue)] = heard.greeting_ends
    assert cue == "beep"
    assert machine.greeting_end <= ended <= machine.greeting_end + 0.3
    assert answered_by(detector.decision, detector.greeting_end) == "machine_end_beep"
    # Every frame passed through, unchanged and in order.
    audio = [f for f in heard.down if isinstance(f, InputAudioRawFrame)]
    assert b"".join(f.audio for f in audio) == machine.pcm


async def test_a_short_hello_then_silence_is_a_person_within_the_bound(
    greetings: dict[str, RenderedGreeting],
) -> None:
    hello = greetings["hello"]
    assert hello.speech_start is not None
    detector, heard = await detect(frames_of(hello.pcm))

    [(result, confidence, after)] = heard.decisions
    assert result is AnsweredBy.HUMAN and confidence > 0.5
    # "Hello?" is shorter than half a second: the verdict follows its silence.
    assert hello.speech_start + PARAMS.human_silence <= after
    assert after <= hello.speech_start + 0.5 + PARAMS.human_silence + 0.1
    assert heard.greeting_ends == []
    assert not detector.listening


async def test_silence_only_is_unknown_at_the_deadline() -> None:
    detector, heard = await detect(frames_of(silence(PARAMS.decision_deadline + 2)))

    [(result, confidence, after)] = heard.decisions
    assert result is AnsweredBy.UNKNOWN and confidence == 0.0
    assert after == pytest.approx(PARAMS.decision_deadline, abs=0.021)
    assert detector.decision is not None and detector.decision.reason == "deadline"
    assert answered_by(detector.decision) == "unknown"


async def test_machine_greeting_without_a_beep_ends_after_its_silence(
    greetings: dict[str, RenderedGreeting],
) -> None:
    machine = greetings["dental_closed"]
    assert machine.greeting_end is not None
    _, heard = await detect(frames_of(machine.pcm))

    assert [d[0] for d in heard.decisions] == [AnsweredBy.MACHINE]
    [(ended, cue)] = heard.greeting_ends
    assert cue == "silence"
    expected = machine.greeting_end + PARAMS.greeting_end_silence
    assert ended == pytest.approx(expected, abs=0.1)


async def test_the_detector_hears_a_16_khz_line_as_well(
    greetings: dict[str, RenderedGreeting],
) -> None:
    hello = greetings["hello"]
    wide = await decode_phone_line(await encode_phone_line(hello.pcm, PHONE_SAMPLE_RATE), 16000)
    _, heard = await detect(frames_of(wide, 16000), sample_rate=16000)

    assert [d[0] for d in heard.decisions] == [AnsweredBy.HUMAN]


# ---- what the lead wires: the gate, the mute strategy, the guard ------------------------


async def test_the_gate_plays_held_speech_for_a_person_and_drops_it_for_a_machine(
    greetings: dict[str, RenderedGreeting],
) -> None:
    for name, plays in (("hello", True), ("garcia_family", False)):
        detector = MachineDetector()
        speech = TTSAudioRawFrame(silence(0.02), PHONE_SAMPLE_RATE, 1)
        frames = [speech, SleepFrame(0.05), *frames_of(greetings[name].pcm)]
        _, heard = await detect(frames, detector, processor=Pipeline([detector, detector.gate()]))
        assert any(frame is speech for frame in heard.down) is plays, name


async def test_a_machine_verdict_interrupts_what_the_agent_was_about_to_say(
    greetings: dict[str, RenderedGreeting],
) -> None:
    for name, interrupts in (("hello", False), ("garcia_family", True)):
        _, heard = await detect(frames_of(greetings[name].pcm))
        assert any(isinstance(f, InterruptionFrame) for f in heard.down) is interrupts, name


async def test_the_mute_strategy_mutes_the_callee_from_a_machine_verdict_on(
    greetings: dict[str, RenderedGreeting],
) -> None:
    for name, muted in (("hello", False), ("garcia_family", True)):
        detector = MachineDetector()
        strategy = MachineMuteStrategy(detector)
        assert await strategy.process_frame(InputAudioRawFrame(b"", PHONE_SAMPLE_RATE, 1)) is False
        await detect(frames_of(greetings[name].pcm), detector)
        frame = InputAudioRawFrame(silence(0.02), PHONE_SAMPLE_RATE, 1)
        assert await strategy.process_frame(frame) is muted, name


async def test_when_audio_stops_coming_the_guard_decides_unknown() -> None:
    params = MachineDetectionParams(
        decision_deadline=0.5, max_human_greeting=0.2, human_silence=0.2, max_greeting=5.0
    )
    detector = MachineDetector(params=params, stalled_audio_slack=0.1)
    frames = [*frames_of(silence(0.1)), SleepFrame(2.0)]
    _, heard = await detect(frames, detector)

    [(result, _, after)] = heard.decisions
    assert result is AnsweredBy.UNKNOWN and after == pytest.approx(0.1)
    assert detector.decision is not None and detector.decision.reason == "no_audio"


# ---- the parts beneath ----------------------------------------------------------------


def _tone(hz: float, seconds: float, level: float = 0.3) -> bytes:
    t = np.arange(round(seconds * PHONE_SAMPLE_RATE)) / PHONE_SAMPLE_RATE
    return (level * 32767 * np.sin(2 * np.pi * hz * t)).astype("<i2").tobytes()


def _blocks(pcm: bytes, analyzer: BlockAnalyzer) -> list[Block]:
    size = analyzer.block_samples * 2
    return [analyzer.analyze(pcm[i : i + size]) for i in range(0, len(pcm) - size + 1, size)]


@pytest.mark.parametrize("hz", [440, 1000, 1400, 2000])
def test_a_steady_beep_is_a_tone_at_its_frequency(hz: int) -> None:
    blocks = _blocks(silence(0.1) + _tone(hz, 0.5), BlockAnalyzer(PHONE_SAMPLE_RATE))

    assert all(b.kind is BlockKind.SILENCE for b in blocks[:5])
    assert all(b.kind is BlockKind.TONE for b in blocks[5:])
    assert all(abs((b.tone_hz or 0) - hz) <= 50 for b in blocks[5:])


def test_noise_is_sound_until_the_floor_follows_it_and_never_a_tone() -> None:
    rng = np.random.default_rng(7)
    noise = rng.normal(0, 32768 * 10 ** (-40 / 20), 4 * PHONE_SAMPLE_RATE).astype("<i2")
    blocks = _blocks(silence(1.0) + noise.tobytes(), BlockAnalyzer(PHONE_SAMPLE_RATE))

    assert all(b.kind is not BlockKind.TONE for b in blocks)
    assert blocks[0].kind is BlockKind.SILENCE
    assert blocks[50].kind is BlockKind.SPEECH  # noise on a line that was quiet is sound...
    assert all(b.kind is BlockKind.SILENCE for b in blocks[-50:])  # ...until it is the floor


def test_a_beep_before_any_words_does_not_end_the_greeting() -> None:
    """A carrier intercept opens with tones, then speaks: its message is the greeting."""
    rules = GreetingAnalyzer()
    script = (
        [Block(BlockKind.TONE, -10, 950)] * 16
        + [Block(BlockKind.SPEECH, -20)] * 150
        + [Block(BlockKind.SILENCE, -80)] * 100
    )
    found = [event for block in script if (event := rules.feed(block)) is not None]

    decision, end = found
    assert isinstance(decision, Decision) and decision.reason == "beep"
    assert isinstance(end, GreetingEnd) and end.cue == "silence"
    assert end.after_seconds == pytest.approx(0.32 + 3.0 + PARAMS.greeting_end_silence)


def test_params_leave_room_for_a_whole_human_greeting() -> None:
    with pytest.raises(ValueError, match="decision_deadline"):
        MachineDetectionParams(decision_deadline=2.5, max_human_greeting=2.0, human_silence=0.8)
    with pytest.raises(ValueError, match="positive"):
        MachineDetectionParams(min_beep=0)


def test_verdicts_read_as_twilio_answered_by() -> None:
    machine = Decision(AnsweredBy.MACHINE, 0.8, 2.5, "long_greeting")
    assert answered_by(None) == "unknown"
    assert answered_by(Decision(AnsweredBy.HUMAN, 0.8, 1.5, "short_greeting")) == "human"
    assert answered_by(machine) == "machine_start"
    assert answered_by(machine, GreetingEnd(9.0, "silence")) == "machine_end_silence"
    assert answered_by(machine, GreetingEnd(30.0, "timeout")) == "machine_end_other"


def test_the_labelled_set_has_both_kinds_and_unique_names() -> None:
    labels = [g.label for g in GREETINGS]
    assert labels.count("machine") >= 20 and labels.count("human") >= 20
    assert len(BY_NAME) == len(GREETINGS)
