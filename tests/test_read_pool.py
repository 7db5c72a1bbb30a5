"""The event loop's read pool (layers/store/aio.py): its connections start with the engine's
session settings and the read budget, run one prepared statement per read, and bind values; json
comes from it, and from the engine's connections (layers/store/raw.py), as the server's bytes."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, make_url

from layers.store.aio import fetch_row, read_pool
from layers.store.db import BUREAU_TIMEZONE
from layers.store.raw import driver_sql, fetch_json_row
from tests.support import in_own_thread


def _run(
    url: str, timeout_ms: int, gk_epsg: int | None, reads: list[tuple[str, dict[str, Any]]]
) -> list[Any]:
    """Each read's first row, on one pool (of one connection, so every read shares it)."""

    async def go() -> list[Any]:
        pool = read_pool(make_url(url), timeout_ms, gk_epsg, "citygrid-read-test", max_size=1)
        await pool.open(wait=True)
        try:
            out: list[Any] = []
            for sql, params in reads:
                try:
                    out.append(await fetch_row(pool, sql, params))
                except psycopg.Error as exc:
                    out.append(exc)
            return out
        finally:
            await pool.close()

    return in_own_thread(asyncio.run, go())


def test_connections_start_with_the_session_settings_and_the_read_budget(
    database_url: str,
) -> None:
    settings = _run(
        database_url,
        1234,
        4549,
        [
            (
                "SELECT current_setting('statement_timeout'), current_setting('TimeZone'), "
                "current_setting('jit'), current_setting('citygrid.gk_srid'), "
                "current_setting('application_name'), current_user",
                {},
            )
        ],
    )
    timeout, zone, jit, srid, name, _user = settings[0]
    assert (timeout, zone, jit, srid, name) == (
        "1234ms",
        BUREAU_TIMEZONE,
        "off",
        "4549",
        "citygrid-read-test",
    )


def test_a_read_past_its_budget_is_cancelled_and_the_pool_goes_on(database_url: str) -> None:
    slow, after = _run(
        database_url, 50, None, [("SELECT pg_sleep(1)", {}), ("SELECT :n + 1", {"n": 41})]
    )
    assert isinstance(slow, psycopg.errors.QueryCanceled)
    assert after == (42,)


def test_reads_are_prepared_and_their_values_bound(database_url: str) -> None:
    hostile = "x'); DROP TABLE cases; --"
    sql = "SELECT CAST(:text AS text), '100%' || CAST(:n AS text)"
    first, second, prepared = _run(
        database_url,
        1000,
        None,
        [
            (sql, {"text": hostile, "n": 1}),
            (sql, {"text": "again", "n": 2}),
            (
                "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE 'SELECT CAST(%'",
                {},
            ),
        ],
    )
    assert first == (hostile, "100%1") and second == ("again", "100%2")
    assert prepared == (1,)  # one prepared statement, run twice on the pool's one connection
    assert driver_sql(sql) == "SELECT CAST(%(text)s AS text), '100%%' || CAST(%(n)s AS text)"


@pytest.mark.parametrize("refused", ["SELECT * FROM no_such_table", "SELEKT 1"])
def test_a_refused_statement_leaves_the_connection_usable(database_url: str, refused: str) -> None:
    error, after = _run(database_url, 1000, None, [(refused, {}), ("SELECT 1", {})])
    assert isinstance(error, psycopg.Error) and after == (1,)


def test_json_arrives_as_the_bytes_the_server_wrote(database_url: str, engine: Engine) -> None:
    sql = "SELECT json_build_object('名称', CAST(:name AS text), 'n', 1), 'etag'"
    expected = '{"名称" : "城管局", "n" : 1}'.encode()
    [pooled] = _run(database_url, 1000, None, [(sql, {"name": "城管局"})])
    with engine.connect() as conn:
        direct = fetch_json_row(conn, sql, {"name": "城管局"})
    assert pooled == direct == (expected, "etag")  # neither parsed nor decoded; text stays text
