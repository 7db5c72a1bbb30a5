"""Fifty inspectors in the field at once: latency and throughput of citygrid under their mix.

Copies the demo city as it ships (`citygrid_bench_demo`, see `scaled.py`) into a scratch database
(`citygrid_bench_field`, dropped at the end), starts citygrid under uvicorn with `--workers`, and
signs in the first `--inspectors` demo inspectors, each holding their own patrol grids. Each
inspector then works in a closed loop for `--seconds`, pausing a random 0.5–1.5 × `--think`
seconds between actions (a phone in a hand, not a script): the open cases of the patrol area, a
page of a patrol layer over part of the area, a vector tile of the area at zoom 14–16, and, every
tenth action, a case reported with a photo (multipart, as the inspector's page sends it). It
prints each kind's requests and latency percentiles, the whole mix's requests per second, p95 and
p99, the errors (any answer but 2xx), and checks that every case acknowledged (201) is stored
with its photo. The load generator runs on the same machine as the servers and the database.

The first `--warmup` seconds (default 10) of the same load are run before and not counted: the
figures are of a server in service, not of its first requests (its statement caches and the
database's buffers empty); the warm-up's own p99 is printed beside them.

Run: .venv/bin/python bench/field_load.py [--inspectors 50] [--seconds 60] [--workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import statistics
import time
from collections import defaultdict
from dataclasses import dataclass, field

import httpx
from scaled import DEMO_DATABASE, citygrid_server, prepare, signed_in_as, stop
from sqlalchemy import create_engine, text

from api.settings import DatabaseSettings
from layers.demo import accounts as demo_accounts
from layers.registry import GRIDS
from layers.store import db
from layers.store.versions import is_current

DATABASE = "citygrid_bench_field"
PAGED = ("billboards", "illegal_buildings", "dust_sites", "components", "merchants", "restaurants")
TILED = ("cases", "components", "merchants", "billboards", "garbage_points")
CATEGORY = "E0102"  # an event category every county's catalogue has
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 64 + b"\xff\xd9"  # 16 KiB
TARGETS = {"p95": 300.0, "p99": 600.0}  # ms, issue 19 item 4


@dataclass
class Inspector:
    """A demo inspector: name, header, the patrol area's box and points inside it."""

    name: str
    header: dict[str, str]
    box: tuple[float, float, float, float]
    points: list[tuple[float, float]]


@dataclass
class Tally:
    """Every request's kind, status and milliseconds; the cases acknowledged."""

    times: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    examples: list[str] = field(default_factory=list)
    cases: list[int] = field(default_factory=list)


def copy_demo(settings: DatabaseSettings) -> str:
    """A scratch copy of the demo city's benchmark database; its URL."""
    prepare(settings, demo=True)
    cluster = settings.cluster()
    admin = create_engine(cluster.url("postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)"))
        conn.execute(text(f"CREATE DATABASE {DATABASE} TEMPLATE {DEMO_DATABASE}"))
    admin.dispose()
    url = cluster.url(DATABASE)
    engine = db.make_engine(url)
    try:
        with engine.begin() as conn:
            demo_accounts.ensure_accounts(conn)  # the inspectors and their grids, as `run` makes
    finally:
        engine.dispose()
    return url


def patrols(url: str, count: int) -> list[Inspector]:
    """The first `count` inspectors holding current grids, each with 20 points inside them (not
    yet signed in)."""
    engine = db.make_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(f"""
                WITH area AS (
                    SELECT i.username, ST_Union(g.geom) AS geom FROM grid_inspectors AS i
                    JOIN grids AS g ON g.code = i.grid_code AND {is_current(GRIDS, "g")}
                    GROUP BY i.username ORDER BY i.username LIMIT :count)
                SELECT username, ST_XMin(geom), ST_YMin(geom), ST_XMax(geom), ST_YMax(geom),
                       ST_AsGeoJSON(ST_GeneratePoints(geom, 20, 1))
                FROM area"""),
                {"count": count},
            ).all()
    finally:
        engine.dispose()
    return [
        Inspector(
            name, {}, (x0, y0, x1, y1), [(p[0], p[1]) for p in json.loads(pts)["coordinates"]]
        )
        for name, x0, y0, x1, y1, pts in rows
    ]


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    """The WebMercatorQuad tile holding a point."""
    n = 2**z
    y = (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n
    return int((lon + 180) / 360 * n), int(y)


def request_for(who: Inspector, step: int, rng: random.Random) -> tuple[str, str, dict]:
    """The kind, method and httpx arguments of an inspector's `step`th action."""
    x0, y0, x1, y1 = who.box
    if step % 10 == 9:
        lon, lat = rng.choice(who.points)
        feature = {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [lon, lat]},
            "properties": {"category_code": CATEGORY, "description": "巡查发现：测试上报"},
        }
        files = {
            "feature": (None, json.dumps(feature, ensure_ascii=False), "application/json"),
            "photo": ("photo.jpg", JPEG, "image/jpeg"),
        }
        return "report with photo", "POST", {"url": "/cases", "files": files}
    kind = rng.choice(("patrol list", "layer page", "tile", "tile"))
    if kind == "patrol list":
        params = {"bbox": f"{x0},{y0},{x1},{y1}", "limit": "50"}
        return kind, "GET", {"url": "/collections/cases/items", "params": params}
    if kind == "layer page":
        w, h = (x1 - x0) / 2, (y1 - y0) / 2
        left, bottom = x0 + rng.random() * w, y0 + rng.random() * h
        params = {"bbox": f"{left},{bottom},{left + w},{bottom + h}", "limit": "100"}
        return kind, "GET", {"url": f"/collections/{rng.choice(PAGED)}/items", "params": params}
    lon, lat = rng.choice(who.points)
    z = rng.choice((14, 15, 16))
    x, y = tile_of(lon, lat, z)
    layer = rng.choice(TILED)
    return kind, "GET", {"url": f"/collections/{layer}/tiles/WebMercatorQuad/{z}/{x}/{y}"}


async def inspector(
    client: httpx.AsyncClient, who: Inspector, until: float, think: float, tally: Tally, seed: int
) -> None:
    """One inspector's actions until `until`."""
    rng = random.Random(seed)
    step = 0
    await asyncio.sleep(rng.random() * think)  # not all at the same instant
    while time.monotonic() < until:
        kind, method, args = request_for(who, step, rng)
        started = time.perf_counter()
        try:
            answer = await client.request(method, headers=who.header, **args)
            status, body = answer.status_code, answer.content
        except httpx.HTTPError as exc:
            status, body = 0, str(exc).encode()
        tally.times[kind].append((time.perf_counter() - started) * 1000)
        if 200 <= status < 300:
            if kind == "report with photo":
                tally.cases.append(int(json.loads(body)["id"]))
        else:
            tally.errors[kind] += 1
            if len(tally.examples) < 5:
                tally.examples.append(f"{kind} {status}: {body[:200]!r}")
        step += 1
        await asyncio.sleep(think * (0.5 + rng.random()))


async def load(base: str, crew: list[Inspector], seconds: float, think: float) -> Tally:
    """Every inspector at once for `seconds`."""
    tally = Tally()
    until = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=len(crew), max_keepalive_connections=len(crew))
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as client:
        await asyncio.gather(
            *(inspector(client, who, until, think, tally, n) for n, who in enumerate(crew))
        )
    return tally


def percentile(values: list[float], share: float) -> float:
    """The value `share` of the way up the sorted values."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def stored(url: str, cases: list[int]) -> tuple[int, int]:
    """How many of the acknowledged cases are stored, and how many of them have their photo."""
    engine = db.make_engine(url)
    try:
        with engine.connect() as conn:
            found = conn.execute(
                text("SELECT count(*) FROM cases WHERE id = ANY(:ids)"), {"ids": cases}
            ).scalar_one()
            photos = conn.execute(
                text("SELECT count(DISTINCT case_id) FROM case_photos WHERE case_id = ANY(:ids)"),
                {"ids": cases},
            ).scalar_one()
    finally:
        engine.dispose()
    return int(found), int(photos)


def report(tally: Tally, seconds: float, args: argparse.Namespace) -> None:
    """Print the table and the verdict."""
    every = [ms for times in tally.times.values() for ms in times]
    print(
        f"{args.inspectors} inspectors, {args.workers} workers, think {args.think:g} s, "
        f"{seconds:.1f} s: {len(every):,} requests ({len(every) / seconds:,.1f}/s), "
        f"{sum(tally.errors.values())} errors"
    )
    print(f"{'request':<20} {'count':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for kind, times in sorted(tally.times.items()):
        print(
            f"{kind:<20} {len(times):>7} {statistics.median(times):>8.1f} "
            f"{percentile(times, 0.95):>8.1f} {percentile(times, 0.99):>8.1f} "
            f"{tally.errors.get(kind, 0):>7}"
        )
    p95, p99 = percentile(every, 0.95), percentile(every, 0.99)
    print(f"{'all':<20} {len(every):>7} {statistics.median(every):>8.1f} {p95:>8.1f} {p99:>8.1f}")
    print(
        f"targets: p95 < {TARGETS['p95']:g} ms {'met' if p95 < TARGETS['p95'] else 'NOT met'}, "
        f"p99 < {TARGETS['p99']:g} ms {'met' if p99 < TARGETS['p99'] else 'NOT met'}"
    )
    for example in tally.examples:
        print("  error:", example)


def main() -> None:
    """Copy, serve, load, check, drop."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inspectors", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--think", type=float, default=1.0, help="mean seconds between actions")
    parser.add_argument("--port", type=int, default=8810)
    parser.add_argument(
        "--warmup", type=float, default=10.0, help="seconds of the same load first, not counted"
    )
    args = parser.parse_args()
    settings = DatabaseSettings()
    url = copy_demo(settings)
    server = None
    try:
        found = patrols(url, args.inspectors)
        if len(found) < args.inspectors:
            raise SystemExit(f"the demo has {len(found)} inspectors with grids")
        env, headers = signed_in_as(url, [who.name for who in found])
        crew = [Inspector(who.name, headers[who.name], who.box, who.points) for who in found]
        server = citygrid_server(url, args.port, args.workers, env)
        base = f"http://127.0.0.1:{args.port}"
        if args.warmup > 0:  # a server in service has met each request before: not counted
            warm = asyncio.run(load(base, crew, args.warmup, args.think))
            every = [ms for times in warm.times.values() for ms in times]
            print(
                f"warm-up {args.warmup:g} s: {len(every):,} requests, "
                f"p99 {percentile(every, 0.99):.1f} ms, {sum(warm.errors.values())} errors"
            )
        started = time.monotonic()
        tally = asyncio.run(load(base, crew, args.seconds, args.think))
        seconds = time.monotonic() - started
        stop(server)
        server = None
        report(tally, seconds, args)
        cases, photos = stored(url, tally.cases)
        print(f"cases acknowledged {len(tally.cases)}, stored {cases}, with their photo {photos}")
        if cases < len(tally.cases) or photos < len(tally.cases):
            raise SystemExit("acknowledged reports are missing")
    finally:
        if server is not None:
            stop(server)
        admin = create_engine(settings.cluster().url("postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)"))
        admin.dispose()


if __name__ == "__main__":
    main()
