"""Positions acknowledged per second by the JT/T 808 gateway under many terminals.

Makes a scratch database `citygrid_bench_jt808` on the project's cluster (migrated, the demo
county stored), starts the real gateway (`citygrid tracking gateway`) in its own process, connects
N simulated terminals over TCP that register, authenticate, then each report in a closed loop —
send a 0x0200 position (or a 0x0704 batch of `--batch` positions), wait for its 0x8001 — for the
given seconds. It prints acknowledged positions per second and checks that every acknowledged
position is in the table, then stops the gateway and drops the database.

Run: .venv/bin/python bench/jt808_load.py [--terminals 200] [--seconds 20] [--batch 1]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from scratch import scratch_database
from sqlalchemy import Connection, text

from layers.demo import load as demo_city
from layers.places import counties
from layers.store import db
from layers.tracking.jt808.messages import Position, Registration
from layers.tracking.jt808.terminal import Terminal

DATABASE = "citygrid_bench_jt808"
CITYGRID = str(Path(sys.executable).with_name("citygrid"))
SEAT = (121.657, 31.808)
REG = Registration(32, 681, "BENCH", "LOAD", "T000001", 1, "苏F00000")


class Tally:
    """Positions acknowledged and refused, counted by the terminals."""

    def __init__(self) -> None:
        self.acknowledged = 0
        self.refused = 0


async def terminal(port: int, n: int, batch: int, until: float, tally: Tally) -> None:
    """One terminal: register, authenticate, report until `until`."""
    term = await Terminal.connect("127.0.0.1", port, f"1500000{n:04d}")
    await term.sign_in(REG)
    k = 0
    while time.monotonic() < until:
        now = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
        fixes = [
            Position(0, 0x3, SEAT[1] + (k + i) * 1e-6, SEAT[0] + n * 1e-5, 4, 30.0, 90, now)
            for i in range(batch)
        ]
        k += batch
        ok = await (term.report(fixes[0]) if batch == 1 else term.report_batch(fixes))
        if ok:
            tally.acknowledged += batch
        else:
            tally.refused += batch
    term.writer.close()


async def load(port: int, terminals: int, seconds: float, batch: int) -> tuple[Tally, float]:
    """Run every terminal; the tally and the seconds of reporting."""
    tally = Tally()
    started = time.monotonic()
    until = started + seconds
    await asyncio.gather(*(terminal(port, n, batch, until, tally) for n in range(terminals)))
    return tally, time.monotonic() - started


FENCES = """
INSERT INTO geofences (adcode, geom, name, kind, company)
SELECT '320681', ST_Multi(ST_Buffer(ST_SetSRID(ST_MakePoint(:x + f.dx, :y + f.dy), 4490), f.r)),
       f.name, f.kind, f.company
FROM (VALUES ('走廊', 'corridor', 0.0, 0.0, 0.05, '渣土车队'), ('工地', 'site', 0.1, 0.0, 0.005, NULL),
             ('禁行区', 'no_go', 0.0, 0.1, 0.005, NULL)) AS f (name, kind, dx, dy, r, company)
"""


def fleet(conn: Connection, terminals: int) -> None:
    """Every terminal a muck truck of the demo county; the geofences its reports are tested in."""
    conn.execute(
        text("""
        INSERT INTO vehicles (adcode, geom, plate, kind, terminal_phone, company, time_windows)
        SELECT '320681', ST_SetSRID(ST_MakePoint(:x, :y), 4490), '苏F' || lpad(n::text, 5, '0'),
               'muck', '1500000' || lpad(n::text, 4, '0'), '渣土车队', '00:00-24:00'
        FROM generate_series(0, :last) AS n
    """),
        {"x": SEAT[0], "y": SEAT[1], "last": terminals - 1},
    )
    conn.execute(text(FENCES), {"x": SEAT[0], "y": SEAT[1]})


def wait_listening(port: int, gateway: subprocess.Popen[bytes]) -> None:
    """Wait for the gateway's port to accept connections."""
    import socket

    for _ in range(200):
        if gateway.poll() is not None:
            raise SystemExit("the gateway stopped")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("the gateway did not start")


def main() -> None:
    """Build, load, count, drop."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--terminals", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--batch", type=int, default=1, help="positions per report (0x0704 if >1)")
    parser.add_argument("--port", type=int, default=17808)
    parser.add_argument(
        "--fleet",
        action="store_true",
        help="register the terminals as muck trucks with time windows, a route corridor, a site "
        "and a no-go zone, so every alarm condition is evaluated for every report",
    )
    args = parser.parse_args()
    with scratch_database(DATABASE) as url:
        measure(url, args)


def measure(url: str, args: argparse.Namespace) -> None:
    """Start the gateway on `url`, load it, count what was stored."""
    gateway = None
    try:
        engine = db.make_engine(url)
        with engine.begin() as conn:
            counties.add(conn, demo_city.qidong(), demo_city.COUNTY_SEAT)
            if args.fleet:
                fleet(conn, args.terminals)
        engine.dispose()
        env = {**os.environ, "CITYGRID_DATABASE_URL": url, "CITYGRID_JT808_PORT": str(args.port)}
        gateway = subprocess.Popen(
            [CITYGRID, "tracking", "gateway"], env=env, stderr=subprocess.DEVNULL
        )
        wait_listening(args.port, gateway)
        tally, seconds = asyncio.run(load(args.port, args.terminals, args.seconds, args.batch))
        engine = db.make_engine(url)
        with engine.connect() as conn:
            stored = conn.execute(text("SELECT count(*) FROM positions")).scalar_one()
        engine.dispose()
        print(
            f"{args.terminals} terminals, {args.batch} position(s) per report, {seconds:.1f} s: "
            f"{tally.acknowledged:,} positions acknowledged ({tally.acknowledged / seconds:,.0f}/s), "
            f"{tally.refused} refused, {stored:,} stored"
        )
        if stored < tally.acknowledged:
            raise SystemExit("acknowledged positions are missing from the table")
    finally:
        if gateway is not None:
            gateway.terminate()
            gateway.wait(10)


if __name__ == "__main__":
    main()
