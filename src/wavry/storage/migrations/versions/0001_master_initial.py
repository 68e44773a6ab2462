"""Master: relays, identities, challenges, tokens, relay sessions, audit log.

Revision ID: 0001_master_initial
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_master_initial"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "relays",
        sa.Column("relay_id", sa.String(64), primary_key=True),
        sa.Column("endpoints", sa.JSON(), nullable=False),
        sa.Column("subnet", sa.String(64), nullable=False),
        sa.Column("region", sa.String(64), nullable=True),
        sa.Column("asn", sa.Integer(), nullable=True),
        sa.Column("max_sessions", sa.Integer(), nullable=False),
        sa.Column("max_bitrate_kbps", sa.Integer(), nullable=False),
        sa.Column("features", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("load_pct", sa.Integer(), nullable=False),
        sa.Column("healthy_heartbeats", sa.Integer(), nullable=False),
        sa.Column("registered_at", sa.Float(), nullable=False),
        sa.Column("last_seen", sa.Float(), nullable=False),
        sa.Column("success_count", sa.Integer(), nullable=False),
        sa.Column("failure_count", sa.Integer(), nullable=False),
        sa.Column("feedback_score", sa.Float(), nullable=False),
    )
    op.create_index("ix_relays_subnet", "relays", ["subnet"])
    op.create_index("ix_relays_state", "relays", ["state"])
    op.create_index("ix_relays_last_seen", "relays", ["last_seen"])

    op.create_table(
        "identities",
        sa.Column("wavry_id", sa.String(43), primary_key=True),
        sa.Column("public_key", sa.LargeBinary(32), nullable=False),
        sa.Column("display_name", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("last_login", sa.Float(), nullable=True),
        sa.Column("banned", sa.Boolean(), nullable=False),
    )

    op.create_table(
        "auth_challenges",
        sa.Column("challenge", sa.String(64), primary_key=True),
        sa.Column("wavry_id", sa.String(43), nullable=False),
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Column("display_name", sa.String(64), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_auth_challenges_wavry_id", "auth_challenges", ["wavry_id"])
    op.create_index("ix_auth_challenges_expires_at", "auth_challenges", ["expires_at"])

    op.create_table(
        "auth_tokens",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column(
            "wavry_id",
            sa.String(43),
            sa.ForeignKey("identities.wavry_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_auth_tokens_wavry_id", "auth_tokens", ["wavry_id"])
    op.create_index("ix_auth_tokens_expires_at", "auth_tokens", ["expires_at"])

    op.create_table(
        "relay_sessions",
        sa.Column("session_id", sa.String(36), primary_key=True),
        sa.Column("relay_id", sa.String(64), nullable=False),
        sa.Column("requester", sa.String(43), nullable=False),
        sa.Column("requester_role", sa.String(8), nullable=False),
        sa.Column("target", sa.String(43), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("requester_feedback_at", sa.Float(), nullable=True),
        sa.Column("target_feedback_at", sa.Float(), nullable=True),
    )
    op.create_index("ix_relay_sessions_relay_id", "relay_sessions", ["relay_id"])
    op.create_index("ix_relay_sessions_requester", "relay_sessions", ["requester"])
    op.create_index("ix_relay_sessions_target", "relay_sessions", ["target"])
    op.create_index("ix_relay_sessions_expires_at", "relay_sessions", ["expires_at"])

    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("actor", sa.String(80), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target_type", sa.String(32), nullable=False),
        sa.Column("target_id", sa.String(80), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("actor_ip_hash", sa.String(64), nullable=False),
        sa.Column("details", sa.JSON(), nullable=True),
    )
    op.create_index("ix_audit_log_created_at", "audit_log", ["created_at"])
    op.create_index("ix_audit_log_action", "audit_log", ["action"])


def downgrade() -> None:
    op.drop_table("audit_log")
    op.drop_table("relay_sessions")
    op.drop_table("auth_tokens")
    op.drop_table("auth_challenges")
    op.drop_table("identities")
    op.drop_table("relays")
