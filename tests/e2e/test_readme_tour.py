"""The README's curl tour, run as written against a real server."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e.test_cli import KEY_PATTERN, drain, server

README = Path(__file__).resolve().parents[2] / "README.md"


def tour_script(section: str = "tour") -> str:
    text = README.read_text()
    tour = text.split(f"<!-- {section}:start -->", 1)[1].split(f"<!-- {section}:end -->", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", tour, flags=re.S)
    # The reader sets SB and SB_KEY by hand; the test supplies them.
    lines = [
        line
        for block in blocks
        for line in block.splitlines()
        if not line.startswith(("export SB=", "export SB_KEY="))
    ]
    return "\n".join(lines)


@pytest.mark.skipif(shutil.which("jq") is None, reason="jq is not installed")
def test_the_tour_works_as_written(tmp_path: Path) -> None:
    with server(tmp_path) as (base, process):
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", tour_script()],
            capture_output=True,
            text=True,
            timeout=60,
            env={"PATH": "/usr/bin:/bin", "SB": base, "SB_KEY": _owner_key(process)},
        )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert '{"status":"ok"}' in out
    assert '"role": "owner"' in out
    assert re.search(r"^agt_\w+$", out, flags=re.M)
    assert '"field": "pipline"' in out
    assert '"number": "+15550123"' in out
    assert re.search(r"^2$", out, flags=re.M)  # the version after the PATCH
    assert '"changed_fields": [\n    "greeting"\n  ]' in out
    assert re.search(r"^x-config-source: database", out, flags=re.M | re.I)
    assert '"secrets_set": [\n    "auth_token"\n  ]' in out
    assert "f00dfeed" not in out
    assert KEY_PATTERN.search(out.splitlines()[-1])


def _owner_key(process: subprocess.Popen[str]) -> str:
    """Read the server's stderr until the first-start panel has printed the key."""
    assert process.stderr is not None
    for line in process.stderr:
        if match := KEY_PATTERN.search(line):
            return match.group(0)
    raise AssertionError("server printed no owner key")


@pytest.mark.skipif(shutil.which("jq") is None, reason="jq is not installed")
def test_the_outbound_section_works_as_written(tmp_path: Path) -> None:
    """An outbound call and a batch, with the embedded models on both ends, all offline."""
    (tmp_path / ".venv").symlink_to(README.parent / ".venv")
    with server(tmp_path / "data") as (base, process):
        key = _owner_key(process)
        drain(process)
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", tour_script("outbound")],
            capture_output=True,
            text=True,
            timeout=240,
            cwd=tmp_path,
            env={
                "PATH": "/usr/bin:/bin",
                "SB": base,
                "SB_KEY": key,
                "COLUMNS": "200",
            },
        )
    assert result.returncode == 0, result.stderr
    out, err = result.stdout, result.stderr
    assert '{"status":"completed","direction":"outbound","to_number":"+15550199"}' in out
    assert "agent: Thank you for calling Switchboard Dental." in out
    # The callee's lines, as whisper heard them through the phone line.
    assert len(re.findall(r"^user: \S", out, flags=re.M)) >= 2
    assert re.search(r"^bat_\w+$", out, flags=re.M)
    assert "rows refused" in err and "not an E.164 number" in err
    assert "finished: completed 2" in err


@pytest.mark.skipif(shutil.which("jq") is None, reason="jq is not installed")
def test_the_campaign_section_works_as_written(tmp_path: Path) -> None:
    """A campaign with a bad row, a listed number and retries, run to completion."""
    with server(tmp_path / "data") as (base, process):
        key = _owner_key(process)
        drain(process)
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", tour_script("campaign")],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
            env={"PATH": "/usr/bin:/bin", "SB": base, "SB_KEY": key},
        )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == '["no_answer","busy"]'
    assert json.loads(lines[1]) == {"number": "+447700900003", "scope": "workspace"}
    assert json.loads(lines[2]) == {"added": 3, "on_dnc": 1, "row_errors": [5]}
    stats = json.loads(lines[3])
    assert stats == {
        "dialed": 4,
        "answered": 0,
        "by_state": {"pending": 0, "dialing": 0, "final": 2, "expired": 0, "dnc": 1},
        "by_disposition": {"busy": 2, "do_not_call": 1},
    }
