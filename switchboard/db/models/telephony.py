"""Phone numbers and the carrier accounts that own them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from switchboard.db.base import ID_LENGTH, Base, TimestampMixin, id_column
from switchboard.db.types import JSONType, UTCDateTime


class PhoneNumber(TimestampMixin, Base):
    """A dialable number (E.164). Unique across workspaces: inbound routing looks it up alone."""

    __tablename__ = "phone_numbers"

    id: Mapped[str] = id_column("num")
    workspace_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[str] = mapped_column(String(16), unique=True)
    carrier: Mapped[str] = mapped_column(String(16))
    label: Mapped[str] = mapped_column(String(120), default="")
    agent_id: Mapped[str | None] = mapped_column(
        String(ID_LENGTH), ForeignKey("agents.id", ondelete="SET NULL"), default=None, index=True
    )


class CarrierAccount(TimestampMixin, Base):
    """One workspace's credentials for one carrier; secrets are Fernet-encrypted."""

    __tablename__ = "carrier_accounts"
    __table_args__ = (UniqueConstraint("workspace_id", "carrier"),)

    id: Mapped[str] = id_column("car")
    workspace_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    carrier: Mapped[str] = mapped_column(String(16))
    settings: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    secrets: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)


class WebhookNonce(Base):
    """A signed webhook's nonce, kept until ``expires_at`` so the same request is refused twice.

    Used where Redis is not configured; any process sharing the database sees it.
    """

    __tablename__ = "webhook_nonces"

    scope: Mapped[str] = mapped_column(String(64), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(128), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
