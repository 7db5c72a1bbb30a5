"""Database roles: the API connects as a role that may read and write rows and nothing more.

The owner (the role migrations run as) owns every table; the API role gets SELECT, INSERT, UPDATE
and DELETE on them, the sequences it needs to insert, EXECUTE on the owner's functions, and the
same on every table a later migration creates (default privileges). It is no superuser, creates
no role, database or table, and is in none of the roles that read or write server files or run
server programs (`COPY ... TO PROGRAM`).
"""

from __future__ import annotations

import psycopg
from psycopg import sql
from sqlalchemy import Connection, Engine, text

API_ROLE = "citygrid_api"
# What the API's connections call themselves in pg_stat_activity; the CLI and migrations use others.
API_APPLICATION = "citygrid-api"
MIGRATION_APPLICATION = "citygrid-migrate"
ROW_RIGHTS = "SELECT, INSERT, UPDATE, DELETE"
SEQUENCE_RIGHTS = "USAGE, SELECT, UPDATE"
# Bookkeeping the API reads but never writes.
READ_ONLY_TABLES = ("alembic_version", "spatial_ref_sys")


def _run(conn: Connection, statement: sql.Composed) -> None:
    """Run DDL that takes no bound values, its names and literals quoted by the driver."""
    raw = conn.connection.driver_connection
    assert isinstance(raw, psycopg.Connection)
    with raw.cursor() as cur:
        cur.execute(statement)


def ensure_login_role(engine: Engine, name: str, password: str) -> None:
    """Create the login role `name` without special rights, or reset it to exactly that."""
    with engine.begin() as conn:
        exists = conn.execute(
            text("SELECT 1 FROM pg_roles WHERE rolname = :name"), {"name": name}
        ).first()
        verb = "ALTER" if exists else "CREATE"
        _run(
            conn,
            sql.SQL(
                verb + " ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION "
                "NOBYPASSRLS PASSWORD {}"
            ).format(sql.Identifier(name), sql.Literal(password)),
        )


def grant_api_rights(conn: Connection, role: str) -> None:
    """Give `role` the rows of every table of the schema, now and after later migrations."""
    who = sql.Identifier(role)
    statements = [
        sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(who),
        sql.SQL(f"GRANT {ROW_RIGHTS} ON ALL TABLES IN SCHEMA public TO {{}}").format(who),
        sql.SQL(f"GRANT {SEQUENCE_RIGHTS} ON ALL SEQUENCES IN SCHEMA public TO {{}}").format(who),
        sql.SQL(
            f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT {ROW_RIGHTS} ON TABLES TO {{}}"
        ).format(who),
        sql.SQL(
            f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT {SEQUENCE_RIGHTS} ON SEQUENCES TO {{}}"
        ).format(who),
    ]
    owned = conn.execute(
        text("""
        SELECT c.relname FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relname = ANY(:names) AND pg_has_role(c.relowner, 'USAGE')
    """),
        {"names": list(READ_ONLY_TABLES)},
    ).scalars()
    statements += [
        sql.SQL("REVOKE INSERT, UPDATE, DELETE ON {} FROM {}").format(sql.Identifier(t), who)
        for t in owned
    ]
    # PostGIS's own functions are executable by everyone already; ours are granted by name.
    functions = conn.execute(
        text("""
        SELECT p.oid::regprocedure::text FROM pg_proc AS p
        JOIN pg_namespace AS n ON n.oid = p.pronamespace
        WHERE n.nspname = 'public' AND pg_has_role(p.proowner, 'USAGE')
          AND NOT EXISTS (SELECT 1 FROM pg_depend AS d WHERE d.objid = p.oid AND d.deptype = 'e')
    """)
    ).scalars()
    statements += [
        sql.SQL("GRANT EXECUTE ON FUNCTION {} TO {}").format(sql.SQL(f), who) for f in functions
    ]
    for statement in statements:
        _run(conn, statement)
