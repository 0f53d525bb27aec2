"""Calls from a web page: the dashboard asks for a call, gets a short-lived token and the
media socket to open; the page then streams 16 kHz PCM both ways (``BrowserFrameSerializer``)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from switchboard.agents.service import get_agent
from switchboard.auth.service import Principal
from switchboard.calls import service as calls
from switchboard.db.models import CallDirection, CallStatus, Workspace
from switchboard.errors import InvalidInput, Unauthenticated
from switchboard.services import Services
from switchboard.telephony.browser import issue_browser_token, read_browser_token
from switchboard.telephony.credentials import CarrierName
from switchboard.telephony.inbound import expire_if_unconnected, media_url
from switchboard.voice.slots import AtCapacity

TOKEN_SECONDS = 60


@dataclass(frozen=True)
class BrowserCall:
    call_id: str
    token: str
    media_url: str
    expires_in: int = TOKEN_SECONDS
    sample_rate: int = 16000


def token_secret(services: Services) -> bytes:
    """Tokens are signed with the server's secret key, so any server process can check them."""
    return services.settings.encryption_key


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
            services.slots.acquire(call.id, principal.workspace_id, workspace.max_concurrent_calls)
        except AtCapacity as exc:
            await calls.move(
                session, call.id, CallStatus.REJECTED, end_reason=f"capacity_{exc.scope}"
            )
            raise InvalidInput("all lines are busy; try again shortly", field="agent_id") from exc
    services.media_timeouts[call.id] = services.spawn(
        expire_if_unconnected(services, call.id), name=f"media-timeout-{call.id}"
    )
    token = issue_browser_token(
        token_secret(services), principal.workspace_id, agent.id, ttl_seconds=TOKEN_SECONDS
    )
    url = media_url(services.settings.resolved_public_url, CarrierName.BROWSER, call.id)
    return BrowserCall(call_id=call.id, token=token, media_url=url)


def check_browser_token(services: Services, token: str, workspace_id: str, agent_id: str) -> None:
    """The socket's token must be fresh and name the call's own workspace and agent."""
    token_workspace, token_agent = read_browser_token(token_secret(services), token, time.time())
    if (token_workspace, token_agent) != (workspace_id, agent_id):
        raise Unauthenticated("the token is for another call")
