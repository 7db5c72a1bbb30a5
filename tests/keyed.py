"""A test database moved to keys by county, the first step of the move to Citus
(`layers/store/distribution.py`): the modules that run their tests again on it show the move is a
deployment step, the application unchanged."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, TypeVar

from sqlalchemy import text

from layers.store import db, distribution
from tests.databases import PgServer


class HasUrl(Protocol):
    url: str


W = TypeVar("W", bound=HasUrl)


def keys_by_county(pg_server: PgServer, url: str) -> list[str]:
    """Run the plan's plain PostgreSQL part on the database at `url`, as its owner; its DDL."""
    engine = db.make_engine(pg_server.as_owner(url))
    try:
        with engine.begin() as conn:
            statements = distribution.plan(conn).keys
            for statement in statements:
                conn.execute(text(statement))
    finally:
        engine.dispose()
    return statements


def keyed(worlds: Iterator[W], pg_server: PgServer) -> Iterator[W]:
    """The world `worlds` makes, its keys moved to the county once its rows are in."""
    world = next(worlds)
    assert keys_by_county(pg_server, world.url), "the plan moved no key"
    yield world
    next(worlds, None)
