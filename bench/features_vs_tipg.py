"""citygrid against tipg on the same PostGIS: pages, filters, single items and tiles under wrk.

Uses the scaled 启东 of `bench/scaled.py` (1,000,000 cases, 100,000 illegal buildings, 100,000
billboards, kept for later runs), starts both servers (citygrid's requests signed in as an admin)
with the same number of uvicorn workers and no compression, and prints requests per second of
each, their ratio, the CPU each server's processes spent per request (which, unlike requests per
second, hardly depends on what else the machine is doing) and the feature counts each returned.

Run: make bench   (needs `wrk` from Debian and tipg in bench/.venv-tipg; `make bench` installs them)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx
from scaled import citygrid_server, prepare, signed_in, start, stop

from api.settings import DatabaseSettings

ROOT = Path(__file__).resolve().parents[1]
TIPG_PYTHON = ROOT / "bench" / ".venv-tipg" / "bin" / "python"
STREET_BBOX = "121.60,31.76,121.70,31.86"
MONTH = "2023-05-01T00:00:00Z/2023-05-31T23:59:59Z"
FILTER = quote("status = 'parked'")


@dataclass(frozen=True)
class Row:
    """One line of the table: what is asked of both servers."""

    name: str
    citygrid: str
    tipg: str
    counts: bool = True


def rows() -> list[Row]:
    def both(name: str, query: str, layer: str = "cases", counts: bool = True) -> Row:
        return Row(
            name, f"/collections/{layer}/{query}", f"/collections/public.{layer}/{query}", counts
        )

    tiles = [
        both(f"tile z{z}", f"tiles/WebMercatorQuad/{z}/{x}/{y}", counts=False)
        for z, x, y in ((10, 857, 418), (12, 3430, 1672), (14, 13723, 6690), (16, 54893, 26763))
    ]
    # the component census at the county seat's centre (汇龙镇): clusters below z16, points at z16
    component_tiles = [
        both(f"components tile z{z}", f"tiles/WebMercatorQuad/{z}/{x}/{y}", "components", False)
        for z, x, y in ((14, 13728, 6663), (16, 54914, 26654))
    ]
    return [
        both("items limit 10", "items?limit=10"),
        both("items limit 1,000", "items?limit=1000"),
        both("items limit 10,000", "items?limit=10000"),
        both("street bbox, limit 1,000", f"items?limit=1000&bbox={STREET_BBOX}"),
        both("one month (datetime), limit 1,000", f"items?limit=1000&datetime={MONTH}"),
        both("CQL2 filter, limit 1,000", f"items?limit=1000&filter-lang=cql2-text&filter={FILTER}"),
        both("single item", "items/123456", counts=False),
        *tiles,
        *component_tiles,
    ]


@dataclass(frozen=True)
class Load:
    """What one server did under wrk: requests per second, and its processes' CPU per request."""

    rps: float
    cpu_ms: float


def process_group_cpu(pgid: int) -> float:
    """CPU seconds (user and system) used so far by the processes of group `pgid` (a server and
    its workers; the database's own processes are not in it)."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended meanwhile
            continue
        if int(fields[2]) == pgid:  # fields after the name: state, ppid, pgrp, ...
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def rate(url: str, seconds: int, connections: int, headers: dict[str, str], pgid: int) -> Load:
    sent = [part for name, value in headers.items() for part in ("-H", f"{name}: {value}")]
    before = process_group_cpu(pgid)
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "60s", *sent, url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    used = process_group_cpu(pgid) - before
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        sys.exit(f"{url}: {non2xx.group(1)} failed requests")
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    done = re.search(r"(\d+) requests in", out)
    requests = int(done.group(1)) if done else 0
    return Load(float(match.group(1)) if match else 0.0, 1000 * used / max(requests, 1))


def count(url: str, headers: dict[str, str]) -> int | None:
    body = httpx.get(url, headers=headers, timeout=120).json()
    return len(body["features"]) if "features" in body else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--only", default="", help="run only the rows whose name contains this text"
    )
    parser.add_argument(
        "--port", type=int, default=8801, help="citygrid's port; tipg listens on the next one"
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="the demo city as it ships (143,652 cases) instead of the scaled one: quick to load",
    )
    args = parser.parse_args()
    url = prepare(DatabaseSettings(), args.demo)
    plain = url.replace("postgresql+psycopg://", "postgresql://")
    env, auth = signed_in(url)
    ours, theirs = args.port, args.port + 1
    ours_server = citygrid_server(url, ours, args.workers, env)
    tipg = start(
        [
            str(TIPG_PYTHON),
            "-m",
            "uvicorn",
            "tipg.main:app",
            "--port",
            str(theirs),
            "--workers",
            str(args.workers),
            "--log-level",
            "warning",
        ],
        {
            "DATABASE_URL": plain,
            "TIPG_DB_SCHEMAS": '["public"]',
            "TIPG_MAX_FEATURES_PER_QUERY": "10000",
            "TIPG_TABLE_CONFIG__public_cases__datetimecol": "reported_at",
        },
        theirs,
    )
    results = []
    try:
        for row in (r for r in rows() if args.only in r.name):
            a, b = f"http://127.0.0.1:{ours}{row.citygrid}", f"http://127.0.0.1:{theirs}{row.tipg}"
            counts = (count(a, auth), count(b, {})) if row.counts else (None, None)
            la = rate(a, args.seconds, args.connections, auth, ours_server.pid)
            lb = rate(b, args.seconds, args.connections, {}, tipg.pid)
            ra, rb = la.rps, lb.rps
            results.append(
                {
                    "row": row.name,
                    "citygrid_rps": ra,
                    "tipg_rps": rb,
                    "ratio": ra / rb if rb else None,
                    "citygrid_cpu_ms_per_request": la.cpu_ms,
                    "tipg_cpu_ms_per_request": lb.cpu_ms,
                    "citygrid_features": counts[0],
                    "tipg_features": counts[1],
                }
            )
            print(
                f"{row.name:<36} citygrid {ra:8.1f}/s  tipg {rb:8.1f}/s  ×{ra / rb if rb else float('nan'):5.2f}"
                f"  CPU/request {la.cpu_ms:5.2f} / {lb.cpu_ms:5.2f} ms"
                + (f"  features {counts[0]} / {counts[1]}" if row.counts else ""),
                flush=True,
            )
    finally:
        stop(ours_server)
        stop(tipg)
    (ROOT / "bench" / "results-features-vs-tipg.json").write_text(
        json.dumps(results, indent=1, ensure_ascii=False)
    )


if __name__ == "__main__":
    main()
