"""Calls from a web page: the dashboard asks for a call, gets the call's short-lived stream
token and the media socket to open; the page then streams 16 kHz PCM both ways
(``BrowserFrameSerializer``)."""

from __future__ import annotations

from dataclasses import dataclass

from switchboard.agents.service import get_agent
from switchboard.auth.service import Principal
from switchboard.calls import service as calls
from switchboard.db.models import CallDirection, CallStatus, Workspace
from switchboard.errors import InvalidInput
from switchboard.services import Services
from switchboard.telephony.credentials import CarrierName
from switchboard.telephony.ringing import start_media_timer
from switchboard.telephony.streams import issue_stream_token, media_url
from switchboard.voice.slots import AtCapacity


@dataclass(frozen=True)
class BrowserCall:
    call_id: str
    token: str
    media_url: str
    expires_in: int
    sample_rate: int = 16000


async def start_browser_call(
    services: Services, principal: Principal, agent_id: str
) -> BrowserCall:
    async with services.sessions() as session:
        agent = await get_agent(session, principal.workspace_id, agent_id)
        if not agent.active:
            raise InvalidInput("the agent is not active", field="agent_id")
        workspace = await session.get(Workspace, principal.workspace_id)
        assert workspace is not None
        call = await calls.create_call(
            session,
            workspace_id=principal.workspace_id,
            agent_id=agent.id,
            agent_version=agent.version,
            direction=CallDirection.INBOUND,
            carrier=CarrierName.BROWSER.value,
            from_number="browser",
            to_number=agent.id,
        )
        try:
            await services.slots.acquire(
                call.id, principal.workspace_id, workspace.max_concurrent_calls
            )
        except AtCapacity as exc:
            await calls.move(
                session, call.id, CallStatus.REJECTED, end_reason=f"capacity_{exc.scope}"
            )
            raise InvalidInput("all lines are busy; try again shortly", field="agent_id") from exc
    start_media_timer(services, call.id)
    settings = services.settings
    return BrowserCall(
        call_id=call.id,
        token=issue_stream_token(settings, call.id, CarrierName.BROWSER, principal.workspace_id),
        media_url=media_url(settings.resolved_public_url, CarrierName.BROWSER, call.id),
        expires_in=int(settings.media_connect_timeout_seconds),
    )
