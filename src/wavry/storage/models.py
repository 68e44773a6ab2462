"""Declarative models of the control plane's persistent state.

Times are stored as UNIX seconds (``float``): the services take their clock as an input, and a
number compares the same way on SQLite and PostgreSQL (the original compared text timestamps).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "AuditEvent",
    "AuthChallenge",
    "AuthToken",
    "Base",
    "HostShare",
    "Identity",
    "LoginFailure",
    "Relay",
    "RelaySession",
    "User",
    "UserBan",
    "UserChallenge",
    "UserSession",
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


# --- gateway (revision 0002_gateway_accounts) ---


class User(Base):
    """A gateway account: email + password (Argon2id), optional TOTP, optional bound Wavry ID."""

    __tablename__ = "users"
    __table_args__ = (
        UniqueConstraint("email", name="uq_users_email"),
        UniqueConstraint("username", name="uq_users_username"),
        UniqueConstraint("wavry_id", name="uq_users_wavry_id"),
        Index("ix_users_created_at", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    #: normalised (trimmed, lower-case)
    email: Mapped[str] = mapped_column(String(254), nullable=False)
    #: normalised, ``[a-z0-9_.-]{3,32}``; the name peers address in signaling
    username: Mapped[str] = mapped_column(String(32), nullable=False)
    display_name: Mapped[str] = mapped_column(String(64), nullable=False)
    #: hex public key given at registration (64..128 hex chars)
    public_key: Mapped[str] = mapped_column(String(128), nullable=False)
    #: the Wavry ID whose Ed25519 key signed a challenge for this account (``/auth/challenge``)
    wavry_id: Mapped[str | None] = mapped_column(String(43), nullable=True)
    #: Argon2id PHC string
    password_hash: Mapped[str] = mapped_column(String(256), nullable=False)
    #: ``enc:v2:`` + base64(nonce || AES-256-GCM ciphertext) (or ``plain:`` in insecure dev mode)
    totp_secret_enc: Mapped[str | None] = mapped_column(String(256), nullable=True)
    #: the last accepted TOTP time step: a code of that step or older is refused (replay)
    totp_last_step: Mapped[int | None] = mapped_column(Integer, nullable=True)
    #: a secret from ``/auth/2fa/setup`` awaiting its first code (same encoding)
    totp_pending_enc: Mapped[str | None] = mapped_column(String(256), nullable=True)
    totp_pending_expires_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[float] = mapped_column(Float, nullable=False)


class UserSession(Base):
    """A login session; only the SHA-256 of its bearer token is stored."""

    __tablename__ = "user_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    created_at: Mapped[float] = mapped_column(Float, nullable=False)
    expires_at: Mapped[float] = mapped_column(Float, nullable=False, index=True)
    #: HMAC of the address the session was created from (never the address itself)
    ip_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    user_agent: Mapped[str | None] = mapped_column(String(256), nullable=True)


class LoginFailure(Base):
    """Recent failed logins per key (``email:<e>`` or ``ip:<hmac>``) for lockout with backoff."""

    __tablename__ = "login_failures"

    identifier: Mapped[str] = mapped_column(String(300), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, nullable=False)
    last_failure: Mapped[float] = mapped_column(Float, nullable=False, index=True)
    #: no login attempt for this key is evaluated before this time
    locked_until: Mapped[float] = mapped_column(Float, nullable=False)


class UserBan(Base):
    """An active or expired ban (``expires_at`` ``None`` = permanent)."""

    __tablename__ = "user_bans"

    user_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    reason: Mapped[str] = mapped_column(String(500), nullable=False)
    created_at: Mapped[float] = mapped_column(Float, nullable=False)
    expires_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class HostShare(Base):
    """``owner`` lets ``shared_with`` connect to its hosts."""

    __tablename__ = "host_shares"

    owner_user_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    shared_with_user_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    created_at: Mapped[float] = mapped_column(Float, nullable=False)


class UserChallenge(Base):
    """A single-use challenge binding an account to a Wavry ID (deleted by the first verify)."""

    __tablename__ = "user_challenges"

    challenge: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    wavry_id: Mapped[str] = mapped_column(String(43), nullable=False)
    created_at: Mapped[float] = mapped_column(Float, nullable=False)
    expires_at: Mapped[float] = mapped_column(Float, nullable=False, index=True)
