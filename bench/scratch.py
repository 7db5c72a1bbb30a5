"""A scratch database on the project's cluster for one benchmark: made empty and migrated,
dropped afterwards, and the cluster stopped again if the benchmark started it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from api.settings import DatabaseSettings
from layers.store import db, migrate


@contextmanager
def scratch_database(name: str) -> Iterator[str]:
    """The URL of the migrated, empty database `name`, for the length of the block."""
    cluster = DatabaseSettings().cluster()
    started = cluster.up(print)
    admin = cluster.url("postgres")
    db.drop_database(admin, name)
    db.ensure_database(admin, name)
    try:
        url = cluster.url(name)
        engine = db.make_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
        yield url
    finally:
        db.drop_database(admin, name)
        if started:
            cluster.down(print)
