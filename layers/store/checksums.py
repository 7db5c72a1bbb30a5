"""Row counts and content checksums of every table, computed in the database.

A table's checksum is the md5 of the md5s of consecutive chunks of its rows (as text, ordered by
primary key), so the server never holds more than one chunk's text at a time. The session is set
to fixed output formats first: the same rows give the same checksum on any server and client.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, text

CHUNK_ROWS = 10_000
# Text output that does not depend on the server's or the session's settings.
FIXED_FORMATS = (
    "SET LOCAL timezone = 'UTC'",
    "SET LOCAL datestyle = 'ISO, YMD'",
    "SET LOCAL intervalstyle = 'postgres'",
    "SET LOCAL extra_float_digits = 1",
    "SET LOCAL bytea_output = 'hex'",
    # a sorted aggregate keeps one chunk in memory; a hashed one would keep them all
    "SET LOCAL enable_hashagg = off",
)


@dataclass(frozen=True)
class TableSum:
    """How many rows a table holds and a checksum of their contents."""

    rows: int
    checksum: str


def user_tables(conn: Connection) -> list[str]:
    """The tables of the public schema, without those an extension owns (PostGIS's)."""
    return list(
        conn.execute(
            text("""
        SELECT c.relname FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
          AND NOT EXISTS (SELECT 1 FROM pg_depend AS d
                          WHERE d.objid = c.oid AND d.deptype = 'e')
        ORDER BY c.relname
    """)
        ).scalars()
    )


def _primary_key(conn: Connection, table: str) -> list[str]:
    return list(
        conn.execute(
            text("""
        SELECT a.attname FROM pg_index AS x
        JOIN pg_attribute AS a ON a.attrelid = x.indrelid AND a.attnum = ANY(x.indkey)
        WHERE x.indrelid = to_regclass(quote_ident(:table)) AND x.indisprimary
        ORDER BY array_position(x.indkey::int2[], a.attnum)
    """),
            {"table": table},
        ).scalars()
    )


def table_sum(conn: Connection, table: str) -> TableSum:
    """Count and checksum of one table's rows (call inside `fixed_formats`)."""
    quote = conn.dialect.identifier_preparer.quote
    key = _primary_key(conn, table)
    order = ", ".join(f"_row.{quote(c)}" for c in key) if key else "_row::text"
    rows, checksum = conn.execute(
        text(f"""
        WITH numbered AS (
            SELECT _row::text AS line, row_number() OVER (ORDER BY {order}) - 1 AS n
            FROM {quote(table)} AS _row
        ), chunks AS (
            SELECT n / :chunk AS chunk, count(*) AS rows,
                   md5(string_agg(line, E'\\n' ORDER BY n)) AS part
            FROM numbered GROUP BY 1
        )
        SELECT coalesce(sum(rows), 0)::bigint, md5(coalesce(string_agg(part, '' ORDER BY chunk), ''))
        FROM chunks
    """),
        {"chunk": CHUNK_ROWS},
    ).one()
    return TableSum(int(rows), str(checksum))


def fixed_formats(conn: Connection) -> None:
    """Make this transaction's text output independent of server and session settings."""
    for statement in FIXED_FORMATS:
        conn.execute(text(statement))


def all_sums(conn: Connection) -> dict[str, TableSum]:
    """Count and checksum of every table (in the connection's transaction and snapshot)."""
    fixed_formats(conn)
    return {table: table_sum(conn, table) for table in user_tables(conn)}
