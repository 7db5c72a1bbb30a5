"""Bulk writes with PostgreSQL COPY: geometry as hex EWKB, values adapted by psycopg."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import shapely
from sqlalchemy import Connection, Table, text

from layers.registry import STORAGE_SRID

Progress = Callable[[int], None]


def _quote(conn: Connection, name: str) -> str:
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
    names = ", ".join(_quote(conn, c) for c in columns)
    raw = conn.connection.driver_connection
    assert raw is not None
    with (
        raw.cursor() as cur,
        cur.copy(f"COPY {_quote(conn, table.name)} ({names}) FROM STDIN") as copy,
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
                + _quote(conn, table.name)
                + "))"
            ),
            {"t": table.name},
        )
    return len(rows)


def copy_tuples(
    conn: Connection,
    table: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    advance: Progress | None = None,
    chunk: int = 50000,
) -> int:
    """COPY `rows` (tuples in the order of `columns`, no geometry) into the table named `table`;
    returns the count. For millions of narrow rows, where building dicts would cost more."""
    names = ", ".join(_quote(conn, c) for c in columns)
    raw = conn.connection.driver_connection
    assert raw is not None
    with (
        raw.cursor() as cur,
        cur.copy(f"COPY {_quote(conn, table)} ({names}) FROM STDIN") as copy,
    ):
        for start in range(0, len(rows), chunk):
            for row in rows[start : start + chunk]:
                copy.write_row(row)
            if advance:
                advance(len(rows[start : start + chunk]))
    return len(rows)
