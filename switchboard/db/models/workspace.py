"""Tenants: workspaces, the people in them and the API keys that act for them."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from switchboard.db.base import ID_LENGTH, Base, TimestampMixin, id_column
from switchboard.db.types import JSONType, UTCDateTime, str_enum


class Role(StrEnum):
    """Roles from most to least powerful; see ``switchboard.auth.roles`` for what each may do."""

    OWNER = "owner"
    ADMIN = "admin"
    DEVELOPER = "developer"
    VIEWER = "viewer"


class Workspace(TimestampMixin, Base):
    __tablename__ = "workspaces"

    id: Mapped[str] = id_column("ws")
    name: Mapped[str] = mapped_column(String(64), unique=True)
    max_concurrent_calls: Mapped[int] = mapped_column(default=10)
    # Hosts (names or IPs) whose private addresses webhook tools may reach.
    allowed_private_hosts: Mapped[list[str]] = mapped_column(
        JSONType, default=list, server_default="[]"
    )
    # Fernet-encrypted HMAC secret that signs every webhook-tool request.
    tool_signing_secret: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)


class User(TimestampMixin, Base):
    __tablename__ = "users"

    id: Mapped[str] = id_column("usr")
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(120), default="")


class Membership(TimestampMixin, Base):
    """A user's role in one workspace; a user may belong to several."""

    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("workspace_id", "user_id"),)

    id: Mapped[str] = id_column("mem")
    workspace_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[Role] = mapped_column(str_enum(Role, "role"))


class ApiKey(TimestampMixin, Base):
    """A bearer key. Only a SHA-256 of the secret part is stored; ``prefix`` finds the row."""

    __tablename__ = "api_keys"

    id: Mapped[str] = id_column("key")
    workspace_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[str | None] = mapped_column(
        String(ID_LENGTH), ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    name: Mapped[str] = mapped_column(String(120), default="")
    role: Mapped[Role] = mapped_column(str_enum(Role, "role"))
    prefix: Mapped[str] = mapped_column(String(24), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
