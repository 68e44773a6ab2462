"""Gateway: users, sessions, login failures, bans, host shares, Wavry ID challenges.

The original's five SQLite migrations collapsed into one, with its schema bug fixed
(``user_bans.created_at`` exists) and times stored as UNIX seconds like the master's tables.

Revision ID: 0002_gateway_accounts
Revises: 0001_master_initial
Create Date: 2025-01-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_gateway_accounts"
down_revision = "0001_master_initial"
branch_labels = None
depends_on = None


def _user_fk(name: str) -> sa.Column[str]:
    return sa.Column(name, sa.String(36), sa.ForeignKey("users.id", ondelete="CASCADE"),
                     nullable=False)  # fmt: skip


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("username", sa.String(32), nullable=False),
        sa.Column("display_name", sa.String(64), nullable=False),
        sa.Column("public_key", sa.String(128), nullable=False),
        sa.Column("wavry_id", sa.String(43), nullable=True),
        sa.Column("password_hash", sa.String(256), nullable=False),
        sa.Column("totp_secret_enc", sa.String(256), nullable=True),
        sa.Column("totp_last_step", sa.Integer(), nullable=True),
        sa.Column("totp_pending_enc", sa.String(256), nullable=True),
        sa.Column("totp_pending_expires_at", sa.Float(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.UniqueConstraint("email", name="uq_users_email"),
        sa.UniqueConstraint("username", name="uq_users_username"),
        sa.UniqueConstraint("wavry_id", name="uq_users_wavry_id"),
    )
    op.create_index("ix_users_created_at", "users", ["created_at"])

    op.create_table(
        "user_sessions",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        _user_fk("user_id"),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("ip_hash", sa.String(64), nullable=True),
        sa.Column("user_agent", sa.String(256), nullable=True),
    )
    op.create_index("ix_user_sessions_user_id", "user_sessions", ["user_id"])
    op.create_index("ix_user_sessions_expires_at", "user_sessions", ["expires_at"])

    op.create_table(
        "login_failures",
        sa.Column("identifier", sa.String(300), primary_key=True),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("last_failure", sa.Float(), nullable=False),
        sa.Column("locked_until", sa.Float(), nullable=False),
    )
    op.create_index("ix_login_failures_last_failure", "login_failures", ["last_failure"])

    op.create_table(
        "user_bans",
        sa.Column(
            "user_id",
            sa.String(36),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            primary_key=True,
        ),  # fmt: skip
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=True),
    )

    op.create_table(
        "host_shares",
        sa.Column(
            "owner_user_id",
            sa.String(36),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            primary_key=True,
        ),  # fmt: skip
        sa.Column(
            "shared_with_user_id",
            sa.String(36),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            primary_key=True,
        ),  # fmt: skip
        sa.Column("created_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_host_shares_shared_with_user_id", "host_shares", ["shared_with_user_id"])

    op.create_table(
        "user_challenges",
        sa.Column("challenge", sa.String(64), primary_key=True),
        _user_fk("user_id"),
        sa.Column("wavry_id", sa.String(43), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_user_challenges_user_id", "user_challenges", ["user_id"])
    op.create_index("ix_user_challenges_expires_at", "user_challenges", ["expires_at"])


def downgrade() -> None:
    op.drop_table("user_challenges")
    op.drop_table("host_shares")
    op.drop_table("user_bans")
    op.drop_table("login_failures")
    op.drop_table("user_sessions")
    op.drop_table("users")
