"""The FastAPI application: API, health and (later) media sockets and the dashboard."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from switchboard import __version__, log_redaction
from switchboard.api import api_router, problems
from switchboard.api.body_limit import BodyLimit
from switchboard.calls.sweeper import run_sweeper
from switchboard.config import Settings
from switchboard.demo.booking import create_booking_router
from switchboard.services import Services

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = await Services.open(settings)
        app.state.services = services
        services.simulator = getattr(app.state, "simulator", None)
        await services.jobs.start()  # in-process: runs jobs here; procrastinate: enqueues only
        if settings.warm_up:
            from switchboard.providers.warmup import warm_up

            services.spawn(warm_up(services.local_engines()), name="warm-up")
        services.spawn(
            run_sweeper(
                services.sessions, services.slots, settings.stuck_call_seconds, every_seconds=60
            ),
            name="stuck-call-sweeper",
        )
        try:
            yield
        finally:
            await services.close()
            if (simulator := getattr(app.state, "simulator", None)) is not None:
                await simulator.aclose()
                await simulator.http.aclose()

    app = FastAPI(
        title="Switchboard",
        version=__version__,
        description="Self-hosted AI voice agents for phone calls.",
        lifespan=lifespan,
    )
    problems.install(app)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["*"],
            allow_headers=["*"],
        )

    app.add_middleware(BodyLimit)
    log_redaction.install()

    @app.get("/health", tags=["health"])
    async def health() -> dict[str, str]:
        """Liveness: no authentication, no database."""
        return {"status": "ok"}

    app.include_router(api_router)
    # Imported here: the call runtime pulls in Pipecat, which the API alone does not need.
    from switchboard.telephony.routes import router as telephony_router

    app.include_router(telephony_router)
    if settings.simulator_enabled:
        _mount_development_tools(app, settings)
    return app


def _mount_development_tools(app: FastAPI, settings: Settings) -> None:
    """The simulator's fake carrier API and the demo receptionist's appointment book (its
    webhook tool calls back into us): unsigned conveniences that production never serves."""
    from switchboard.telephony.simulator_api import CarrierSimulator, create_simulator_router
    from switchboard.telephony.simulator_callee import CalleeBook

    app.include_router(create_booking_router())
    simulator = CarrierSimulator(
        httpx.AsyncClient(timeout=10),
        callback_origin=settings.resolved_public_url,
        callees=CalleeBook(),
    )
    app.state.simulator = simulator
    app.include_router(create_simulator_router(simulator))
