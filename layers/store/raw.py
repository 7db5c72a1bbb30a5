"""Statements whose answer is passed on as the server wrote it: json columns as UTF-8 bytes.

The database builds the GeoJSON; the driver would parse a json column, or decode a text one to a
`str` that the response encodes back to bytes: for a page of 1,000 features those two copies and
the search for its last brace took most of the worker's time. Read with the loader below, the
value stays the bytes the server sent (every connection speaks UTF-8: `CLIENT_ENCODING`).
"""

from __future__ import annotations

from collections.abc import Generator
from functools import lru_cache
from typing import Any

from psycopg.abc import Buffer
from psycopg.adapt import Loader
from sqlalchemy import Connection, text
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg

CLIENT_ENCODING = "utf8"
_DIALECT = PGDialect_psycopg()


class JsonBytes(Loader):
    """A json value as the UTF-8 bytes the server sent."""

    def load(self, data: Buffer) -> bytes:
        """The value's bytes, neither parsed nor decoded."""
        return bytes(data)


def keep_json_bytes(cursor: Any) -> None:
    """Make `cursor` (synchronous or asynchronous) load json columns as bytes."""
    cursor.adapters.register_loader("json", JsonBytes)


@lru_cache(maxsize=512)
def driver_sql(sql: str) -> str:
    """A statement written with `:name` binds (as the engine's callers write them) in the
    driver's own `%(name)s` style, literal percent signs doubled."""
    return str(text(sql).compile(dialect=_DIALECT))


def fetch_json_row(conn: Connection, sql: str, params: dict[str, Any]) -> tuple[Any, ...] | None:
    """The first row of a statement on the request's connection (in its transaction, under its
    statement timeout), its json columns as bytes."""
    driver = conn.connection.driver_connection
    assert driver is not None
    with driver.cursor() as cursor:
        keep_json_bytes(cursor)
        cursor.execute(driver_sql(sql), params)
        return cursor.fetchone()


def stream_json_rows(
    conn: Connection, sql: str, params: dict[str, Any], batch: int
) -> Generator[tuple[Any, ...], None, None]:
    """The rows of a statement from a server-side cursor on the request's connection, `batch`
    a fetch, json columns as bytes; the cursor is closed however the iteration ends."""
    driver = conn.connection.driver_connection
    assert driver is not None
    with driver.cursor(name="citygrid_rows") as cursor:
        keep_json_bytes(cursor)
        cursor.execute(driver_sql(sql), params)
        while rows := cursor.fetchmany(batch):
            yield from rows
