"""HTTP API: one thin router per resource under /api/v1."""

from fastapi import APIRouter

from switchboard.api import (
    agents,
    batches,
    calls,
    campaigns,
    carriers,
    dnc,
    flows,
    keys,
    numbers,
    providers,
    tools,
)

api_router = APIRouter(prefix="/api/v1")
for module in (
    agents,
    flows,
    numbers,
    carriers,
    providers,
    calls,
    batches,
    campaigns,
    dnc,
    keys,
    tools,
):
    api_router.include_router(module.router)
