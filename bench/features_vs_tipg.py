"""citygrid against tipg and pygeoapi on the same PostGIS, and against the database's own cost:
pages, filters, single items and tiles under wrk.

Uses the scaled 启东 of `bench/scaled.py` (1,000,000 cases, 100,000 illegal buildings, 100,000
billboards, kept for later runs), starts the three servers (citygrid's requests signed in as an
admin) with the same number of uvicorn workers and no compression, and prints requests per second
of each, their ratios, the CPU each server's processes spent per request (which, unlike requests
per second, hardly depends on what else the machine is doing) and the feature counts each
returned. For each items row it also replays, with pgbench at wrk's concurrency, the statements
citygrid sent the database for that page (`bench/sqlcost.py`): the database's own cost, which
citygrid's time per request is compared with. Last, the HTTP floor (`bench/floor.py`): what
the same launcher serves when the application answers a constant, the bound of any small row.

pygeoapi is measured on the items rows only: its tile provider for PostgreSQL (MVT-postgresql) is
not configured here, so the tile rows are citygrid and tipg. It names the CQL2 text encoding
`cql-text`.

Run: make bench   (needs `wrk` from Debian, pgbench from PostgreSQL, tipg in bench/.venv-tipg and
pygeoapi in bench/.venv-pygeoapi; `make bench` installs them)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from urllib.parse import quote

import floor
import httpx
import peers
import psycopg
import sqlcost
from scaled import citygrid_server, prepare, signed_in, stop

from api.settings import DatabaseSettings

ROOT = Path(__file__).resolve().parents[1]
STREET_BBOX = "121.60,31.76,121.70,31.86"
MONTH = "2023-05-01T00:00:00Z/2023-05-31T23:59:59Z"
FILTER = quote("status = 'parked'")
WARM_UP_S = 2


@dataclass(frozen=True)
class Row:
    """One line of the table: what is asked of each server (None: not asked of pygeoapi)."""

    name: str
    citygrid: str
    tipg: str
    pygeoapi: str | None = None
    counts: bool = True

    @property
    def items(self) -> bool:
        """Whether the row asks for features (and so has a pygeoapi and an SQL figure)."""
        return self.pygeoapi is not None


def rows() -> list[Row]:
    """The rows of the table, in order."""

    def tile(name: str, z: int, x: int, y: int, layer: str = "cases") -> Row:
        query = f"tiles/WebMercatorQuad/{z}/{x}/{y}"
        return Row(name, f"/collections/{layer}/{query}", f"/collections/public.{layer}/{query}",
                   counts=False)  # fmt: skip

    def items(name: str, query: str, theirs: str | None = None, counts: bool = True) -> Row:
        ours = f"/collections/cases/{query}"
        pygeoapi = f"/collections/cases/{theirs or query}"
        pygeoapi += ("&" if "?" in pygeoapi else "?") + "f=json"
        return Row(name, ours, f"/collections/public.cases/{query}", pygeoapi, counts)

    tiles = [
        tile(f"tile z{z}", z, x, y)
        for z, x, y in ((10, 857, 418), (12, 3430, 1672), (14, 13723, 6690), (16, 54893, 26763))
    ]
    # the component census at the county seat's centre (汇龙镇): clusters below z16, points at z16
    component_tiles = [
        tile(f"components tile z{z}", z, x, y, "components")
        for z, x, y in ((14, 13728, 6663), (16, 54914, 26654))
    ]
    return [
        items("items limit 10", "items?limit=10"),
        items("items limit 1,000", "items?limit=1000"),
        items("items limit 10,000", "items?limit=10000"),
        items(
            "street bbox, limit 1,000",
            f"items?limit=1000&bbox={STREET_BBOX}",
            # pygeoapi turns a CRS84 box into EPSG:4490's latitude-first order and hands that to
            # ST_MakeEnvelope as x, y (no feature found): given in 4490, longitude first, the box
            # reaches the SQL as it is
            f"items?limit=1000&bbox={STREET_BBOX}&bbox-crs={quote(peers.STORAGE_CRS, safe='')}",
        ),
        items("one month (datetime), limit 1,000", f"items?limit=1000&datetime={MONTH}"),
        items(
            "CQL2 filter, limit 1,000",
            f"items?limit=1000&filter-lang=cql2-text&filter={FILTER}",
            f"items?limit=1000&filter-lang=cql-text&filter={FILTER}",
        ),
        items("single item", "items/123456", counts=False),
        *tiles,
        *component_tiles,
    ]


@dataclass(frozen=True)
class Load:
    """What one server did under wrk: requests per second, and its processes' CPU per request
    (None when no request finished)."""

    rps: float
    cpu_ms: float | None

    def figure(self, seconds: int) -> float | str:
        """The rate, or what to say when no request finished in time."""
        return self.rps if self.cpu_ms is not None else f"none in {seconds} s"


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


def settle(pids: list[int], url: str, longest: float = 300) -> None:
    """Wait until the servers are idle: requests wrk gave up on (pygeoapi's take many seconds)
    still run when it ends, and would slow whatever is measured next."""
    plain = url.replace("postgresql+psycopg://", "postgresql://")
    busy = "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND application_name = %s"
    deadline = time.monotonic() + longest
    with psycopg.connect(plain, autocommit=True) as conn:
        while time.monotonic() < deadline:
            before = sum(process_group_cpu(pid) for pid in pids)
            time.sleep(1)
            used = sum(process_group_cpu(pid) for pid in pids) - before
            queries = conn.execute(busy, ("pygeoapi",)).fetchone()
            if used < 0.05 and not (queries and queries[0]):
                return
    print(f"  (the servers were still busy after {longest:.0f} s)", flush=True)


def rate(
    url: str,
    seconds: int,
    connections: int,
    headers: dict[str, str],
    pgid: int,
    idle: Callable[[], None] = lambda: None,
) -> Load:
    """wrk on `url` for `seconds` with `connections` connections, and the CPU group `pgid` spent,
    after a warm-up of WARM_UP_S not counted (pools and caches filled as in a running service)
    and `idle` (waiting for the requests the warm-up left running)."""
    sent = [part for name, value in headers.items() for part in ("-H", f"{name}: {value}")]
    command = ["wrk", "-t2", f"-c{connections}", "--timeout", "60s", *sent, url]
    subprocess.run([*command, f"-d{WARM_UP_S}s"], capture_output=True, check=True)
    idle()
    before = process_group_cpu(pgid)
    out = subprocess.run(
        [*command, f"-d{seconds}s"], capture_output=True, text=True, check=True
    ).stdout
    used = process_group_cpu(pgid) - before
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        sys.exit(f"{url}: {non2xx.group(1)} failed requests")
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    done = re.search(r"(\d+) requests in", out)
    requests = int(done.group(1)) if done else 0
    return Load(
        float(match.group(1)) if match else 0.0, 1000 * used / requests if requests else None
    )


def count(url: str, headers: dict[str, str], timeout: float = 120) -> int | None:
    """How many features the page at `url` holds (None: it is not a collection)."""
    response = httpx.get(url, headers=headers, timeout=timeout)
    response.raise_for_status()
    body = response.json()
    return len(body["features"]) if "features" in body else None


TIMED_OUT = "timed out"


@dataclass
class Measured:
    """One row's figures: requests (or, for SQL, transactions) per second, CPU per request and
    feature counts; pygeoapi's rate is TIMED_OUT when its first request took too long."""

    row: str
    citygrid_rps: float | str
    tipg_rps: float | str
    pygeoapi_rps: float | str | None = None
    sql_tps: float | None = None
    citygrid_cpu_ms_per_request: float | None = None
    tipg_cpu_ms_per_request: float | None = None
    pygeoapi_cpu_ms_per_request: float | None = None
    citygrid_features: int | None = None
    tipg_features: int | None = None
    pygeoapi_features: int | None = None
    sql: list[str] | None = None

    def ratios(self) -> tuple[float | None, float | None, float | None]:
        """citygrid÷tipg, citygrid÷pygeoapi (rates) and citygrid's time per request ÷ SQL's."""
        ours = self.citygrid_rps if isinstance(self.citygrid_rps, float) else None
        if not ours:
            return None, None, None

        def by(theirs: float | str | None) -> float | None:
            return ours / theirs if isinstance(theirs, float) and theirs else None

        return (
            by(self.tipg_rps),
            by(self.pygeoapi_rps),
            self.sql_tps / ours if self.sql_tps else None,
        )


HEADER = (
    "| request (cases) | citygrid/s | tipg/s | pygeoapi/s | database (SQL)/s "
    "| citygrid÷tipg | citygrid÷pygeoapi | citygrid time ÷ SQL time |\n"
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
)


def _figure(value: float | str | None, digits: int = 1) -> str:
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return value or ""


def _per_s(value: float | str | None) -> str:
    return f"{value:9.1f}/s" if isinstance(value, float) else f"{value or '-':>11}"


def table_row(m: Measured, items: bool) -> str:
    """One line of the README's table."""
    by_tipg, by_pygeoapi, by_sql = m.ratios()
    pygeoapi = m.pygeoapi_rps if items else "not measured"
    cells = [m.row, _figure(m.citygrid_rps), _figure(m.tipg_rps), _figure(pygeoapi)]
    cells += [_figure(m.sql_tps), _figure(by_tipg, 2), _figure(by_pygeoapi, 2), _figure(by_sql, 2)]
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    """Measure every row (or those `--only` names) and print the table."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--only", default="", help="run only the rows whose name contains this text"
    )
    parser.add_argument(
        "--port", type=int, default=8801, help="citygrid's port; tipg and pygeoapi the next ones"
    )
    parser.add_argument(
        "--peer-timeout",
        type=float,
        default=60,
        help="seconds pygeoapi may take for a row's first request before the row is 'timed out'",
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="the demo city as it ships (143,652 cases) instead of the scaled one: quick to load",
    )
    args = parser.parse_args()
    chosen = [r for r in rows() if args.only in r.name]
    url = prepare(DatabaseSettings(), args.demo)
    env, auth = signed_in(url)
    sent = sqlcost.statements(url, env, auth, [r.citygrid for r in chosen if r.items])
    ours, theirs, third = args.port, args.port + 1, args.port + 2
    results: list[Measured] = []
    with peers.scratch() as folder:
        servers = [citygrid_server(url, ours, args.workers, env)]
        try:
            servers.append(peers.tipg(url, theirs, args.workers))
            servers.append(peers.pygeoapi(url, third, args.workers, folder))
            pids = [s.pid for s in servers]
            for row in chosen:
                results.append(measure(row, args, (ours, theirs, third), pids, auth, url, sent))
            settle(pids, url)
        finally:
            for server in servers:
                stop(server)
    bare = floor.server(third + 1, args.workers)
    try:
        at_floor = rate(
            f"http://127.0.0.1:{third + 1}/", args.seconds, args.connections, {}, bare.pid
        )
    finally:
        stop(bare)
    print(HEADER)
    for m, row in zip(results, chosen, strict=True):
        print(table_row(m, row.items))
    print(
        f"\nHTTP floor (an ASGI app answering a constant feature, same launcher, "
        f"{args.workers} workers, wrk -c{args.connections}): {at_floor.rps:,.1f}/s, "
        f"CPU/request {at_floor.cpu_ms or 0:.2f} ms"
    )
    (ROOT / "bench" / "results-features-vs-tipg.json").write_text(
        json.dumps(
            {"rows": [vars(m) for m in results], "http_floor_per_s": at_floor.rps},
            indent=1,
            ensure_ascii=False,
        )
    )


def measure(
    row: Row,
    args: argparse.Namespace,
    ports: tuple[int, int, int],
    pids: list[int],
    auth: dict[str, str],
    url: str,
    sent: dict[str, list[str]],
) -> Measured:
    """One row: each server under wrk once the others are idle, the SQL citygrid sent for the
    page under pgbench, and pygeoapi only if its first answer came in time."""
    base = [f"http://127.0.0.1:{port}" for port in ports]
    ours, tipg = base[0] + row.citygrid, base[1] + row.tipg
    s = args.seconds
    settle(pids, url)
    settled = partial(settle, pids, url)
    la = rate(ours, s, args.connections, auth, pids[0], settled)
    settle(pids, url)
    lb = rate(tipg, s, args.connections, {}, pids[1], settled)
    m = Measured(row.name, la.figure(s), lb.figure(s), None, None, la.cpu_ms, lb.cpu_ms)
    if row.counts:
        m.citygrid_features, m.tipg_features = count(ours, auth), count(tipg, {})
    if row.pygeoapi is not None:
        m.sql = sent[row.citygrid]
        settle(pids, url)
        m.sql_tps = sqlcost.rate(url, m.sql, s, args.connections)
        theirs = base[2] + row.pygeoapi
        try:
            found = count(theirs, {}, args.peer_timeout)
        except httpx.TimeoutException:
            m.pygeoapi_rps = TIMED_OUT
        else:
            m.pygeoapi_features = found if row.counts else None
            settle(pids, url)
            lc = rate(theirs, s, args.connections, {}, pids[2], settled)
            m.pygeoapi_rps, m.pygeoapi_cpu_ms_per_request = lc.figure(s), lc.cpu_ms
    by_tipg, by_pygeoapi, by_sql = m.ratios()
    features = [m.citygrid_features, m.tipg_features, m.pygeoapi_features]
    cpu = [m.citygrid_cpu_ms_per_request, m.tipg_cpu_ms_per_request, m.pygeoapi_cpu_ms_per_request]
    print(
        f"{row.name:<36} citygrid {_per_s(m.citygrid_rps)}  tipg {_per_s(m.tipg_rps)}"
        f"  pygeoapi {_per_s(m.pygeoapi_rps)}  SQL {_per_s(m.sql_tps)}"
        f"  ×{_figure(by_tipg, 2) or '-'} ×{_figure(by_pygeoapi, 2) or '-'}"
        f" SQL×{_figure(by_sql, 2) or '-'}"
        f"  CPU/request {' / '.join(_figure(c, 2) or '-' for c in cpu)} ms"
        + (f"  features {' / '.join(str(f) for f in features)}" if row.counts else ""),
        flush=True,
    )
    return m


if __name__ == "__main__":
    main()
