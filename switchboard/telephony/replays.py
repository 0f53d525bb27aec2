"""Refusing a signed webhook the second time it arrives.

Vobiz signs a request as HMAC(token, URL + nonce): nothing in the signature
says when it was made, and the body is not signed at all, so a captured
request could be sent again (with another body) as often as an attacker
liked. Each nonce is therefore accepted once: it is remembered for
``NONCE_WINDOW_SECONDS`` in storage every server process shares (Redis when
configured, else the database), and a second use inside that window is a 403.
Past the window, the other checks hold: an inbound webhook for a call that
already exists opens nothing, a status callback only moves a live call
forward, and a transfer URL carries a token that expires in minutes.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

from redis.asyncio import Redis
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from switchboard.db.base import utcnow
from switchboard.db.models import WebhookNonce

NONCE_WINDOW_SECONDS = 3600
_REDIS_PREFIX = "switchboard:nonce:"


class ReplayGuard:
    """``first_use(scope, nonce)`` is True once per nonce and scope within the window."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        redis: Redis | None,
        *,
        window_seconds: float = NONCE_WINDOW_SECONDS,
    ) -> None:
        self.sessions = sessions
        self.redis = redis
        self.window_seconds = window_seconds

    async def first_use(self, scope: str, nonce: str) -> bool:
        """Remember ``nonce`` under ``scope`` (an account); False if it was seen before."""
        # A fixed-size digest: a nonce is attacker-chosen and may be any length.
        digest = hashlib.sha256(nonce.encode()).hexdigest()
        if self.redis is not None:
            fresh = await self.redis.set(
                f"{_REDIS_PREFIX}{scope}:{digest}", 1, nx=True, ex=int(self.window_seconds)
            )
            return bool(fresh)
        now = utcnow()
        async with self.sessions() as session:
            await session.execute(delete(WebhookNonce).where(WebhookNonce.expires_at < now))
            session.add(
                WebhookNonce(
                    scope=scope,
                    nonce=digest,
                    expires_at=now + timedelta(seconds=self.window_seconds),
                )
            )
            try:
                await session.commit()
            except IntegrityError:
                await session.rollback()
                return False
        return True
