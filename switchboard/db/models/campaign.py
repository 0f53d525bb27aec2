"""Campaigns, their prospects, and the do-not-call list.

A campaign calls its prospects over days, each at a lawful hour of its own
time zone. Each prospect carries ``next_due_at``: the earliest instant (UTC)
it may be dialled, already past its retry gap, its callback time and the next
opening of its calling window. Choosing whom to dial is then one indexed
query (``ix_prospects_due``), whatever the zones.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from switchboard.db.base import ID_LENGTH, Base, TimestampMixin, id_column, utcnow
from switchboard.db.types import JSONType, UTCDateTime, str_enum


class CampaignStatus(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"  # no new dials; calls in progress go on
    STOPPED = "stopped"  # for good: prospects not reached are left as they are
    COMPLETED = "completed"  # every prospect is final or expired


class ProspectState(StrEnum):
    PENDING = "pending"  # due at next_due_at (first try, a retry, or a callback)
    DIALING = "dialing"  # an attempt's call is live (call_id names it)
    FINAL = "final"  # a final disposition, or out of attempts
    EXPIRED = "expired"  # past its expiry (or the campaign's) before it was reached
    DNC = "dnc"  # on a do-not-call list: never dialled again


class Campaign(TimestampMixin, Base):
    __tablename__ = "campaigns"

    id: Mapped[str] = id_column("cmp")
    workspace_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    agent_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("agents.id", ondelete="CASCADE")
    )
    name: Mapped[str] = mapped_column(String(120))
    status: Mapped[CampaignStatus] = mapped_column(
        str_enum(CampaignStatus, "campaign_status"), default=CampaignStatus.RUNNING
    )
    from_numbers: Mapped[list[str]] = mapped_column(JSONType, default=list)
    # Calling hours per weekday in each prospect's local time, and dates off.
    hours: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    default_timezone: Mapped[str] = mapped_column(String(64), default="America/New_York")
    max_attempts: Mapped[int] = mapped_column(default=3)
    min_gap_seconds: Mapped[int] = mapped_column(default=3600)
    max_concurrent: Mapped[int] = mapped_column(default=2)
    calls_per_second: Mapped[float] = mapped_column(default=1.0)
    abandon_target: Mapped[float] = mapped_column(default=0.03)
    # The disposition set: name -> flags (final, callback, dnc, retry).
    dispositions: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    dial: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # The calls-per-second bucket between ticks: {"tokens": float, "at": ISO time}.
    pacing: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    # Why the hopper paused it (its agent or number can no longer dial), until resumed.
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class Prospect(Base):
    __tablename__ = "prospects"
    __table_args__ = (
        UniqueConstraint("campaign_id", "phone"),
        Index("ix_prospects_campaign_id", "campaign_id", "id"),  # listing, in import order
    )

    id: Mapped[str] = id_column("prs")
    campaign_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("campaigns.id", ondelete="CASCADE")
    )
    phone: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(120), default="")
    timezones: Mapped[list[str]] = mapped_column(JSONType, default=list)
    priority: Mapped[int] = mapped_column(default=0)  # higher first
    variables: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    state: Mapped[ProspectState] = mapped_column(
        str_enum(ProspectState, "prospect_state"), default=ProspectState.PENDING
    )
    attempts: Mapped[int] = mapped_column(default=0)
    next_due_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    callback_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    call_id: Mapped[str | None] = mapped_column(String(ID_LENGTH), default=None)
    disposition: Mapped[str | None] = mapped_column(String(40), default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


# The hopper's query: a campaign's pending prospects, highest priority first, then the longest
# due; read in index order, it stops as soon as it has as many as it can dial.
Index(
    "ix_prospects_due",
    Prospect.campaign_id,
    Prospect.state,
    Prospect.priority.desc(),
    Prospect.next_due_at,
)
# Expiring the pending prospects whose expiry has passed reads only those.
Index("ix_prospects_expiry", Prospect.campaign_id, Prospect.state, Prospect.expires_at)


class DncEntry(Base):
    """A number not to be called: by the whole workspace, or by one campaign."""

    __tablename__ = "dnc_entries"
    __table_args__ = (
        UniqueConstraint("workspace_id", "scope", "number"),
        Index("ix_dnc_entries_lookup", "workspace_id", "number"),
    )

    id: Mapped[str] = id_column("dnc")
    workspace_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("workspaces.id", ondelete="CASCADE")
    )
    # "workspace", or the id of the campaign the number asked not to be called by.
    scope: Mapped[str] = mapped_column(String(ID_LENGTH), default="workspace")
    number: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(16), default="api")  # api, csv, opt_out
    reason: Mapped[str] = mapped_column(String(300), default="")
    call_id: Mapped[str | None] = mapped_column(String(ID_LENGTH), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
