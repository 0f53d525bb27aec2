"""HTTP API: one thin router per resource under /api/v1."""

from fastapi import APIRouter

from switchboard.api import agents, carriers, keys, numbers, providers

api_router = APIRouter(prefix="/api/v1")
for module in (agents, numbers, carriers, providers, keys):
    api_router.include_router(module.router)
