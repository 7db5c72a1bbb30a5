"""`citygrid demo tracking`: the demo's fleet driven through the real JT/T 808 gateway. Each
vehicle is a terminal over TCP that registers, authenticates and reports its planned positions on
a simulated clock (faster than real time on request), with heartbeats while it waits.

The simulated period lies in the past (the gateway refuses positions from the future), ending no
later than when the run starts; the clock drives the BCD time of every frame."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import shapely
from sqlalchemy import Connection, text

from gis.zones import from_gk, to_gk
from layers.demo import load as demo_city
from layers.demo.roadnet import road_net
from layers.demo.streets import street_plan
from layers.demo.trips import (
    ALARM_OF,
    Places,
    Plan,
    Planner,
    Sample,
    Stories,
    Vehicle,
    plan_fleet,
)
from layers.tracking.jt808 import messages
from layers.tracking.jt808.messages import CHINA, Position, Registration
from layers.tracking.jt808.terminal import Terminal

KINDS = ("muck", "sanitation", "kitchen_waste")
HEARTBEAT_S = 20.0  # wall seconds between heartbeats of a waiting terminal
DEFAULT_START = "20:00"  # China time: the muck trucks' night begins


@dataclass(frozen=True)
class DriveOptions:
    """What to simulate and how fast."""

    start: datetime  # aware
    duration: timedelta
    speed: float = 60.0  # simulated seconds per real second
    every_s: float = 30.0  # simulated seconds between reports of a vehicle
    kinds: tuple[str, ...] = KINDS
    limit: int | None = None  # vehicles of each kind at most
    plates: tuple[str, ...] = ()  # only these vehicles
    seed: int = 0
    stories: Stories = field(default_factory=Stories)

    @property
    def end(self) -> datetime:
        """The end of the simulated period."""
        return self.start + self.duration


@dataclass
class Tally:
    """What the terminals sent and what the gateway answered."""

    terminals: int = 0
    signed_in: int = 0
    sent: int = 0
    acknowledged: int = 0
    refused: int = 0
    failed: list[str] = field(default_factory=list)  # terminals that lost their connection


def default_start(
    duration: timedelta, now: datetime | None = None, at: str = DEFAULT_START
) -> datetime:
    """The latest day's `at` (China time) from which `duration` ends before `now`."""
    now = (now or datetime.now(UTC)).astimezone(CHINA)
    hour, minute = (int(part) for part in at.split(":"))
    start = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    while start + duration > now:
        start -= timedelta(days=1)
    return start


FLEET = text("""
SELECT plate, kind, company, terminal_phone, time_windows, ST_X(geom) AS lon, ST_Y(geom) AS lat
FROM vehicles
WHERE terminal_phone IS NOT NULL AND kind = ANY(:kinds) AND adcode = :adcode
ORDER BY kind, id
""")

FENCES = text("""
SELECT kind, ST_X(ST_Centroid(geom)) AS lon, ST_Y(ST_Centroid(geom)) AS lat
FROM geofences WHERE kind IN ('site', 'yard') AND adcode = :adcode ORDER BY id
""")

ROUTED = text("""
SELECT DISTINCT company FROM geofences
WHERE kind = 'corridor' AND vehicle_id IS NULL AND company IS NOT NULL AND adcode = :adcode
""")


def _gk(lonlat: Sequence[tuple[float, float]], epsg: int) -> list[tuple[float, float]]:
    if not lonlat:
        return []
    points = to_gk(shapely.points(np.array(lonlat, dtype=float)), epsg)
    return [(float(x), float(y)) for x, y in shapely.get_coordinates(points)]


def read_fleet(
    conn: Connection, options: DriveOptions, epsg: int
) -> tuple[list[Vehicle], list[tuple[str, tuple[float, float]]], frozenset[str]]:
    """The demo county's vehicles to drive (homes in metres), its sites and yards, and the
    companies with a route corridor."""
    rows = conn.execute(FLEET, {"kinds": list(options.kinds), "adcode": demo_city.ADCODE}).all()
    if options.plates:
        rows = [r for r in rows if r.plate in options.plates]
    if options.limit is not None:
        by_kind: dict[str, list[Any]] = {}
        for row in rows:
            by_kind.setdefault(row.kind, []).append(row)
        rows = [r for kind in by_kind.values() for r in kind[: options.limit]]
    homes = _gk([(r.lon, r.lat) for r in rows], epsg)
    vehicles = [
        Vehicle(r.plate, r.kind, r.company or "", r.terminal_phone, home, r.time_windows)
        for r, home in zip(rows, homes, strict=True)
    ]
    fences = conn.execute(FENCES, {"adcode": demo_city.ADCODE}).all()
    spots = _gk([(f.lon, f.lat) for f in fences], epsg)
    routed = frozenset(conn.execute(ROUTED, {"adcode": demo_city.ADCODE}).scalars())
    return vehicles, [(f.kind, xy) for f, xy in zip(fences, spots, strict=True)], routed


def plan(conn: Connection, options: DriveOptions, demo_seed: int) -> list[Plan]:
    """Every driven vehicle's plan over the demo's road network."""
    county = demo_city.qidong()
    population, epsg = demo_city.people(county, demo_seed)
    vehicles, fences, routed = read_fleet(conn, options, epsg)
    sites = [xy for kind, xy in fences if kind == "site"]
    yards = [xy for kind, xy in fences if kind == "yard"]
    if any(v.kind == "muck" for v in vehicles) and not (sites and yards):
        raise ValueError(
            "the demo's sites and disposal yards are missing: run `citygrid demo load`"
        )
    region = to_gk([county.boundary], epsg)[0]
    places = Places(sites, yards, region, routed)
    net = road_net(street_plan(population))
    rng = np.random.default_rng([options.seed, 808])
    planner = Planner(net, places, options.start, options.end, options.every_s, rng)
    plans = [p for p in plan_fleet(planner, vehicles, options.stories) if p.samples]
    _to_degrees(plans, epsg)
    return plans


def _to_degrees(plans: list[Plan], epsg: int) -> None:
    """Each plan's samples in CGCS2000 degrees (x = longitude)."""
    for p in plans:
        points = from_gk(shapely.points([(s.x, s.y) for s in p.samples]), epsg)
        lonlat = shapely.get_coordinates(points)
        p.samples = [
            replace(s, x=round(float(lon), 6), y=round(float(lat), 6))
            for s, (lon, lat) in zip(p.samples, lonlat, strict=True)
        ]


class Clock:
    """Simulated time running `speed` times faster than the real clock from `start`."""

    def __init__(self, start: datetime, speed: float) -> None:
        self.start, self.speed = start, speed
        self.began = time.monotonic()

    def wait_for(self, moment: datetime) -> float:
        """Real seconds until the simulated clock reaches `moment`."""
        due = (moment - self.start).total_seconds() / self.speed
        return due - (time.monotonic() - self.began)


def _position(sample: Sample) -> Position:
    """A sample in degrees as a 0x0200 position: located, the engine on unless parked."""
    status = messages.LOCATED | (messages.ACC_ON if sample.engine_on else 0)
    when = sample.time.astimezone(UTC).replace(microsecond=0)
    return Position(0, status, sample.y, sample.x, 4, sample.speed, sample.heading, when)


async def _wait(terminal: Terminal, seconds: float) -> None:
    """Sleep `seconds`, sending heartbeats meanwhile as an idle terminal does."""
    while seconds > HEARTBEAT_S:
        await asyncio.sleep(HEARTBEAT_S)
        await terminal.heartbeat()
        seconds -= HEARTBEAT_S
    if seconds > 0:
        await asyncio.sleep(seconds)


async def sign_in(host: str, port: int, vehicle: Vehicle, tally: Tally) -> Terminal | None:
    """A vehicle's terminal connected, registered and authenticated (None when it could not)."""
    registration = Registration(32, 681, "CGDMO", "DEMO-808", vehicle.phone[-7:], 2, vehicle.plate)
    try:
        terminal = await Terminal.connect(host, port, vehicle.phone)
        await terminal.sign_in(registration)
    except OSError as exc:  # ConnectionError and the gateway's refusals among them
        tally.failed.append(f"{vehicle.plate}: {exc}")
        return None
    tally.signed_in += 1
    return terminal


async def report(terminal: Terminal, plan: Plan, clock: Clock, tally: Tally) -> None:
    """Report every sample of `plan` when the simulated clock reaches it, then log out."""
    try:
        for sample in plan.samples:
            await _wait(terminal, clock.wait_for(sample.time))
            tally.sent += 1
            if await terminal.report(_position(sample)):
                tally.acknowledged += 1
            else:
                tally.refused += 1
    except OSError as exc:
        tally.failed.append(f"{plan.vehicle.plate}: {exc}")
    finally:
        await terminal.close()


async def drive(host: str, port: int, plans: Sequence[Plan], options: DriveOptions) -> Tally:
    """Drive every plan through the gateway at host:port; the simulated clock starts once every
    terminal has signed in."""
    tally = Tally(terminals=len(plans))
    terminals = await asyncio.gather(*(sign_in(host, port, p.vehicle, tally) for p in plans))
    clock = Clock(options.start, options.speed)
    await asyncio.gather(
        *(report(t, p, clock, tally) for t, p in zip(terminals, plans, strict=True) if t)
    )
    return tally


ALARMS_SINCE = text("""
SELECT a.kind, count(DISTINCT t.phone) AS vehicles, count(*) AS alarms
FROM alarms AS a JOIN terminals AS t ON t.id = a.terminal_id
WHERE t.phone = ANY(:phones) AND a.started >= :start AND a.started <= :end
GROUP BY a.kind ORDER BY a.kind
""")


def alarms_raised(
    conn: Connection, plans: Sequence[Plan], options: DriveOptions
) -> dict[str, tuple[int, int]]:
    """The alarms the driven terminals raised in the simulated period, by kind: how many
    vehicles raised one, and how many alarms (one opens again each time its condition does)."""
    rows = conn.execute(
        ALARMS_SINCE,
        {"phones": [p.vehicle.phone for p in plans], "start": options.start, "end": options.end},
    ).all()
    return {row.kind: (int(row.vehicles), int(row.alarms)) for row in rows}


def expected_alarms(plans: Sequence[Plan]) -> dict[str, int]:
    """How many vehicles the scenario has misbehave within the period, by the alarm kind it
    should raise."""
    found: Counter[str] = Counter()
    for p in plans:
        if p.story is not None and p.story_at is not None:
            found[ALARM_OF[p.story]] += 1
    return dict(sorted(found.items()))
