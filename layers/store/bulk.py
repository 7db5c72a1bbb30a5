"""Bulk writes and reads with PostgreSQL COPY: geometry as hex EWKB, values adapted by psycopg."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, BinaryIO

import numpy as np
import shapely
from sqlalchemy import Connection, Table, text

from layers.registry import STORAGE_SRID

Progress = Callable[[int], None]


def quote_name(conn: Connection, name: str) -> str:
    """`name` quoted as an identifier where PostgreSQL needs it."""
    return conn.dialect.identifier_preparer.quote(name)


def copy_rows(
    conn: Connection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    advance: Progress | None = None,
    chunk: int = 5000,
) -> int:
    """COPY `rows` (dicts keyed by column, geometry under "geom", each with its county's
    "adcode") into `table`; returns the count."""
    if not rows:
        return 0
    columns = [c for c in rows[0] if c in table.c]
    if "geom" in columns:
        geoms = shapely.set_srid(np.asarray([r["geom"] for r in rows], dtype=object), STORAGE_SRID)
        ewkb = shapely.to_wkb(geoms, hex=True, include_srid=True)
    names = ", ".join(quote_name(conn, c) for c in columns)
    raw = conn.connection.driver_connection
    assert raw is not None
    with (
        raw.cursor() as cur,
        cur.copy(f"COPY {quote_name(conn, table.name)} ({names}) FROM STDIN") as copy,
    ):
        for i, row in enumerate(rows):
            values = [ewkb[i] if c == "geom" else row[c] for c in columns]
            copy.write_row(values)
            if advance and (i + 1) % chunk == 0:
                advance(chunk)
    if advance:
        advance(len(rows) % chunk)
    if "id" in columns:
        conn.execute(
            text(
                "SELECT setval(pg_get_serial_sequence(:t, 'id'), (SELECT max(id) FROM "
                + quote_name(conn, table.name)
                + "))"
            ),
            {"t": table.name},
        )
    return len(rows)


def copy_out(
    conn: Connection, select: str, params: dict[str, Any], out: BinaryIO, options: str
) -> int:
    """Write what `select` (SQLAlchemy text, :named values) returns into `out` as the database
    formats it (`COPY … TO STDOUT WITH (options)`); how many bytes."""
    compiled = text(select).bindparams(**params).compile(dialect=conn.dialect)
    raw = conn.connection.driver_connection
    assert raw is not None
    written = 0
    with (
        raw.cursor() as cur,
        cur.copy(f"COPY ({compiled.string}) TO STDOUT WITH ({options})", compiled.params) as copy,
    ):
        for block in copy:
            written += out.write(block)
    return written


def copy_tuples(
    conn: Connection,
    table: str,
    columns: Sequence[tuple[str, str]],
    rows: Sequence[Sequence[Any]],
    advance: Progress | None = None,
    chunk: int = 50000,
) -> int:
    """COPY `rows` (tuples in the order of `columns`, each a column's name and PostgreSQL type;
    no geometry) into the table named `table` in binary; returns the count. For millions of
    narrow rows, where dicts and text would cost more than the rows themselves."""
    names = ", ".join(quote_name(conn, name) for name, _ in columns)
    raw = conn.connection.driver_connection
    assert raw is not None
    with (
        raw.cursor() as cur,
        cur.copy(f"COPY {quote_name(conn, table)} ({names}) FROM STDIN (FORMAT BINARY)") as copy,
    ):
        copy.set_types([kind for _, kind in columns])
        for start in range(0, len(rows), chunk):
            part = rows[start : start + chunk]
            for row in part:
                copy.write_row(row)
            if advance:
                advance(len(part))
    return len(rows)


def owns(conn: Connection, table: str) -> bool:
    """Whether the connection's role owns `table` (and so may alter its constraints)."""
    return bool(
        conn.execute(
            text(
                "SELECT pg_has_role(current_user, relowner, 'USAGE') FROM pg_class "
                "WHERE oid = CAST(:t AS regclass)"
            ),
            {"t": table},
        ).scalar_one()
    )


def analyze(conn: Connection, table: str) -> None:
    """Gather the planner's statistics of `table` inside the caller's transaction, so that the
    statements after a bulk load see its rows; a role that does not own it leaves it to autovacuum."""
    if owns(conn, table):
        conn.execute(text(f"ANALYZE {quote_name(conn, table)}"))


@contextmanager
def foreign_keys_checked_after(conn: Connection, table: str) -> Iterator[None]:
    """Set aside the foreign keys of `table` while the block loads it and add them back after,
    checking every row in one pass instead of one lookup per row (PostgreSQL's advice for bulk
    loads); inside the caller's transaction, so it is all or nothing. A role that does not own
    the table (the API's) loads it with its keys checked row by row."""
    keys = (
        conn.execute(
            text("""
            SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
            WHERE conrelid = CAST(:t AS regclass) AND contype = 'f' ORDER BY conname
        """),
            {"t": table},
        ).all()
        if owns(conn, table)
        else []
    )
    quoted = quote_name(conn, table)
    for name, _ in keys:
        conn.execute(text(f"ALTER TABLE {quoted} DROP CONSTRAINT {quote_name(conn, name)}"))
    yield
    for name, definition in keys:
        conn.execute(
            text(f"ALTER TABLE {quoted} ADD CONSTRAINT {quote_name(conn, name)} {definition}")
        )
