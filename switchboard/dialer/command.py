"""``switchboard batch FILE.csv --agent X [--wait]``: a batch job from the shell.

It uploads the CSV to a running server (``POST /api/v1/batches``), prints the
rows the server refused, and with ``--wait`` follows the batch with a progress
bar until every row is finished, then prints the outcomes. stdout carries only
the batch id, for scripts.

Exit codes: 0 the batch ran (or was queued); 1 the server refused it or could
not be reached; 2 bad input (a file that cannot be read).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from switchboard.caller.conversation import base_url

POLL_SECONDS = 1.0
FINISHED = ("completed", "canceled")


class BatchRefused(Exception):
    """The server answered the upload (or a poll) with an error."""


async def upload(
    http: httpx.AsyncClient, name: str, data: bytes, agent: str, options: dict[str, str]
) -> dict[str, Any]:
    files = {"file": (name, data, "text/csv")}
    response = await http.post("/api/v1/batches", data={"agent_id": agent, **options}, files=files)
    if response.status_code != 201:
        raise BatchRefused(_problem(response))
    body: dict[str, Any] = response.json()
    return body


async def follow(http: httpx.AsyncClient, batch_id: str, console: Console) -> dict[str, Any]:
    """Poll the batch until every row is finished, drawing a progress bar."""
    columns = (
        TextColumn("[bold]batch[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as bar:
        task = bar.add_task("", total=None)
        while True:
            try:
                response = await http.get(f"/api/v1/batches/{batch_id}")
            except httpx.TimeoutException:  # a busy server: ask again, the batch goes on
                continue
            if response.status_code != 200:
                raise BatchRefused(_problem(response))
            batch: dict[str, Any] = response.json()
            progress = batch["progress"]
            live = progress["by_status"].get("dialing", 0)
            bar.update(
                task,
                total=progress["rows"],
                completed=progress["finished"],
                description=f"{live} live  {_outcomes(progress['by_outcome'])}",
            )
            if batch["status"] in FINISHED and not live:
                return batch
            await asyncio.sleep(POLL_SECONDS)


def _outcomes(by_outcome: dict[str, int]) -> str:
    return "  ".join(f"{name} {count}" for name, count in by_outcome.items())


def _problem(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    detail = body.get("detail") if isinstance(body, dict) else None
    return f"HTTP {response.status_code}: {detail or body}"


def refused_rows(batch: dict[str, Any]) -> Table:
    table = Table(title="rows refused")
    table.add_column("line", justify="right")
    table.add_column("reason")
    for error in batch["row_errors"]:
        table.add_row(str(error["line"]), str(error["reason"]))
    return table


def batch(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="CSV with a phone column.")
    ],
    agent: Annotated[str, typer.Option("--agent", help="The agent that makes the calls.")],
    server: Annotated[str, typer.Option(help="The Switchboard server, host:port or URL.")] = (
        "127.0.0.1:8000"
    ),
    key: Annotated[
        str | None, typer.Option(envvar="SWITCHBOARD_API_KEY", help="API key (developer).")
    ] = None,
    from_number: Annotated[
        str | None, typer.Option("--from", help="Number to call from (default: the agent's).")
    ] = None,
    concurrency: Annotated[int, typer.Option(help="Calls at once.")] = 2,
    max_attempts: Annotated[int, typer.Option(help="Tries per row.")] = 1,
    retry_after: Annotated[int, typer.Option(help="Seconds before a retry (doubles).")] = 300,
    wait: Annotated[
        bool, typer.Option("--wait", help="Follow it until every row is done.")
    ] = False,
) -> None:
    """Call every number of a CSV with an agent, as a batch job on the server."""
    console = Console(stderr=True)
    options = {
        "concurrency": str(concurrency),
        "max_attempts": str(max_attempts),
        "retry_after_seconds": str(retry_after),
        **({"from": from_number} if from_number else {}),
    }
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        data = file.read_bytes()
    except OSError as exc:
        console.print(f"[red]bad input:[/] {exc}")
        raise typer.Exit(2) from exc

    async def run() -> dict[str, Any]:
        async with httpx.AsyncClient(
            base_url=base_url(server), headers=headers, timeout=30
        ) as http:
            created = await upload(http, file.name, data, agent, options)
            console.print(
                f"batch [cyan]{created['id']}[/]: {created['progress']['rows']} rows queued"
            )
            if created["row_errors"]:
                console.print(refused_rows(created))
            typer.echo(created["id"])
            return await follow(http, created["id"], console) if wait else created

    try:
        result = asyncio.run(run())
    except BatchRefused as exc:
        console.print(f"[red]refused:[/] {exc}")
        raise typer.Exit(1) from exc
    except httpx.HTTPError as exc:
        console.print(f"[red]could not reach {server}:[/] {exc}")
        raise typer.Exit(1) from exc
    if wait:
        console.print(f"finished: {_outcomes(result['progress']['by_outcome'])}")
