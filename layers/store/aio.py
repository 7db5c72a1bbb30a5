"""Reads on the event loop: a pool of asynchronous connections for one-statement answers.

The synchronous engine runs each request's statements in a worker thread inside a transaction
whose statement timeout is set by its first statement: four round trips and a thread hop for a
query of a fraction of a millisecond. These connections carry the read budget, the bureau's time
zone and the other session settings from the moment they open (the startup packet's options),
run in autocommit and prepare their statements, so a read is one round trip on the event loop.
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection
from psycopg.conninfo import make_conninfo
from psycopg_pool import AsyncConnectionPool
from sqlalchemy.engine import URL

from layers.store.db import BUREAU_TIMEZONE
from layers.store.raw import CLIENT_ENCODING, driver_sql, keep_json_bytes

ReadPool = AsyncConnectionPool[AsyncConnection[Any]]


def session_options(read_timeout_ms: int, gk_epsg: int | None) -> str:
    """The settings every connection of the pool starts with (what the engine sets on connect,
    and the read budget as the whole session's statement timeout)."""
    settings = {
        "jit": "off",
        "timezone": BUREAU_TIMEZONE,
        "statement_timeout": f"{read_timeout_ms}ms",
    }
    if gk_epsg is not None:
        settings["citygrid.gk_srid"] = str(gk_epsg)
    return " ".join(f"-c {name}={value}" for name, value in settings.items())


def read_pool(
    url: URL,
    read_timeout_ms: int,
    gk_epsg: int | None,
    application_name: str,
    max_size: int,
) -> ReadPool:
    """A pool (not yet open) of autocommit connections to the engine's database."""
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
        options=session_options(read_timeout_ms, gk_epsg),
        **{str(k): str(v) for k, v in url.query.items()},
    )
    return AsyncConnectionPool(
        conninfo,
        min_size=1,
        max_size=max_size,
        kwargs={"autocommit": True},
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
