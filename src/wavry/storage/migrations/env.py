"""Alembic environment, always driven from code (``wavry.storage.migrate``) with a connection."""

from __future__ import annotations

from alembic import context

from wavry.storage.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "run migrations through wavry.storage.migrate.upgrade()/downgrade() "
        "(they pass a connection)"
    )

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    # SQLite cannot ALTER most things; batch mode rebuilds tables so one migration fits both.
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
