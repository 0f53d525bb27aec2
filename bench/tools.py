"""What the webhook-tool path costs a call, against a plain HTTP request to the same backend.

    .venv/bin/python bench/tools.py    # prints a table, writes bench/results/tools.json

A local aiohttp backend on 127.0.0.1 answers a small JSON body. Three ways
to call it, interleaved round by round so machine noise falls on all alike:

- ``httpx`` (one pooled client): the floor, what any HTTP call costs here;
- ``SafeHttpClient``: the checked lookup, a fresh pinned connection (no
  keep-alive, by design), redirect checks, the size cap and the signature;
- ``WebhookRunner.invoke``: the above plus argument validation against the
  tool's JSON Schema and the ``tool_called`` / ``tool_result`` events
  (to an in-memory sink).

Reported as medians and 90th percentiles, and as ratios to ``httpx``.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from aiohttp import web
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from switchboard.tools import SafeHttpClient
from switchboard.tools.loading import WebhookTool
from switchboard.voice.webhooks import WebhookRunner

ROUNDS = 300
WARM_UP = 20
RESULTS = Path(__file__).parent / "results" / "tools.json"


async def _answer(request: web.Request) -> web.Response:
    await request.read()
    return web.json_response({"status": "booked", "slot": "Tuesday at 10 am", "reference": "SD-1"})


async def _sink(_kind: str, /, **_data: Any) -> None:
    return None


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def measure() -> dict[str, Any]:
    app = web.Application()
    app.router.add_post("/book", _answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/book"
    body = {"day": "Tuesday", "time": "10 am"}
    tool = WebhookTool(
        id="tool_bench",
        name="book_appointment",
        description="Book",
        parameters={
            "type": "object",
            "properties": {"day": {"type": "string"}, "time": {"type": "string"}},
            "required": ["day", "time"],
        },
        url=url,
        method="POST",
        headers={"Authorization": "Bearer x"},
        timeout_seconds=5.0,
        retries=0,
        wait_message="",
    )
    safe = SafeHttpClient(allowed_private_hosts={"127.0.0.1"}, signing_secret="whsec_bench")
    webhooks = WebhookRunner(safe, event=_sink, say=None, call_headers={})
    times: dict[str, list[float]] = {"httpx": [], "SafeHttpClient": [], "WebhookRunner": []}
    try:
        async with httpx.AsyncClient() as plain:

            async def with_httpx() -> None:
                (await plain.post(url, json=body)).raise_for_status()

            async def with_safe() -> None:
                await safe.request("POST", url, json=body)

            async def with_runner() -> None:
                assert (await webhooks.invoke(tool, dict(body))).succeeded

            ways = {"httpx": with_httpx, "SafeHttpClient": with_safe, "WebhookRunner": with_runner}
            for index in range(WARM_UP + ROUNDS):
                for name, way in ways.items():
                    started = time.perf_counter()
                    await way()
                    if index >= WARM_UP:
                        times[name].append((time.perf_counter() - started) * 1000)
    finally:
        await runner.cleanup()
    floor = statistics.median(times["httpx"])
    return {
        "rounds": ROUNDS,
        "machine": {
            "cpus": os.cpu_count(),
            "load": os.getloadavg(),
            "python": platform.python_version(),
        },
        "rows": [
            {
                "way": name,
                "median_ms": round(statistics.median(values), 3),
                "p90_ms": round(_percentile(values, 0.9), 3),
                "median_over_httpx": round(statistics.median(values) / floor, 2),
            }
            for name, values in times.items()
        ],
    }


def main() -> None:
    result = asyncio.run(measure())
    table = Table(title=f"webhook tool request to 127.0.0.1, {result['rounds']} rounds")
    for column in ("way", "median ms", "p90 ms", "median / httpx"):
        table.add_column(column)
    for row in result["rows"]:
        table.add_row(
            row["way"],
            f"{row['median_ms']:.2f}",
            f"{row['p90_ms']:.2f}",
            f"{row['median_over_httpx']:.2f}",
        )
    Console().print(table)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
