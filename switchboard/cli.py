"""The ``switchboard`` command: serve, migrate, keys.

Human-facing messages go to stderr through rich; stdout carries only what a
script would capture (a key, a revision).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Annotated, Any

import typer
import uvicorn
from rich.console import Console
from rich.panel import Panel

from switchboard.api.body_limit import MAX_WEBSOCKET_MESSAGE_BYTES
from switchboard.auth.service import create_api_key, get_or_create_workspace
from switchboard.config import Settings, generate_secret_key
from switchboard.db import migrate as migrations
from switchboard.db.models import Role
from switchboard.demo.dental import DENTAL_NUMBER
from switchboard.jobs.queue import prepare_job_storage
from switchboard.seed import DEMO_NUMBER, seed_if_empty
from switchboard.services import Services

app = typer.Typer(no_args_is_help=True, help="Switchboard: self-hosted AI voice agents.")
keys_app = typer.Typer(no_args_is_help=True, help="API keys and the secret key.")
app.add_typer(keys_app, name="keys")

console = Console(stderr=True)

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Holds switchboard.db and recordings/ (SWITCHBOARD_DATA_DIR)."),
]


def load_settings(data_dir: Path | None, **overrides: Any) -> Settings:
    """Settings from the environment, with command-line flags taking precedence."""
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    try:
        return Settings(**overrides)
    except ValueError as exc:
        console.print(f"[red]configuration error:[/] {exc}")
        raise typer.Exit(2) from exc


async def _prepare(settings: Settings) -> None:
    services = await Services.open(settings)
    try:
        async with services.sessions() as session:
            seeded = await seed_if_empty(
                session,
                services.box,
                settings.resolved_public_url,
                demo=settings.simulator_enabled,
            )
    finally:
        await services.close()
    if seeded is not None:
        demo = (
            f"demo agent [cyan]{seeded.agent_id}[/] on simulator number [cyan]{DEMO_NUMBER}[/];"
            f" the dental receptionist flow [cyan]{seeded.dental_agent_id}[/] on"
            f" [cyan]{DENTAL_NUMBER}[/]."
            if seeded.agent_id
            else "no demo agents (the simulator is off)."
        )
        console.print(
            Panel.fit(
                f"[bold]Owner API key[/] (shown once, keep it):\n\n{seeded.owner_key}\n\n"
                f"Workspace [cyan]default[/], {demo}",
                title="First start",
            )
        )


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    data_dir: DataDir = None,
    warm_up: Annotated[
        bool, typer.Option(help="Load the embedded speech and language models at start.")
    ] = True,
) -> None:
    """Run the API, media sockets, dashboard and the in-process job runner."""
    settings = load_settings(data_dir, host=host, port=port, warm_up=warm_up)
    logging.basicConfig(level=settings.log_level, format="%(levelname)s %(name)s: %(message)s")
    asyncio.run(_prepare(settings))
    from switchboard.app import create_app

    console.print(
        f"Switchboard on [bold]{settings.resolved_public_url}[/]  "
        f"(API docs: {settings.resolved_public_url}/docs)"
    )
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_level=settings.log_level.lower(),
        ws_max_size=MAX_WEBSOCKET_MESSAGE_BYTES,
    )


def _register_client_commands() -> None:
    from switchboard.caller.command import call
    from switchboard.dialer.command import batch
    from switchboard.jobs.cli import worker

    app.command("call")(call)
    app.command("batch")(batch)
    app.command("worker")(worker)


_register_client_commands()


@app.command()
def migrate(
    data_dir: DataDir = None,
    revision: Annotated[str, typer.Option(help="Target revision.")] = "head",
) -> None:
    """Apply database migrations (serve does this too)."""
    settings = load_settings(data_dir)

    async def run() -> str | None:
        services = await Services.open(settings, run_migrations=False)
        try:
            await migrations.upgrade(services.engine, revision)
            await prepare_job_storage(settings)
            return await migrations.current_revision(services.engine)
        finally:
            await services.close()

    current = asyncio.run(run())
    console.print(f"database at revision [bold]{current}[/]")
    typer.echo(current)


@keys_app.command("create")
def keys_create(
    workspace: Annotated[str, typer.Option(help="Workspace name; created if missing.")],
    role: Annotated[Role, typer.Option(help="Role of the new key.")] = Role.DEVELOPER,
    name: Annotated[str, typer.Option(help="A label for the key.")] = "",
    data_dir: DataDir = None,
) -> None:
    """Print a new API key, alone, on stdout."""
    settings = load_settings(data_dir)

    async def run() -> tuple[str, bool]:
        services = await Services.open(settings)
        try:
            async with services.sessions() as session:
                ws, created = await get_or_create_workspace(session, workspace)
                _, plaintext = await create_api_key(session, ws.id, role, name)
                await session.commit()
                return plaintext, created
        finally:
            await services.close()

    plaintext, created = asyncio.run(run())
    if created:
        console.print(f"created workspace [cyan]{workspace}[/]")
    console.print(f"new [bold]{role.value}[/] key for [cyan]{workspace}[/] (shown once):")
    typer.echo(plaintext)


@keys_app.command("secret")
def keys_secret() -> None:
    """Print a new value for SWITCHBOARD_SECRET_KEY (encrypts stored credentials)."""
    typer.echo(generate_secret_key())


if __name__ == "__main__":  # pragma: no cover
    app()
