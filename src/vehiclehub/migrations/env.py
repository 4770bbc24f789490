"""Alembic's environment for the store: the connection (online) or the URL (``--sql``)
is handed over by :mod:`vehiclehub.store.migrate` in the configuration's attributes."""

from __future__ import annotations

from alembic import context

from vehiclehub.store.migrate import store_metadata

config = context.config

if context.is_offline_mode():
    context.configure(
        url=config.attributes["url"],
        target_metadata=store_metadata(),
        literal_binds=True,
        output_buffer=config.attributes.get("output"),
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    context.configure(
        connection=config.attributes["connection"],
        target_metadata=store_metadata(),
    )
    with context.begin_transaction():
        context.run_migrations()
