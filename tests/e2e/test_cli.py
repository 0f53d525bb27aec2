"""The ``switchboard`` command as a user runs it: real processes, real files, a real server."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from switchboard.auth.service import authenticate
from switchboard.config import Settings
from switchboard.db import migrate
from switchboard.db.models import Role
from switchboard.services import Services

KEY_PATTERN = re.compile(r"sb_[a-z0-9]{8}_[A-Za-z0-9_-]+")
SWITCHBOARD = [sys.executable, "-m", "switchboard.cli"]


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SWITCHBOARD, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "200"},
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def server(data_dir: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    port = free_port()
    process = subprocess.Popen(
        [*SWITCHBOARD, "serve", "--port", str(port), "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, process.communicate()[1]
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not answer /health in 30 s"
            time.sleep(0.1)
        yield base, process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            process.communicate(timeout=15)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def drain(process: subprocess.Popen[str]) -> None:
    """Read the server's output as it comes: a long call fills a pipe nobody reads, and a
    server blocked on writing its log answers nothing."""
    for stream in (process.stdout, process.stderr):
        if stream is not None:
            threading.Thread(target=stream.read, daemon=True).start()


def test_keys_create_prints_only_a_working_key(tmp_path: Path) -> None:
    result = run(
        "keys", "create", "--workspace", "ops", "--role", "admin", "--data-dir", str(tmp_path)
    )
    assert result.returncode == 0, result.stderr
    key = result.stdout.strip()
    assert KEY_PATTERN.fullmatch(key)
    assert "created workspace ops" in result.stderr

    async def check() -> Role:
        services = await Services.open(Settings(data_dir=tmp_path), run_migrations=False)
        try:
            async with services.sessions() as session:
                return (await authenticate(session, key)).role
        finally:
            await services.close()

    assert asyncio.run(check()) is Role.ADMIN
    again = run("keys", "create", "--workspace", "ops", "--data-dir", str(tmp_path))
    assert "created workspace" not in again.stderr
    assert again.stdout.strip() != key


def test_migrate_prints_the_revision(tmp_path: Path) -> None:
    result = run("migrate", "--data-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == migrate.head_revision()
    assert (tmp_path / "switchboard.db").exists()


def test_bad_configuration_is_a_clear_error(tmp_path: Path) -> None:
    env = {**os.environ, "SWITCHBOARD_ENVIRONMENT": "production"}
    result = subprocess.run(
        [*SWITCHBOARD, "migrate", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode == 2
    assert "SWITCHBOARD_SECRET_KEY" in result.stderr


def test_serve_seeds_an_empty_data_dir_once(tmp_path: Path) -> None:
    with server(tmp_path) as (base, process):
        assert httpx.get(f"{base}/docs").status_code == 200
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=15)
    keys = KEY_PATTERN.findall(stderr)
    assert len(keys) == 1, stderr
    headers = {"Authorization": f"Bearer {keys[0]}"}

    with server(tmp_path) as (base, process):
        agents = httpx.get(f"{base}/api/v1/agents", headers=headers).json()["data"]
        numbers = httpx.get(f"{base}/api/v1/numbers", headers=headers).json()["data"]
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=15)
    by_name = {a["name"]: a["id"] for a in agents}
    assert set(by_name) == {"Demo receptionist", "Dental receptionist (flow)"}
    assert sorted((n["number"], n["carrier"], n["agent_id"]) for n in numbers) == [
        ("+15550100", "simulator", by_name["Demo receptionist"]),
        ("+15550101", "simulator", by_name["Dental receptionist (flow)"]),
    ]
    assert KEY_PATTERN.findall(stderr) == []


def test_the_seeded_dental_flow_books_and_transfers_through_switchboard_call(
    tmp_path: Path,
) -> None:
    """The demo flow, offline: real speech both ways, a webhook booking, a transfer."""
    data_dir = tmp_path / "data"
    with server(data_dir) as (base, process):
        drain(process)
        key = run("keys", "create", "--workspace", "default", "--data-dir", str(data_dir))
        headers = {"Authorization": f"Bearer {key.stdout.strip()}"}

        def call(*lines: str) -> tuple[str, list[tuple[str, dict[str, Any]]]]:
            says = [arg for line in lines for arg in ("--say", line)]
            out = tmp_path / f"call-{len(lines)}.wav"
            result = run(
                "call", "--server", base, "--agent", "+15550101", "--out", str(out), *says,
                timeout=180,
            )  # fmt: skip
            assert result.returncode == 0, result.stderr
            call_id = re.findall(r"answered: call (call_\w+)", result.stderr)[0]
            events = httpx.get(f"{base}/api/v1/calls/{call_id}/events", headers=headers).json()
            turns = httpx.get(f"{base}/api/v1/calls/{call_id}/transcript", headers=headers)
            said = " ".join(t["text"] for t in turns.json() if t["role"] == "agent")
            record = httpx.get(f"{base}/api/v1/calls/{call_id}", headers=headers).json()
            status = f"{record['status']} ({record['end_reason']}): "
            return status + said, [(e["type"], e["data"]) for e in events]

        booked, events = call(
            "Yes, I have.", "I would like to book an appointment.", "Tuesday at 10 am.",
            "No, that's all, thank you.",
        )  # fmt: skip
        transferred, transfer_events = call("No, it's my first time.", "The front desk, please.")

    nodes = [data["node"] for kind, data in events if kind == "node_entered"]
    assert nodes == ["greet", "identify_need", "book", "confirm", "goodbye"]
    [result] = [data for kind, data in events if kind == "tool_result"]
    assert result["name"] == "book_appointment" and result["status"] == "ok"
    assert "You are booked for Tuesday at 10 am. Your reference is SD-1001." in booked
    assert booked.startswith("completed (flow_ended): ")
    nodes = [data["node"] for kind, data in transfer_events if kind == "node_entered"]
    assert nodes == ["greet", "identify_need", "transfer"]
    assert ("transferred", {"department": "front_desk", "to": "+14158675309"}) in transfer_events
    assert transferred.startswith("transferred (transferred): ")
