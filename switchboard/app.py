"""The FastAPI application: API, health and (later) media sockets and the dashboard."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI, Request, Response
from fastapi.middleware.cors import CORSMiddleware

from switchboard import __version__
from switchboard.api import api_router, problems
from switchboard.calls.sweeper import run_sweeper
from switchboard.config import Settings
from switchboard.demo.booking import create_booking_router
from switchboard.services import Services

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1_000_000


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = await Services.open(settings)
        app.state.services = services
        services.simulator = getattr(app.state, "simulator", None)
        if settings.warm_up:
            from switchboard.providers.warmup import warm_up

            services.spawn(warm_up(services.local_engines()), name="warm-up")
        services.spawn(
            run_sweeper(services.sessions, settings.stuck_call_seconds, every_seconds=60),
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

    @app.middleware("http")
    async def limit_body_size(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
            return problems.problem(413, f"request body over {MAX_BODY_BYTES} bytes", field="body")
        return await call_next(request)

    @app.get("/health", tags=["health"])
    async def health() -> dict[str, str]:
        """Liveness: no authentication, no database."""
        return {"status": "ok"}

    app.include_router(api_router)
    # The demo receptionist's appointment book (its webhook tool calls back into us).
    app.include_router(create_booking_router())
    # Imported here: the call runtime pulls in Pipecat, which the API alone does not need.
    from switchboard.telephony.routes import router as telephony_router
    from switchboard.telephony.simulator_api import CarrierSimulator, create_simulator_router

    app.include_router(telephony_router)
    simulator_http = httpx.AsyncClient(timeout=10)
    simulator = CarrierSimulator(simulator_http)
    app.state.simulator = simulator
    app.include_router(create_simulator_router(simulator_http, simulator=simulator))
    return app
