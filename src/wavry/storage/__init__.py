"""Storage shared by the control-plane services: SQLAlchemy 2 (async) models, Alembic migrations.

SQLite (through aiosqlite) is the embedded default, at ``DATA_DIR/master.db``;
``WAVRY_DATABASE_URL`` points every service at another database (PostgreSQL at scale).
Schemas are only ever built by Alembic (``upgrade``), never by ``create_all``, so tests
exercise the migrations that production runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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
        Identity,
        Relay,
        RelaySession,
    )

# Imported on first use: `wavry db` registers its parser on every CLI start, and SQLAlchemy +
# Alembic cost about a second to import.
_LAZY = {
    **dict.fromkeys(
        ("ENV_DATABASE_URL", "database_url", "make_engine", "make_sessionmaker"),
        "wavry.storage.engine",
    ),
    **dict.fromkeys(("downgrade", "upgrade"), "wavry.storage.migrate"),
    **dict.fromkeys(
        ("AuditEvent", "AuthChallenge", "AuthToken", "Base", "Identity", "Relay", "RelaySession"),
        "wavry.storage.models",
    ),
}

__all__ = [
    "ENV_DATABASE_URL",
    "AuditEvent",
    "AuthChallenge",
    "AuthToken",
    "Base",
    "Identity",
    "Relay",
    "RelaySession",
    "database_url",
    "downgrade",
    "make_engine",
    "make_sessionmaker",
    "upgrade",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'wavry.storage' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
