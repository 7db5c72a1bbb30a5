"""Alembic environment: runs on the connection handed in by `layers.store.migrate`."""

from __future__ import annotations

from alembic import context
from geoalchemy2 import alembic_helpers

from layers.store.migrate import include_object
from layers.store.tables import metadata


def run_migrations_online() -> None:
    """Run migrations on the connection from the caller's config."""
    connection = context.config.attributes["connection"]
    context.configure(
        connection=connection,
        target_metadata=metadata,
        include_object=include_object,
        process_revision_directives=alembic_helpers.writer,
        render_item=alembic_helpers.render_item,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
