"""``switchboard call`` as a user runs it, against the scripted app served from a thread."""

from __future__ import annotations

import math
import wave
from pathlib import Path

import numpy as np
import typer
from typer.testing import CliRunner

from switchboard.caller.command import call
from tests.caller.fake_twilio_app import API_KEY, FakeTwilioApp, Script, serving_in_thread


def cli() -> typer.Typer:
    """The command registered as the lead does: ``app.command("call")(call)``."""
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """Switchboard."""

    app.command("call")(call)
    return app


def short_wav(path: Path, seconds: float = 0.3) -> Path:
    t = np.arange(round(seconds * 16000)) / 16000
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(16000)
        wav.writeframes((np.sin(2 * math.pi * 300 * t) * 10000).astype("<i2").tobytes())
    return path


def test_a_rejected_call_prints_what_the_app_said_and_fails(tmp_path: Path) -> None:
    app = FakeTwilioApp(Script(reject_with="The number you dialled is not in service."))
    with serving_in_thread(app) as server:
        result = CliRunner().invoke(cli(), ["call", "--agent", "+15550999", "--server", server])
    assert result.exit_code == 1, result.output
    assert "The number you dialled is not in service." in result.stderr
    assert result.stdout == ""
    assert list(tmp_path.glob("*.wav")) == []


def test_a_file_that_is_not_a_wav_is_bad_input(tmp_path: Path) -> None:
    (tmp_path / "notes.wav").write_text("not audio")
    args = ["call", "--agent", "a", "--server", "127.0.0.1:9", "--audio", "notes.wav"]
    result = CliRunner().invoke(cli(), args)
    assert result.exit_code == 2, result.output
    assert "notes.wav" in result.stderr


def test_an_unreachable_server_fails_cleanly() -> None:
    result = CliRunner().invoke(cli(), ["call", "--agent", "a", "--server", "127.0.0.1:9"])
    assert result.exit_code == 1
    assert "call failed" in result.stderr


def test_a_call_says_each_line_prints_the_agent_and_saves_the_audio(tmp_path: Path) -> None:
    app = FakeTwilioApp(Script(greeting_seconds=0.2, reply_delay=0.2, reply_seconds=0.3))
    args = ["call", "--agent", "+15550100", "--say", "Yes, please.", "--audio"]
    args += [str(short_wav(tmp_path / "short.wav")), "--stereo", "both.wav", "--timeout", "5"]
    with serving_in_thread(app) as server:
        result = CliRunner().invoke(
            cli(),
            [*args, "--server", server],
            env={"SWITCHBOARD_API_KEY": API_KEY, "COLUMNS": "120"},
        )
    assert result.exit_code == 0, result.output
    assert result.stdout.split() == ["switchboard-call-call-1.wav", "both.wav"]
    assert (tmp_path / "switchboard-call-call-1.wav").stat().st_size > 8000
    with wave.open(str(tmp_path / "both.wav")) as both:
        assert both.getnchannels() == 2
    err = result.stderr
    assert err.index("Yes, please.") < err.index("short.wav")  # every --say, then --audio
    # With a key, the agent's words come from the transcript; then the call's status.
    for said in ("Hello from the fake app.", "Fake reply 1.", "Fake reply 2."):
        assert f"agent : {said}" in err
    assert "call status: completed" in err
    assert "voice-to-voice" in err
    assert app.webhooks[0]["To"] == "+15550100"


def test_no_reply_within_the_timeout_exits_3(tmp_path: Path) -> None:
    app = FakeTwilioApp(Script(greeting_seconds=0.1, reply=False))
    args = ["call", "--agent", "a1", "--audio", str(short_wav(tmp_path / "a.wav"))]
    with serving_in_thread(app) as server:
        result = CliRunner().invoke(cli(), [*args, "--server", server, "--timeout", "0.5"])
    assert result.exit_code == 3, result.output
    assert "agent : (spoke for 0.1 s)" in result.stderr  # without a key: only how long
    assert "no reply" in result.stderr
