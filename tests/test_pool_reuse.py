"""Kept-alive clients are served on the connections the pools keep: a burst of small pages from
more clients than a worker's share opens no database session beyond the pools' own."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
from sqlalchemy import Engine, make_url, text

from tests.accounts import bearer, ensure_account
from tests.support import live_server

CLIENTS = 8
REQUESTS_EACH = 60
PATHS = ("/collections/cases/items?limit=10", "/collections/cases/items/1")


def _sessions(engine: Engine, database: str) -> tuple[int, int]:
    """Sessions opened on the database so far, and those open now."""
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_stat_clear_snapshot()"))
        opened, open_now = conn.execute(
            text(
                "SELECT sessions, (SELECT count(*) FROM pg_stat_activity WHERE datname = :db) "
                "FROM pg_stat_database WHERE datname = :db"
            ),
            {"db": database},
        ).one()
        return int(opened), int(open_now)


def _burst(base: str, headers: dict[str, str]) -> list[int]:
    def client(_: int) -> list[int]:
        with httpx.Client(base_url=base, headers=headers, timeout=30) as http:
            return [http.get(PATHS[i % 2]).status_code for i in range(REQUESTS_EACH)]

    with ThreadPoolExecutor(CLIENTS) as pool:
        return [status for statuses in pool.map(client, range(CLIENTS)) for status in statuses]


def test_a_burst_of_kept_alive_clients_opens_no_session_beyond_the_pools(
    database_url: str, engine: Engine
) -> None:
    ensure_account(engine, "pool-reader", "admin")
    database = make_url(database_url).database
    assert database is not None
    headers = bearer("pool-reader")
    with live_server(database_url, CITYGRID_WORKERS="2") as base:
        first = _burst(base, headers)  # the pools grow to what the burst needs
        opened_before, open_before = _sessions(engine, database)
        again = _burst(base, headers)
        opened_after, open_after = _sessions(engine, database)
    # sessions opened and closed again: not those a pool still keeps (it may grow a little more)
    closed = (opened_after - opened_before) - (open_after - open_before)
    assert set(first) | set(again) <= {200, 404}, set(first) | set(again)
    assert again.count(200) >= len(again) // 2
    assert closed <= 1, f"{closed} database sessions opened and closed during the second burst"
