"""Flat as counties are added: one county's requests on a one-county and a 20-county database.

Two databases on the project's cluster, kept for later runs:

- `citygrid_counties_{cases}_one`: 启东 as the demo loader makes it, at `--cases` cases a year
  (2023), and a second year (2024): the generator draws one year and a second load would replace
  the first, so the year's cases are copied once more, every moment a year later.
- `citygrid_counties_{cases}_{n}`: a copy of the first (`CREATE DATABASE … TEMPLATE`) and n - 1
  more counties of 南通, 盐城 and 泰州 with their real codes, each a copy of 启东's grids,
  components and cases moved by whole kilometres to its own square of a lattice (no two overlap),
  under its own code (the codes of grids and components begin with the county's). The triggers do
  on these inserts what they do on any insert: the cases' Gauss-Krüger zone, position and 250 m
  cell, the grids' areas and units, the layer versions. The copies keep 启东's place names.

Then two citygrid servers (uvicorn, 2 workers each), one per database, answer the same requests of
an admin of 启东 in turn, and a leader holding every county asks the 20-county one for the city's
heatmap. Tiles are asked cold: before each, an empty UPDATE bumps the cases' layer version, so the
tile cache (keyed by it) cannot answer; the tile's ETag, which names the version, is checked.

Run: .venv/bin/python bench/counties.py [--cases 150000] [--counties 20] [--repeat 9]
(small: --cases 5000 --counties 3)
"""

from __future__ import annotations

import argparse
import atexit
import json
import math
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import shapely
from scaled import citygrid_server, signed_in_as, stop
from shapely import affinity
from sqlalchemy import Connection, Engine, text

from api.settings import DatabaseSettings
from layers.accounts import users
from layers.demo import load as demo_city
from layers.places import counties
from layers.places.boundary import County
from layers.store import db, migrate

ROOT = Path(__file__).resolve().parents[1]
PORT = 8805  # the one-county server; the 20-county one listens on the next port
DEMO_CASES = 143_652  # the demo's cases a year at scale 1 (as bench/scaled.py counts them)
SEED, YEAR = 20231231, 2023
SEAT = (121.657, 31.808)  # 汇龙镇, 启东's seat
STREET_BBOX = "121.60,31.76,121.70,31.86"
STEP_KM = 60  # 启东 spans about 51 km × 56 km: one lattice square per county
KM_LON = 111.320 * math.cos(math.radians(SEAT[1]))  # km per degree at 启东's latitude
KM_LAT = 110.574
ADMIN, LEADER = "counties-admin", "counties-leader"
# (adcode, name, lattice column west of 启东, row north of it): roughly where each county lies
COUNTIES = [
    ("320614", "海门区", 1, 0), ("320602", "崇川区", 2, 0), ("321282", "靖江市", 3, 0),
    ("321283", "泰兴市", 4, 0), ("320623", "如东县", 0, 1), ("320612", "通州区", 1, 1),
    ("320682", "如皋市", 2, 1), ("321202", "海陵区", 3, 1), ("321281", "兴化市", 4, 1),
    ("320981", "东台市", 1, 2), ("320685", "海安市", 2, 2), ("320904", "大丰区", 3, 2),
    ("320925", "建湖县", 4, 2), ("320903", "盐都区", 5, 2), ("320924", "射阳县", 1, 3),
    ("320902", "亭湖区", 2, 3), ("320922", "滨海县", 3, 3), ("320923", "阜宁县", 4, 3),
    ("320921", "响水县", 5, 3),
]  # fmt: skip
CODES = ("code", "parent_code", "grid_code", "component_code")  # they begin with the adcode
LINKS = ("camera_id", "merchant_id", "garbage_point_id", "merged_into")  # rows not copied
COPIED = ("grids", "components", "component_lines", "component_areas", "cases")
NOT_SHIFTED = ("created_at", "updated_at")


def columns(conn: Connection, table: str) -> list[tuple[str, str]]:
    """The columns of `table` an INSERT … SELECT copies (not the id), with their types."""
    rows = conn.execute(
        text("""
        SELECT column_name, data_type FROM information_schema.columns
        WHERE table_schema = 'public' AND table_name = :t AND column_name <> 'id'
        ORDER BY ordinal_position
    """),
        {"t": table},
    )
    return [(str(n), str(t)) for n, t in rows]


def copy_rows(conn: Connection, table: str, where: str, values: dict[str, str]) -> int:
    """INSERT … SELECT the rows of `table` meeting `where`, some columns replaced by `values`."""
    names = columns(conn, table)
    listed = ", ".join(f'"{n}"' for n, _ in names)
    chosen = ", ".join(values.get(n, f'"{n}"') for n, _ in names)
    found = conn.execute(
        text(f'INSERT INTO "{table}" ({listed}) SELECT {chosen} FROM "{table}" WHERE {where}')
    )
    return found.rowcount


def second_year(conn: Connection) -> int:
    """Copy 启东's cases of YEAR into the next year, every moment a year later."""
    moments = {
        n: f"\"{n}\" + interval '1 year'"
        for n, kind in columns(conn, "cases")
        if kind.startswith("timestamp") and n not in NOT_SHIFTED
    }
    where = f"reported_at >= '{YEAR}-01-01' AND reported_at < '{YEAR + 1}-01-01'"
    return copy_rows(conn, "cases", where, moments | {n: "NULL" for n in LINKS})


def offset(column: int, row: int) -> tuple[float, float]:
    """Degrees of longitude and latitude of a lattice square's whole-kilometre offset."""
    return -column * STEP_KM / KM_LON, row * STEP_KM / KM_LAT


def add_county(conn: Connection, adcode: str, name: str, column: int, row: int) -> int:
    """Store the county and copy 启东's grids, components and cases into it; cases copied."""
    dx, dy = offset(column, row)
    stored = counties.find(conn, demo_city.ADCODE)
    assert stored is not None
    boundary = conn.execute(
        text("SELECT ST_AsBinary(boundary) FROM counties WHERE adcode = :a"),
        {"a": demo_city.ADCODE},
    ).scalar_one()
    moved = affinity.translate(shapely.from_wkb(bytes(boundary)), dx, dy)
    seat = affinity.translate(shapely.Point(*stored.centre), dx, dy)
    counties.add(conn, County(adcode, name, moved), seat)
    values = {
        "adcode": f"'{adcode}'",
        "geom": f"ST_Translate(geom, {dx!r}, {dy!r})",
        **{c: f"overlay({c} placing '{adcode}' from 1 for 6)" for c in CODES},
        **{c: "NULL" for c in LINKS},
    }
    copied = 0
    for table in COPIED:
        here = {n: v for n, v in values.items() if n in dict(columns(conn, table))}
        copied = copy_rows(conn, table, f"adcode = '{demo_city.ADCODE}'", here)
    return copied


def vacuum(engine: Engine) -> None:
    """VACUUM ANALYZE: statistics for the planner, and pages all-visible for index-only scans."""
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))


def ensure_account(engine: Engine, name: str, role: str, adcodes: list[str]) -> None:
    """An account of `role` holding `adcodes` (its password never used: tokens are issued)."""
    with engine.begin() as conn:
        if users.find(conn, name) is None:
            users.add(conn, name, role, users.hash_password(name * 2), "bench", counties=adcodes)


def prepare_one(settings: DatabaseSettings, cases: int) -> str:
    """The one-county database (loaded once); its URL."""
    cluster = settings.cluster()
    name = f"citygrid_counties_{cases}_one"
    db.ensure_database(cluster.url("postgres"), name)
    engine = db.make_engine(cluster.url(name))
    try:
        migrate.upgrade(engine)
        with engine.connect() as conn:
            count = "SELECT count(*) FROM cases WHERE reported_at >= :d"
            first = conn.execute(text(count), {"d": f"{YEAR}-01-01"}).scalar_one()
            second = conn.execute(text(count), {"d": f"{YEAR + 1}-01-01"}).scalar_one()
        if first < 0.9 * cases:
            started = time.perf_counter()
            scale = demo_city.Scale(cases=cases / DEMO_CASES, fume_months=1)
            demo_city.load(engine, SEED, YEAR, force=True, scale=scale)
            print(f"{name}: 启东 loaded in {time.perf_counter() - started:.0f} s", flush=True)
            second = 0
        if second == 0:
            started = time.perf_counter()
            with engine.begin() as conn:
                copied = second_year(conn)
            vacuum(engine)
            print(
                f"{name}: {copied:,} cases of {YEAR + 1} in {time.perf_counter() - started:.0f} s",
                flush=True,
            )
        ensure_account(engine, ADMIN, "admin", [demo_city.ADCODE])
    finally:
        engine.dispose()
    return cluster.url(name)


def prepare_many(settings: DatabaseSettings, cases: int, n: int) -> str:
    """The n-county database, a copy of the one-county one with n - 1 counties added; its URL."""
    cluster = settings.cluster()
    one, name = f"citygrid_counties_{cases}_one", f"citygrid_counties_{cases}_{n}"
    admin = db.make_engine(cluster.url("postgres"))
    try:
        with admin.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            found = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
            if found.first() is None:
                conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{one}"'))
    finally:
        admin.dispose()
    engine = db.make_engine(cluster.url(name))
    added = False
    try:
        migrate.upgrade(engine)  # the copy was made at the revision of its day
        for adcode, county, column, row in COUNTIES[: n - 1]:
            with engine.begin() as conn:  # one county a transaction: an interrupted load resumes
                if counties.find(conn, adcode) is not None:
                    continue
                started = time.perf_counter()
                copied = add_county(conn, adcode, county, column, row)
            added = True
            print(
                f"{name}: {county} ({adcode}), {copied:,} cases, "
                f"{time.perf_counter() - started:.0f} s",
                flush=True,
            )
        if added:
            started = time.perf_counter()
            vacuum(engine)
            print(f"{name}: VACUUM ANALYZE {time.perf_counter() - started:.0f} s", flush=True)
        adcodes = [demo_city.ADCODE, *(c[0] for c in COUNTIES[: n - 1])]
        ensure_account(engine, LEADER, "leader", adcodes)
    finally:
        engine.dispose()
    return cluster.url(name)


def tile_at(zoom: int, lon: float, lat: float) -> tuple[int, int]:
    """The WebMercatorQuad tile column and row holding a point."""
    n = 2**zoom
    y = (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2
    return int((lon + 180) / 360 * n), int(y * n)


@dataclass(frozen=True)
class Request:
    """One row of the table: a GET and whether it is a tile (asked cold)."""

    name: str
    path: str
    params: dict[str, str | int]
    tile: bool = False


def requests() -> list[Request]:
    """The requests of 启东's admin, asked of both databases."""
    year: dict[str, str | int] = {"from": f"{YEAR + 1}-01-01", "to": f"{YEAR + 1}-12-31"}
    month: dict[str, str | int] = {"from": f"{YEAR + 1}-05-01", "to": f"{YEAR + 1}-05-31"}
    tiles = []
    for z in (10, 14):
        x, y = tile_at(z, *SEAT)
        path = f"/collections/cases/tiles/WebMercatorQuad/{z}/{x}/{y}"
        tiles.append(Request(f"tile z{z} (seat, cold)", path, {}, tile=True))
    return [
        Request("items limit 1,000", "/collections/cases/items", {"limit": 1000}),
        Request(
            "street bbox, limit 1,000",
            "/collections/cases/items",
            {"limit": 1000, "bbox": STREET_BBOX},
        ),
        *tiles,
        Request("heatmap z10, a year", "/stats/heatmap", {"zoom": 10, **year}),
        Request("indicators, a month", "/stats/indicators", month),
        Request("indicators, a year", "/stats/indicators", year),
    ]


def bump(engine: Engine) -> int:
    """Bump the cases' layer version with an UPDATE of no row; the new version."""
    with engine.begin() as conn:
        conn.execute(text("UPDATE cases SET status = status WHERE false"))
        found = conn.execute(text("SELECT version FROM layer_versions WHERE layer = 'cases'"))
        return int(found.scalar_one())


def timed(
    client: httpx.Client, request: Request, engine: Engine, check: bool = True
) -> tuple[float, bytes]:
    """Seconds and body of one request; a tile after a version bump, checked as built anew."""
    version = None
    if request.tile:
        version = bump(engine)
        time.sleep(0.3)  # the servers learn of the new version by a notification
    started = time.perf_counter()
    answer = client.get(request.path, params=request.params)
    seconds = time.perf_counter() - started
    answer.raise_for_status()
    if check and version is not None and f"-{version}-" not in answer.headers.get("etag", ""):
        raise SystemExit(f"{request.name}: not built at version {version}: {answer.headers}")
    return seconds, answer.content


def same(body: object) -> str:
    """What must be equal in both databases' answers (not links, nor the estimated count)."""
    if isinstance(body, dict) and "features" in body:
        return json.dumps([f["id"] for f in body["features"]])
    if isinstance(body, dict) and "bins" in body:
        return str(body["total"])
    return json.dumps(body.get("rows") if isinstance(body, dict) else body)


def measure(
    clients: list[httpx.Client], engines: list[Engine], request: Request, repeat: int
) -> list[float]:
    """Median milliseconds of each client, asked in turn so both see the same machine load."""
    # the plan, the pool and the caches of PostgreSQL; the same answer from both databases
    bodies = [timed(c, request, e)[1] for c, e in zip(clients, engines, strict=True)]
    if not request.tile and len({same(json.loads(b)) for b in bodies}) > 1:
        raise SystemExit(f"{request.name}: the databases answer differently")
    runs: list[list[float]] = [[] for _ in clients]
    for n in range(repeat):
        # in turn, the first one first every other time: neither follows the other's leftovers
        for k in sorted(range(len(clients)), reverse=bool(n % 2)):
            runs[k].append(timed(clients[k], request, engines[k])[0])
    return [statistics.median(r) * 1000 for r in runs]


def city_heatmap(
    city: Request, headers: dict[str, str], engine: Engine, repeat: int
) -> dict[str, object]:
    """Median milliseconds of the city's heatmap, asked by the leader of every county."""
    with httpx.Client(
        base_url=f"http://127.0.0.1:{PORT + 1}", headers=headers, timeout=600
    ) as leader:
        timed(leader, city, engine)
        ms = statistics.median(timed(leader, city, engine)[0] for _ in range(repeat)) * 1000
        body = json.loads(timed(leader, city, engine)[1])
    print(
        f"{city.name:<28} {'':>10} {ms:9.1f} ms  (target < 300; {body['total']:,} cases, "
        f"{len(body['bins']):,} bins)",
        flush=True,
    )
    return {"request": city.name, "many_ms": ms, "cases": body["total"]}


def main() -> None:
    """Prepare both databases, start a server on each, time the requests, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=150_000, help="cases a year per county")
    parser.add_argument("--counties", type=int, default=20, help="counties of the large database")
    parser.add_argument("--repeat", type=int, default=9, help="timed runs per request and server")
    parser.add_argument("--prepare-only", action="store_true", help="load the databases, no more")
    parser.add_argument("--only", default="", help="only the rows whose name contains this text")
    args = parser.parse_args()
    settings = DatabaseSettings()
    cluster = settings.cluster()
    if cluster.up(print):  # started here: stopped again when the benchmark ends
        atexit.register(cluster.down, print)
    urls = [prepare_one(settings, args.cases)]
    urls.append(prepare_many(settings, args.cases, args.counties))
    if args.prepare_only:
        return
    engines = [db.make_engine(u) for u in urls]
    sizes = []
    for engine in engines:
        with engine.connect() as conn:
            sizes.append(conn.execute(text("SELECT count(*) FROM cases")).scalar_one())
    signed = [signed_in_as(u, [ADMIN, LEADER] if k else [ADMIN]) for k, u in enumerate(urls)]
    servers = []
    results: list[dict[str, object]] = []
    try:
        for k, (url, (env, _)) in enumerate(zip(urls, signed, strict=True)):
            servers.append(citygrid_server(url, PORT + k, 2, env))
        clients = [
            httpx.Client(base_url=f"http://127.0.0.1:{PORT + k}", headers=h[ADMIN], timeout=600)
            for k, (_, h) in enumerate(signed)
        ]
        print(
            f"cases: {sizes[0]:,} (1 county) and {sizes[1]:,} ({args.counties} counties); "
            f"median of {args.repeat}",
            flush=True,
        )
        print(f"{'request':<28} {'1 county':>10} {f'{args.counties} counties':>12} {'ratio':>7}")
        for request in (r for r in requests() if args.only in r.name):
            one, many = measure(clients, engines, request, args.repeat)
            results.append({"request": request.name, "one_ms": one, "many_ms": many})
            print(
                f"{request.name:<28} {one:8.1f} ms {many:9.1f} ms  ×{many / one:4.2f}"
                f"{'' if many / one <= 1.5 else '  (target ≤ 1.5)'}",
                flush=True,
            )
        city = Request(
            "city heatmap z9, a year",
            "/stats/heatmap",
            {"zoom": 9, "from": f"{YEAR + 1}-01-01", "to": f"{YEAR + 1}-12-31"},
        )
        if args.only in city.name:
            results.append(city_heatmap(city, signed[1][1][LEADER], engines[1], args.repeat))
        for client in clients:
            client.close()
    finally:
        for server in servers:
            stop(server)
        for engine in engines:
            engine.dispose()
    (ROOT / "bench" / "results-counties.json").write_text(
        json.dumps(
            {"cases": sizes, "counties": args.counties, "rows": results},
            indent=1,
            ensure_ascii=False,
        )
    )


if __name__ == "__main__":
    main()
