"""/api/v1/providers: the catalog of STT, LLM and TTS providers and the workspace's credentials."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, status
from pydantic import BaseModel

from switchboard.api.deps import Admin, ServicesDep, SessionDep, Viewer
from switchboard.providers import credentials
from switchboard.providers.registry import specs
from switchboard.providers.spec import ProviderKind, ProviderSpec

router = APIRouter(prefix="/providers", tags=["providers"])


class ProviderOut(BaseModel):
    id: str
    kind: ProviderKind
    label: str
    local: bool
    streaming: bool
    models: list[str]
    default_model: str | None
    voices: list[str]
    default_voice: str | None
    languages: list[str]
    sample_rates: list[int]
    credentials: list[str]
    optional_credentials: list[str]
    credentials_set: bool
    options_schema: dict[str, Any]
    package: str
    testing: bool
    notes: str


def provider_out(spec: ProviderSpec, configured: set[str]) -> ProviderOut:
    return ProviderOut(
        id=spec.id,
        kind=spec.kind,
        label=spec.label,
        local=spec.local,
        streaming=spec.streaming,
        models=list(spec.models),
        default_model=spec.default_model,
        voices=list(spec.voices),
        default_voice=spec.default_voice,
        languages=list(spec.languages),
        sample_rates=list(spec.sample_rates),
        credentials=list(spec.credentials),
        optional_credentials=list(spec.optional_credentials),
        credentials_set=spec.id in configured,
        options_schema=spec.options.model_json_schema(),
        package=spec.package,
        testing=spec.testing,
        notes=spec.notes,
    )


@router.get("")
async def list_providers(
    session: SessionDep, principal: Viewer, kind: ProviderKind | None = None
) -> list[ProviderOut]:
    """Every provider an agent can choose, with whether this workspace has its credentials."""
    configured = await credentials.configured_providers(session, principal.workspace_id)
    return [provider_out(spec, configured) for spec in specs(kind)]


@router.put("/{provider}/credentials", status_code=status.HTTP_204_NO_CONTENT)
async def put_provider_credentials(
    provider: str,
    session: SessionDep,
    principal: Admin,
    services: ServicesDep,
    body: dict[str, Any] = Body(examples=[{"api_key": "your-provider-key"}]),
) -> None:
    """Store the workspace's key for a provider (write-only; one key serves STT, LLM and TTS)."""
    await credentials.put_credentials(session, services.box, principal.workspace_id, provider, body)


@router.delete("/{provider}/credentials", status_code=status.HTTP_204_NO_CONTENT)
async def delete_provider_credentials(provider: str, session: SessionDep, principal: Admin) -> None:
    await credentials.delete_credentials(session, principal.workspace_id, provider)
