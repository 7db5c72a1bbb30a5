"""Reads on the event loop: a pool of asynchronous connections for one-statement answers.

The synchronous engine runs each request's statements in a worker thread inside a transaction
whose statement timeout is set by its first statement: four round trips and a thread hop for a
query of a fraction of a millisecond. These connections are given the read budget, as their
session's statement timeout, and the engine's other session settings once, when they connect;
they run in autocommit and prepare their statements, so a read is one round trip on the event
loop.
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection
from psycopg.conninfo import make_conninfo
from psycopg_pool import AsyncConnectionPool
from sqlalchemy.engine import URL

from layers.store.db import session_statement
from layers.store.raw import CLIENT_ENCODING, driver_sql, keep_json_bytes

ReadPool = AsyncConnectionPool[AsyncConnection[Any]]


def read_pool(
    url: URL,
    read_timeout_ms: int,
    gk_epsg: int | None,
    application_name: str,
    max_size: int,
) -> ReadPool:
    """A pool (not yet open) of autocommit connections to the engine's database, each given
    the engine's session settings and the read budget when it connects."""
    statement = session_statement(gk_epsg, read_timeout_ms)

    async def configure(conn: AsyncConnection[Any]) -> None:
        await conn.execute(*statement)

    conninfo = make_conninfo(
        "",
        host=url.host or "localhost",
        port=url.port or 5432,
        dbname=url.database,
        user=url.username,
        password=url.password,
        application_name=application_name,
        connect_timeout=10,
        client_encoding=CLIENT_ENCODING,
        **{str(k): str(v) for k, v in url.query.items()},
    )
    return AsyncConnectionPool(
        conninfo,
        min_size=1,
        max_size=max_size,
        kwargs={"autocommit": True},
        configure=configure,
        open=False,
        timeout=1.0,  # else the framework answers, on its own pool (or 503 when the server is down)
        name=application_name,
    )


async def fetch_row(pool: ReadPool, sql: str, params: dict[str, Any]) -> tuple[Any, ...] | None:
    """The first row of one statement (prepared on its connection), or None; json columns as
    bytes (`layers.store.raw`)."""
    async with pool.connection() as conn, conn.cursor() as cursor:
        keep_json_bytes(cursor)
        await cursor.execute(driver_sql(sql), params, prepare=True)
        return await cursor.fetchone()
