"""The phone's playback model, driven with explicit times: no network, no clock."""

from __future__ import annotations

import pytest

from switchboard.caller.playback import ULAW_SILENCE, PlaybackBuffer

SECOND = b"\x10" * 8000  # one second of (non-silent) µ-law


def audio(seconds: float) -> bytes:
    return SECOND[: round(seconds * 8000)] if seconds <= 1 else SECOND * round(seconds)


def test_audio_arriving_faster_than_real_time_queues_without_gaps() -> None:
    buffer = PlaybackBuffer()
    for n in range(10):  # 10 x 0.1 s sent at twice real time
        buffer.receive(n * 0.05, audio(0.1))
    assert buffer.play_end == pytest.approx(1.0)
    [speech] = buffer.speeches
    assert (speech.starts_at, speech.ends_at, speech.underruns) == (0.0, pytest.approx(1.0), [])


def test_late_audio_mid_reply_is_an_underrun_of_its_lateness() -> None:
    buffer = PlaybackBuffer(speech_gap=0.6)
    buffer.receive(0.0, audio(0.2))
    buffer.receive(0.5, audio(0.2))  # 0.3 s after the speaker ran dry
    [speech] = buffer.speeches
    [gap] = speech.underruns
    assert (gap.at, gap.seconds) == (pytest.approx(0.2), pytest.approx(0.3))
    assert speech.ends_at == pytest.approx(0.7)


def test_timer_jitter_below_the_tolerance_is_not_a_gap() -> None:
    buffer = PlaybackBuffer(gap_tolerance=0.005)
    buffer.receive(0.0, audio(0.02))
    buffer.receive(0.022, audio(0.02))
    assert buffer.speeches[0].underruns == []


def test_silence_longer_than_the_speech_gap_starts_a_new_reply() -> None:
    buffer = PlaybackBuffer(speech_gap=0.6)
    buffer.receive(0.0, audio(0.2))
    buffer.receive(1.0, audio(0.2))
    assert [s.first_arrival for s in buffer.speeches] == [0.0, 1.0]
    assert all(not s.underruns for s in buffer.speeches)


def test_the_caller_speaking_ends_the_agents_reply() -> None:
    buffer = PlaybackBuffer(speech_gap=5)
    buffer.receive(0.0, audio(0.2))
    buffer.end_speech()
    buffer.receive(0.5, audio(0.2))
    assert len(buffer.speeches) == 2
    assert buffer.speeches[1].underruns == []


def test_clear_drops_what_was_not_yet_played() -> None:
    buffer = PlaybackBuffer()
    buffer.receive(0.0, audio(1.0))
    buffer.receive(0.0, audio(1.0))  # queued behind: plays from 1.0 to 2.0
    event = buffer.clear(0.25)
    assert event.dropped_seconds == pytest.approx(1.75)
    assert [len(c.audio) for c in buffer.chunks] == [2000]
    assert buffer.play_end == 0.25
    assert buffer.speeches[0].cleared and buffer.speeches[0].ends_at == 0.25
    assert not buffer.playing(0.25)
    # Arrivals are kept: the agent did send that audio.
    assert buffer.first_arrival_after(0.0) == 0.0


def test_first_arrival_after_a_moment() -> None:
    buffer = PlaybackBuffer()
    for at in (0.0, 0.1, 2.0, 2.1):
        buffer.receive(at, audio(0.02))
    assert buffer.first_arrival_after(0.05) == 0.1
    assert buffer.first_arrival_after(1.0) == 2.0
    assert buffer.first_arrival_after(3.0) is None


def test_render_places_audio_where_it_played() -> None:
    buffer = PlaybackBuffer()
    buffer.receive(10.5, audio(0.25))
    heard = buffer.render(origin=10.0, seconds=1.0)
    assert len(heard) == 8000
    assert set(heard[:4000]) == {ULAW_SILENCE}
    assert heard[4000:6000] == audio(0.25)
    assert set(heard[6000:]) == {ULAW_SILENCE}
