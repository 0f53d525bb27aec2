"""The FastAPI application: API, health and (later) media sockets and the dashboard."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.middleware.cors import CORSMiddleware

from switchboard import __version__
from switchboard.api import api_router, problems
from switchboard.config import Settings
from switchboard.services import Services

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1_000_000


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = await Services.open(settings)
        app.state.services = services
        try:
            yield
        finally:
            await services.close()

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
    return app
