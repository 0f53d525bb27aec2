"""Calls and what they leave behind: events and transcript turns."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from switchboard.db.base import ID_LENGTH, Base, TimestampMixin, id_column, utcnow
from switchboard.db.types import JSONType, UTCDateTime, str_enum


class CallStatus(StrEnum):
    QUEUED = "queued"  # an outbound call, not yet rung
    RINGING = "ringing"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    TRANSFERRED = "transferred"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    CANCELED = "canceled"
    REJECTED = "rejected"


class CallDirection(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class Call(TimestampMixin, Base):
    __tablename__ = "calls"
    __table_args__ = (
        Index("ix_calls_workspace_created", "workspace_id", "created_at"),
        Index("ix_calls_status", "status"),
        # One record per carrier call and workspace: a replayed webhook cannot make a second.
        UniqueConstraint("workspace_id", "carrier", "carrier_call_id"),
        # A campaign's answered calls over its last 30 days: its abandonment rate.
        Index("ix_calls_campaign_answered", "campaign_id", "answered_at"),
    )

    id: Mapped[str] = id_column("call")
    workspace_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("workspaces.id", ondelete="CASCADE")
    )
    agent_id: Mapped[str | None] = mapped_column(
        String(ID_LENGTH), ForeignKey("agents.id", ondelete="SET NULL"), default=None, index=True
    )
    agent_version: Mapped[int | None] = mapped_column(default=None)
    direction: Mapped[CallDirection] = mapped_column(str_enum(CallDirection, "call_direction"))
    carrier: Mapped[str] = mapped_column(String(16))
    carrier_call_id: Mapped[str | None] = mapped_column(String(64), default=None, index=True)
    from_number: Mapped[str] = mapped_column(String(32), default="")
    to_number: Mapped[str] = mapped_column(String(32), default="")
    status: Mapped[CallStatus] = mapped_column(
        str_enum(CallStatus, "call_status"), default=CallStatus.RINGING
    )
    end_reason: Mapped[str | None] = mapped_column(String(64), default=None)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    variables: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    recording_path: Mapped[str | None] = mapped_column(String(255), default=None)
    usage: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    latency: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    analysis: Mapped[dict[str, Any] | None] = mapped_column(JSONType, default=None)
    # Outbound: how it was dialled (machine detection, voicemail message, ring timeout), who
    # answered (human, machine_*, unknown), and the carrier's error when placing it failed.
    dial: Mapped[dict[str, Any] | None] = mapped_column(JSONType, default=None)
    # Set once, by the one job that asks the carrier to ring it: never dialled twice.
    placed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    # Set once, by the answer that sends its carrier to the media socket: a replayed answer
    # webhook mints no second stream token.
    media_offered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    answered_by: Mapped[str | None] = mapped_column(String(32), default=None)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSONType, default=None)
    cost_usd: Mapped[float | None] = mapped_column(default=None)
    # A campaign's call: the campaign, and whether it was abandoned (answered by a person
    # the agent did not speak to within two seconds; None until the hopper has judged).
    campaign_id: Mapped[str | None] = mapped_column(
        String(ID_LENGTH), ForeignKey("campaigns.id", ondelete="SET NULL"), default=None
    )
    abandoned: Mapped[bool | None] = mapped_column(default=None)


class CallEvent(Base):
    """Something that happened on a call; ``seq`` orders events written in the same instant."""

    __tablename__ = "call_events"
    __table_args__ = (UniqueConstraint("call_id", "seq"),)

    id: Mapped[str] = id_column("evt")
    call_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("calls.id", ondelete="CASCADE"), index=True
    )
    seq: Mapped[int]
    type: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class TranscriptTurn(Base):
    """One utterance; ``text`` is stored redacted when the agent redacts PII."""

    __tablename__ = "transcript_turns"
    __table_args__ = (UniqueConstraint("call_id", "index"),)

    id: Mapped[str] = id_column("turn")
    call_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("calls.id", ondelete="CASCADE"), index=True
    )
    index: Mapped[int]
    role: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    interrupted: Mapped[bool] = mapped_column(default=False)
    language: Mapped[str | None] = mapped_column(String(16), default=None)
