"""Run the store's Alembic migrations on the connection handed over by ``layers.store.upgrade_schema``."""

from __future__ import annotations

from alembic import context

from layers.store.tables import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
