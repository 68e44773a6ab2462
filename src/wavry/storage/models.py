"""Declarative models of the control plane's persistent state.

Times are stored as UNIX seconds (``float``): the services take their clock as an input, and a
number compares the same way on SQLite and PostgreSQL (the original compared text timestamps).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "AuditEvent",
    "AuthChallenge",
    "AuthToken",
    "Base",
    "Identity",
    "Relay",
    "RelaySession",
]


class Base(DeclarativeBase):
    pass


class Relay(Base):
    """A registered relay and what the master knows of its health."""

    __tablename__ = "relays"

    relay_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    endpoints: Mapped[list[str]] = mapped_column(JSON, nullable=False)
    #: the network (IPv4 /24 or IPv6 /48 by default) of the first endpoint, for the sybil limit
    subnet: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    region: Mapped[str | None] = mapped_column(String(64), nullable=True)
    asn: Mapped[int | None] = mapped_column(Integer, nullable=True)
    max_sessions: Mapped[int] = mapped_column(Integer, nullable=False)
    max_bitrate_kbps: Mapped[int] = mapped_column(Integer, nullable=False)
    features: Mapped[list[str]] = mapped_column(JSON, nullable=False, default=list)
    state: Mapped[str] = mapped_column(String(16), nullable=False, index=True)
    load_pct: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    #: consecutive heartbeats below the degraded threshold (probation -> active after N)
    healthy_heartbeats: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    registered_at: Mapped[float] = mapped_column(Float, nullable=False)
    last_seen: Mapped[float] = mapped_column(Float, nullable=False, index=True)
    #: verified session outcomes reported by peers (quality > 50 counts as a success)
    success_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    failure_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    #: exponentially weighted mean of verified quality scores (0..100), 50 until the first one
    feedback_score: Mapped[float] = mapped_column(Float, nullable=False, default=50.0)


class Identity(Base):
    """A Wavry ID registered by proving possession of its Ed25519 key."""

    __tablename__ = "identities"

    wavry_id: Mapped[str] = mapped_column(String(43), primary_key=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary(32), nullable=False)
    display_name: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[float] = mapped_column(Float, nullable=False)
    last_login: Mapped[float | None] = mapped_column(Float, nullable=True)
    banned: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)


class AuthChallenge(Base):
    """A single-use challenge; the row is deleted by the first verify attempt."""

    __tablename__ = "auth_challenges"

    #: hex of the 32 random challenge bytes (what the client signs, with a context prefix)
    challenge: Mapped[str] = mapped_column(String(64), primary_key=True)
    wavry_id: Mapped[str] = mapped_column(String(43), nullable=False, index=True)
    purpose: Mapped[str] = mapped_column(String(16), nullable=False)
    display_name: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[float] = mapped_column(Float, nullable=False)
    expires_at: Mapped[float] = mapped_column(Float, nullable=False, index=True)


class AuthToken(Base):
    """A bearer token issued at login; only its SHA-256 is stored."""

    __tablename__ = "auth_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    wavry_id: Mapped[str] = mapped_column(
        String(43),
        ForeignKey("identities.wavry_id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    )
    created_at: Mapped[float] = mapped_column(Float, nullable=False)
    expires_at: Mapped[float] = mapped_column(Float, nullable=False, index=True)


class RelaySession(Base):
    """A relay session the master issued leases for; feedback must name one of these."""

    __tablename__ = "relay_sessions"

    session_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    relay_id: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    requester: Mapped[str] = mapped_column(String(43), nullable=False, index=True)
    requester_role: Mapped[str] = mapped_column(String(8), nullable=False)
    target: Mapped[str] = mapped_column(String(43), nullable=False, index=True)
    created_at: Mapped[float] = mapped_column(Float, nullable=False)
    expires_at: Mapped[float] = mapped_column(Float, nullable=False, index=True)
    requester_feedback_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    target_feedback_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class AuditEvent(Base):
    """Security-relevant events: auth failures, policy denials, admin actions."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_created_at", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[float] = mapped_column(Float, nullable=False)
    actor: Mapped[str] = mapped_column(String(80), nullable=False)
    action: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    target_type: Mapped[str] = mapped_column(String(32), nullable=False)
    target_id: Mapped[str | None] = mapped_column(String(80), nullable=True)
    outcome: Mapped[str] = mapped_column(String(16), nullable=False)
    #: HMAC-SHA256 of the actor's address under a per-deployment key (never the address itself)
    actor_ip_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
