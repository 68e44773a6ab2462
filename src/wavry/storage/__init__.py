"""Storage shared by the control-plane services: SQLAlchemy 2 (async) models, Alembic migrations.

SQLite (through aiosqlite) is the embedded default, at ``DATA_DIR/master.db``;
``WAVRY_DATABASE_URL`` points every service at another database (PostgreSQL at scale).
Schemas are only ever built by Alembic (``upgrade``), never by ``create_all``, so tests
exercise the migrations that production runs.
"""

from __future__ import annotations

from wavry.storage.engine import (
    ENV_DATABASE_URL,
    database_url,
    make_engine,
    make_sessionmaker,
)
from wavry.storage.migrate import downgrade, upgrade
from wavry.storage.models import (
    AuditEvent,
    AuthChallenge,
    AuthToken,
    Base,
    HostShare,
    Identity,
    LoginFailure,
    Relay,
    RelaySession,
    User,
    UserBan,
    UserChallenge,
    UserSession,
)

__all__ = [
    "ENV_DATABASE_URL",
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
    "database_url",
    "downgrade",
    "make_engine",
    "make_sessionmaker",
    "upgrade",
]
