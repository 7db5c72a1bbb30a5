"""Heatmap of 1,000,000 cases: bins from `GET /stats/heatmap` against sending every point.

On the scaled 启东 of `bench/scaled.py` (one year, 1,000,000 cases), through a real uvicorn
server signed in as an admin: the time and payload of heatmap requests a leader's map makes
(whole county and year at zooms 10-12, a town at zoom 14, one month, one class), and of the
naive path, paging every case of the year out of `/collections/cases/items` (10,000 a page,
one property) for the browser to bin. Checks that the weights add up to the cases matched.

Run: .venv/bin/python bench/heatmap.py [--repeat 7] [--skip-naive] [--database NAME] [--port N]
(`--database`: another database of the cluster holding the scaled city, a copy made with
`CREATE DATABASE name TEMPLATE citygrid_bench`, so one branch's migrations leave the shared one be.)
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import httpx
from scaled import DATABASE, citygrid_server, prepare, signed_in, stop
from sqlalchemy import text

from api.settings import DatabaseSettings
from layers.store import db

ROOT = Path(__file__).resolve().parents[1]
PORT = 8803
SEAT = "121.60,31.76,121.70,31.86"
YEAR = {"from": "2023-01-01", "to": "2023-12-31"}
REQUESTS = [
    ("county, year, zoom 10", {"zoom": 10, **YEAR}, "TRUE"),
    ("county, year, zoom 11", {"zoom": 11, **YEAR}, "TRUE"),
    ("county, year, zoom 12", {"zoom": 12, **YEAR}, "TRUE"),
    (
        "town, year, zoom 14",
        {"zoom": 14, "bbox": SEAT, **YEAR},
        "geom && ST_MakeEnvelope(121.60, 31.76, 121.70, 31.86, 4490)",
    ),
    (
        "county, May, zoom 11",
        {"zoom": 11, "from": "2023-05-01", "to": "2023-05-31"},
        "reported_at >= '2023-05-01' AND reported_at < '2023-06-01'",
    ),
    (
        "county, year, class E05",
        {"zoom": 11, "category": "E05", **YEAR},
        "category_code LIKE 'E05%'",
    ),
]


def timed(client: httpx.Client, path: str, params: dict[str, object]) -> tuple[float, bytes]:
    started = time.perf_counter()
    answer = client.get(path, params=params)
    answer.raise_for_status()
    return time.perf_counter() - started, answer.content


def naive(client: httpx.Client) -> tuple[float, int, int]:
    """Every case of the year, page after page, as a browser would have to fetch it."""
    started, size, features = time.perf_counter(), 0, 0
    url: str | None = "/collections/cases/items"
    params: dict[str, object] | None = {
        "limit": 10_000,
        "datetime": "2023-01-01T00:00:00+08:00/2023-12-31T23:59:59+08:00",
        "properties": "category_code",
    }
    while url:
        answer = client.get(url, params=params)
        answer.raise_for_status()
        size += len(answer.content)
        body = answer.json()
        features += len(body["features"])
        url = next((link["href"] for link in body["links"] if link["rel"] == "next"), None)
        params = None
    return time.perf_counter() - started, size, features


def main() -> None:
    """Start a server on the scaled city, time the requests, print and save the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="timed runs per request")
    parser.add_argument("--skip-naive", action="store_true", help="skip paging every point")
    parser.add_argument("--database", help=f"the database of the scaled city (default {DATABASE})")
    parser.add_argument(
        "--port", type=int, default=PORT, help=f"the server's port (default {PORT})"
    )
    args = parser.parse_args()
    url = prepare(DatabaseSettings(), database=args.database)
    engine = db.make_engine(url)
    env, headers = signed_in(url)
    server = citygrid_server(url, args.port, 1, env)
    results = []
    try:
        with httpx.Client(
            base_url=f"http://127.0.0.1:{args.port}", headers=headers, timeout=600
        ) as client:
            for name, params, where in REQUESTS:
                timed(client, "/stats/heatmap", params)  # warm the cache and the plan
                runs = [timed(client, "/stats/heatmap", params) for _ in range(args.repeat)]
                body = json.loads(runs[-1][1])
                with engine.connect() as conn:
                    year = "reported_at >= '2023-01-01' AND reported_at < '2024-01-01'"
                    expected = conn.execute(
                        text(f"SELECT count(*) FROM cases WHERE {where} AND {year}")
                    ).scalar_one()
                if sum(b[2] for b in body["bins"]) != expected:
                    raise SystemExit(f"{name}: weights add up to {body['total']}, not {expected}")
                seconds = [t for t, _ in runs]
                results.append(
                    {
                        "request": name,
                        "cases": expected,
                        "bins": len(body["bins"]),
                        "cell_m": body["cell_m"],
                        "best_ms": min(seconds) * 1000,
                        "median_ms": statistics.median(seconds) * 1000,
                        "bytes": len(runs[-1][1]),
                    }
                )
                r = results[-1]
                print(
                    f"{name:<26} {r['cases']:>9,} cases  {r['bins']:>6,} bins of {r['cell_m']:>6.0f} m"
                    f"  best {r['best_ms']:6.1f} ms  median {r['median_ms']:6.1f} ms"
                    f"  {r['bytes'] / 1024:8.1f} KiB",
                    flush=True,
                )
            if not args.skip_naive:
                seconds, size, features = naive(client)
                whole = results[0]
                print(
                    f"{'naive: every point':<26} {features:>9,} cases  "
                    f"{seconds:6.1f} s  {size / 1024 / 1024:8.1f} MiB  "
                    f"(heatmap ×{seconds * 1000 / whole['median_ms']:,.0f} faster, "
                    f"×{size / whole['bytes']:,.0f} smaller)",
                    flush=True,
                )
                results.append(
                    {
                        "request": "naive: every point",
                        "cases": features,
                        "seconds": seconds,
                        "bytes": size,
                    }
                )
    finally:
        stop(server)
        engine.dispose()
    (ROOT / "bench" / "results-heatmap.json").write_text(
        json.dumps(results, indent=1, ensure_ascii=False)
    )


if __name__ == "__main__":
    main()
