"""Dependencies as ``Annotated`` aliases, so a route's signature says what it needs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard.auth.service import Principal, authenticate
from switchboard.db.models import Role
from switchboard.errors import Unauthenticated
from switchboard.services import Services


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_session(services: ServicesDep) -> AsyncIterator[AsyncSession]:
    async with services.sessions() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]

_bearer = HTTPBearer(auto_error=False, description="An API key: `sb_<prefix>_<secret>`")


async def get_principal(
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthenticated("send an API key as 'Authorization: Bearer <key>'")
    return await authenticate(session, credentials.credentials)


def requires(role: Role) -> Callable[..., Awaitable[Principal]]:
    async def check(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        principal.require(role)
        return principal

    return check


Viewer = Annotated[Principal, Depends(requires(Role.VIEWER))]
Developer = Annotated[Principal, Depends(requires(Role.DEVELOPER))]
Admin = Annotated[Principal, Depends(requires(Role.ADMIN))]


class Page:
    """Keyset pagination over time-ordered ids: ``?limit=&after=<last id seen>``."""

    def __init__(
        self,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        after: Annotated[str | None, Query(max_length=40)] = None,
    ) -> None:
        self.limit = limit
        self.after = after


PageDep = Annotated[Page, Depends()]
