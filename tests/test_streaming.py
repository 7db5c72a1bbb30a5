"""Large pages stream from a server-side cursor; clients that leave mid-way harm no one else."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.accounts import bearer, ensure_account
from tests.support import live_server

LAYERS = ("cases", "grids", "billboards", "illegal_buildings", "dust_sites", "parking_lots")


def test_abandoned_streams_do_not_share_connections(
    database_url: str, demo: dict[str, int]
) -> None:
    """Many large pages at once, two in three dropped after their first bytes: every answer is
    whole or cut by its own client only, never a 5xx from a connection handed to two requests."""
    ensure_account(database_url, "admin", "admin")
    with live_server(database_url) as base:
        headers = bearer("admin")

        def fetch(i: int) -> tuple[int, bool]:
            url = f"{base}/collections/{LAYERS[i % len(LAYERS)]}/items?limit=2000"
            with (
                httpx.Client(timeout=120) as client,
                client.stream("GET", url, headers=headers) as r,
            ):
                if i % 3:
                    next(r.iter_bytes(1024), b"")  # read a little, then hang up
                    return r.status_code, True
                body = r.read()
                return r.status_code, body.endswith(b"}")

        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(fetch, range(240)))
        statuses = sorted({status for status, _ in answers})
        assert statuses == [200], statuses
        assert all(whole for _, whole in answers)
        # the server is still whole afterwards
        page = httpx.get(f"{base}/collections/cases/items?limit=2000", headers=headers, timeout=60)
        assert page.status_code == 200 and page.json()["numberReturned"] == 2000
