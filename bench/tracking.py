"""The tracking figures: positions acknowledged per second by the JT/T 808 gateway with 1,000
terminals and every alarm evaluated, a day's track of one vehicle, the latest positions of 1,000.

Makes the scratch database `citygrid_bench_tracking` (migrated, the demo county stored), registers
the terminals as muck trucks with time windows, a route corridor, a site and a no-go zone (as
`jt808_load.py --fleet`), starts the real gateway in its own process and drives the terminals in a
closed loop for the given seconds; counts the stored positions against the acknowledged ones.
Then stores a day of 10 s positions for one vehicle, starts the API under uvicorn and times
`GET /tracking/vehicles` (every latest position) and `GET /tracking/vehicles/{id}/track` (the
day) as an admin. The database is dropped at the end.

Run: .venv/bin/python bench/tracking.py [--terminals 1000] [--seconds 60] [--batch 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import subprocess
import time
from datetime import datetime, timedelta

import httpx
from jt808_load import CITYGRID, fleet, load, wait_listening
from scaled import BENCH_USER, citygrid_server, signed_in, stop
from scratch import scratch_database
from sqlalchemy import Engine, text

from layers.accounts import users
from layers.demo import load as demo_city
from layers.places import counties
from layers.store import db
from layers.tracking import store
from layers.tracking.jt808.messages import CHINA

DATABASE = "citygrid_bench_tracking"
DAY_STEP_S = 10


def prepare(url: str, terminals: int) -> None:
    """The county, the fleet and its geofences, the bench's admin."""
    engine = db.make_engine(url)
    try:
        with engine.begin() as conn:
            counties.add(conn, demo_city.qidong(), demo_city.COUNTY_SEAT)
            fleet(conn, terminals)
            password = users.hash_password(secrets.token_urlsafe(16))
            users.add(conn, BENCH_USER, "admin", password, "bench")
    finally:
        engine.dispose()


def drive(url: str, args: argparse.Namespace) -> None:
    """The gateway under load; acknowledged positions per second, and every one stored."""
    env = {**os.environ, "CITYGRID_DATABASE_URL": url, "CITYGRID_JT808_PORT": str(args.port)}
    gateway = subprocess.Popen(
        [CITYGRID, "tracking", "gateway"], env=env, stderr=subprocess.DEVNULL
    )
    try:
        wait_listening(args.port, gateway)
        tally, seconds = asyncio.run(load(args.port, args.terminals, args.seconds, args.batch))
    finally:
        gateway.terminate()
        gateway.wait(10)
    engine = db.make_engine(url)
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT count(*) FROM positions")).scalar_one()
        raised = conn.execute(text("SELECT count(*) FROM alarms")).scalar_one()
    engine.dispose()
    print(
        f"{args.terminals} terminals, {args.batch} position(s) per report, {seconds:.1f} s: "
        f"{tally.acknowledged:,} positions acknowledged ({tally.acknowledged / seconds:,.0f}/s), "
        f"{tally.refused} refused, {stored:,} stored, {raised} alarms open or closed",
        flush=True,
    )
    if stored < tally.acknowledged:
        raise SystemExit("acknowledged positions are missing from the table")


def a_day(engine: Engine) -> tuple[int, datetime, datetime]:
    """Yesterday (China time) of 10 s positions for the first terminal's tracker, stored; the
    tracker and the day's bounds."""
    with engine.begin() as conn:
        tracker = conn.execute(
            text("""SELECT l.id FROM latest_positions AS l JOIN terminals AS t
                    ON t.id = l.terminal_id ORDER BY t.phone LIMIT 1""")
        ).scalar_one()
        start = datetime.now(CHINA).replace(hour=0, minute=0, second=0, microsecond=0)
        start -= timedelta(days=1)
        fixes = [
            store.Fix(
                tracker,
                start + timedelta(seconds=k * DAY_STEP_S),
                121.60 + k * 1e-5,
                31.80 + (k % 100) * 1e-5,
                30.0,
            )
            for k in range(24 * 3600 // DAY_STEP_S)
        ]
        store.write_positions(conn, fixes)
    return tracker, start, start + timedelta(days=1)


def timed(client: httpx.Client, path: str, params: dict[str, str], repeat: int) -> list[float]:
    """Milliseconds of `repeat` requests after two to warm up."""
    times = []
    for n in range(repeat + 2):
        started = time.perf_counter()
        answer = client.get(path, params=params)
        answer.raise_for_status()
        if n >= 2:
            times.append((time.perf_counter() - started) * 1000)
    return times


def read(url: str, args: argparse.Namespace) -> None:
    """The two reads a map makes, timed end to end through uvicorn."""
    engine = db.make_engine(url)
    tracker, start, end = a_day(engine)
    engine.dispose()
    env, header = signed_in(url)
    server = citygrid_server(url, args.http_port, 1, env)
    try:
        base = f"http://127.0.0.1:{args.http_port}"
        with httpx.Client(base_url=base, headers=header, timeout=60) as client:
            latest = client.get("/tracking/vehicles").json()
            day = {"from": start.isoformat(), "to": end.isoformat()}
            track = client.get(f"/tracking/vehicles/{tracker}/track", params=day).json()
            vertices = len(track["geometry"]["coordinates"])
            for label, path, params, size in (
                (
                    "latest positions",
                    "/tracking/vehicles",
                    {},
                    f"{len(latest['features'])} vehicles",
                ),
                (
                    "a day's track",
                    f"/tracking/vehicles/{tracker}/track",
                    day,
                    f"{vertices} vertices",
                ),
            ):
                ms = timed(client, path, params, args.repeat)
                body = len(json.dumps(latest if path == "/tracking/vehicles" else track))
                print(
                    f"{label} ({size}, {body / 1024:,.0f} KiB): median {statistics.median(ms):.1f} ms, "
                    f"p95 {sorted(ms)[int(0.95 * (len(ms) - 1))]:.1f} ms over {len(ms)} requests",
                    flush=True,
                )
    finally:
        stop(server)


def main() -> None:
    """Build, drive, read, drop."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--terminals", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--batch", type=int, default=1, help="positions per report (0x0704 if >1)")
    parser.add_argument("--port", type=int, default=17809)
    parser.add_argument("--http-port", type=int, default=8809)
    parser.add_argument("--repeat", type=int, default=30, help="timed requests of each read")
    args = parser.parse_args()
    with scratch_database(DATABASE) as url:
        prepare(url, args.terminals)
        drive(url, args)
        read(url, args)


if __name__ == "__main__":
    main()
