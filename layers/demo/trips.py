"""What the demo's fleet does in a simulated period: muck trucks haul from construction sites to
disposal yards at night, sanitation vehicles sweep their town's streets in the morning, kitchen-waste
trucks make collection rounds; a few muck trucks dump illegally, leave their approved roads or run
across the county line, some keep hauling after their hours.

Everything is planned in metres of the county's Gauss-Krüger zone and China time, from a
generator of its own; each vehicle's plan is the positions its terminal will report."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from layers.demo.roadnet import XY, RoadNet
from layers.tracking.jt808.messages import CHINA

MUCK_KMH, KITCHEN_KMH, SWEEP_KMH = 35.0, 30.0, 8.0
LOAD_MIN, UNLOAD_MIN, COLLECT_MIN = (8.0, 14.0), (4.0, 7.0), (2.0, 4.0)
DUMP_MIN = 12.0  # an illegal dump's stop: past the dwell limit by day and by night
SHIFT_SPREAD_MIN = 40.0  # departures spread over the first minutes of a shift
# Shifts inside the vehicles' windows that keep clear of the seat centre's no-go zone by day
# (06:00-21:00, closed to every vehicle but the bureau's own): hauling and collecting start when
# it lifts, sweeping ends before it closes.
MUCK_SHIFT = "21:00-24:00,00:00-06:00"
KITCHEN_SHIFT = "21:00-23:00"
SWEEP_SHIFT = "04:30-05:30"
ROUND_STOPS = 6
LAST_TRIP = timedelta(hours=2)
FAR_M = 400.0  # a dump happens this far from every site and yard at least
OUT_OF_COUNTY_M = 1500.0  # how far past the county line the cross-county run goes
FIELD_M = 1200.0  # how far from its straight way an off-route truck strays

# the stories told by a few muck trucks, and the alarm each should raise
DUMP, OFF_ROUTE, CROSS_COUNTY, LATE = "illegal_dump", "off_route", "cross_county", "out_of_hours"
ALARM_OF = {
    DUMP: "dwell_outside_sites",
    OFF_ROUTE: "off_route",
    CROSS_COUNTY: "cross_county",
    LATE: "out_of_hours",
}


@dataclass(frozen=True)
class Vehicle:
    """A vehicle of the fleet as the driver needs it."""

    plate: str
    kind: str
    company: str
    phone: str
    home: XY
    windows: str | None


@dataclass(frozen=True)
class Places:
    """Where the fleet goes: loading sites and disposal yards (metres), the county, and which
    companies a route corridor holds."""

    sites: list[XY]
    yards: list[XY]
    county: BaseGeometry  # metres
    routed_companies: frozenset[str] = frozenset()  # companies with a route corridor


@dataclass(frozen=True)
class Sample:
    """One position a terminal reports (metres, China-aware time)."""

    time: datetime
    x: float
    y: float
    speed: float  # km/h
    heading: int
    engine_on: bool = True


@dataclass(frozen=True)
class Stories:
    """How many muck trucks misbehave, and how."""

    dumps: int = 3
    off_route: int = 2
    cross_county: int = 1
    late: int = 2


@dataclass
class Plan:
    """A vehicle's reports over the period and the misbehaviour it plays (if any)."""

    vehicle: Vehicle
    samples: list[Sample] = field(default_factory=list)
    story: str | None = None
    # when the misbehaviour has gone far enough to raise its alarm (None: not in the period)
    story_at: datetime | None = None


@lru_cache(maxsize=64)
def _minutes(windows: str) -> tuple[tuple[int, int], ...]:
    """ "HH:MM-HH:MM,..." as (from, to) minutes of the day."""
    spans = []
    for part in windows.split(","):
        start, end = part.split("-")
        spans.append((int(start[:2]) * 60 + int(start[3:]), int(end[:2]) * 60 + int(end[3:])))
    return tuple(spans)


def in_windows(windows: str | None, moment: datetime) -> bool:
    """Whether `moment` (China time) is inside "HH:MM-HH:MM,..." windows (None: always)."""
    if not windows:
        return True
    local = moment.astimezone(CHINA)
    minute = local.hour * 60 + local.minute
    return any(a <= minute < b for a, b in _minutes(windows))


def next_change(windows: str | None, moment: datetime, inside: bool) -> datetime | None:
    """The first minute from `moment` that is (inside=True) or is not in `windows`, within a day."""
    for minutes in range(0, 24 * 60 + 1):
        at = moment + timedelta(minutes=minutes)
        if in_windows(windows, at) == inside:
            return at
    return None


class Itinerary:
    """A vehicle's movements from a place and a time: drives along ways and stops."""

    def __init__(self, at: XY, when: datetime) -> None:
        self.at, self.now = at, when
        self.legs: list[tuple[datetime, datetime, list[XY], float]] = []

    def drive(self, way: Sequence[XY], kmh: float) -> None:
        """Drive along `way` (starting where the vehicle is) at `kmh`."""
        points = [self.at, *way]
        metres = sum(math.dist(a, b) for a, b in itertools.pairwise(points))
        if metres <= 0:
            return
        end = self.now + timedelta(seconds=metres / (kmh / 3.6))
        self.legs.append((self.now, end, points, kmh))
        self.at, self.now = points[-1], end

    def stop(self, minutes: float) -> None:
        """Stand still for `minutes`, engine on."""
        end = self.now + timedelta(minutes=minutes)
        self.legs.append((self.now, end, [self.at], 0.0))
        self.now = end

    def samples(self, every_s: float, until: datetime) -> list[Sample]:
        """A report every `every_s` seconds up to `until`; the last one parked, engine off."""
        found: list[Sample] = []
        if not self.legs:
            return found
        moment = self.legs[0][0]
        step = timedelta(seconds=every_s)
        leg = 0
        finish = min(self.now, until)
        while moment <= finish:
            while self.legs[leg][1] < moment and leg < len(self.legs) - 1:
                leg += 1
            found.append(_place(self.legs[leg], moment))
            moment += step
        if self.now <= until:  # parked: the engine off, so silence after it is no alarm
            if found[-1].time == self.now:
                found.pop()
            found.append(Sample(self.now, *self.at, 0.0, 0, engine_on=False))
        return found


def _place(leg: tuple[datetime, datetime, list[XY], float], moment: datetime) -> Sample:
    start, _end, points, kmh = leg
    if len(points) == 1 or kmh == 0:
        return Sample(moment, *points[-1], 0.0, 0)
    metres = (moment - start).total_seconds() * kmh / 3.6
    for a, b in itertools.pairwise(points):
        part = math.dist(a, b)
        if metres <= part or b is points[-1]:
            share = min(metres / part, 1.0) if part else 1.0
            heading = round(math.degrees(math.atan2(b[0] - a[0], b[1] - a[1]))) % 360
            x, y = a[0] + share * (b[0] - a[0]), a[1] + share * (b[1] - a[1])
            return Sample(moment, x, y, kmh, heading)
        metres -= part
    return Sample(moment, *points[-1], kmh, 0)


@dataclass
class Planner:
    """Plans the fleet's period over the road network."""

    net: RoadNet
    places: Places
    start: datetime
    end: datetime
    every_s: float
    rng: np.random.Generator

    def near(self, candidates: list[XY], at: XY, among: int = 6) -> XY:
        """One of the `among` candidates nearest to `at`."""
        order = sorted(candidates, key=lambda p: math.dist(p, at))[:among]
        return order[int(self.rng.integers(len(order)))]

    def departure(self, shift: str, windows: str | None) -> datetime | None:
        """When a vehicle's `shift` starts inside its `windows`, spread over its first minutes."""
        opens = next_change(shift, self.start, True)
        if opens is not None and not in_windows(windows, opens):
            opens = next_change(windows, opens, True)
        if opens is None or opens >= self.end:
            return None
        spread = min(timedelta(minutes=SHIFT_SPREAD_MIN), (self.end - self.start) / 10)
        return opens + spread * float(self.rng.uniform())

    def muck(self, vehicle: Vehicle, story: str | None) -> Plan:
        """Trips site → yard until the night window closes (a late truck keeps going)."""
        plan = Plan(vehicle, story=story)
        leave = self.departure(MUCK_SHIFT, vehicle.windows)
        if leave is None:
            return plan
        closes = next_change(vehicle.windows, leave, False) or self.end
        # the last trip starts well before the window closes: a trip and the way home take an hour
        stop_at = self.end if story == LATE else min(closes - LAST_TRIP, self.end)
        trip = Itinerary(vehicle.home, leave)
        site = self.near(self.places.sites, vehicle.home)
        trip.drive(self.net.route(trip.at, site), MUCK_KMH)
        first = True
        while trip.now < stop_at:
            trip.stop(float(self.rng.uniform(*LOAD_MIN)))
            yard = self.near(self.places.yards, site, among=2)
            if first and story is not None and story != LATE:
                plan.story_at = self._misbehave(trip, story, site, yard)
            else:
                trip.drive(self.net.route(site, yard), MUCK_KMH)
            first = False
            trip.stop(float(self.rng.uniform(*UNLOAD_MIN)))
            site = self.near(self.places.sites, yard)
            trip.drive(self.net.route(yard, site), MUCK_KMH)
        trip.drive(self.net.route(trip.at, vehicle.home), MUCK_KMH)
        plan.samples = trip.samples(self.every_s, self.end)
        if story == LATE:
            late = [s for s in plan.samples if s.speed > 0 and s.time >= closes]
            plan.story_at = late[0].time if late else None
        if plan.story_at is not None and plan.story_at > self.end:
            plan.story_at = None
        return plan

    def _misbehave(self, trip: Itinerary, story: str, site: XY, yard: XY) -> datetime:
        """The loaded leg of a misbehaving truck; when its alarm is due."""
        way = self.net.route(site, yard)
        if story == DUMP:
            spot = self._dump_spot(way)
            trip.drive(self.net.route(site, spot), MUCK_KMH)
            trip.stop(DUMP_MIN)
            when = trip.now  # the stop is over: past the dwell limit, by day or by night
            trip.drive(self.net.route(spot, yard), MUCK_KMH)
            return when
        if story == OFF_ROUTE:  # across the fields, well away from the roads, instead of along them
            trip.drive([self._field_way(site, yard), yard], MUCK_KMH * 0.6)
            return trip.legs[-1][0]
        beyond = self._out_of_county()
        trip.drive(self.net.route(site, beyond), MUCK_KMH)
        when = trip.now
        trip.stop(float(self.rng.uniform(*UNLOAD_MIN)))
        trip.drive(self.net.route(beyond, yard), MUCK_KMH)
        return when

    def _field_way(self, start: XY, end: XY) -> XY:
        """A point in the county off to the side of the line from `start` to `end`."""
        mid = ((start[0] + end[0]) / 2, (start[1] + end[1]) / 2)
        dx, dy = end[0] - start[0], end[1] - start[1]
        norm = math.hypot(dx, dy) or 1.0
        for side in (1.0, -1.0):
            x, y = mid[0] - dy / norm * FIELD_M * side, mid[1] + dx / norm * FIELD_M * side
            if shapely.intersects_xy(self.places.county, x, y):
                return x, y
        return mid

    def _dump_spot(self, way: list[XY]) -> XY:
        """A junction on `way` far from every site and yard (else the way's middle)."""
        fences = self.places.sites + self.places.yards
        for point in way[len(way) // 2 :] + way[: len(way) // 2]:
            if all(math.dist(point, f) > FAR_M for f in fences):
                return point
        return way[len(way) // 2]

    def _out_of_county(self) -> XY:
        """A point past the county's land border: west of its westernmost junction, into the
        neighbouring county (启东's other sides are the sea and the Yangtze)."""
        west = self.net.nodes[int(np.argmin(self.net.nodes[:, 0]))]
        x, y = float(west[0]), float(west[1])
        while shapely.intersects_xy(self.places.county, x, y):
            x -= 200.0
        return x - OUT_OF_COUNTY_M, y

    def sweeper(self, vehicle: Vehicle) -> Plan:
        """A loop through the streets near its depot, back to the depot."""
        plan = Plan(vehicle)
        leave = self.departure(SWEEP_SHIFT, vehicle.windows)
        if leave is None:
            return plan
        done = next_change(SWEEP_SHIFT, leave, False) or self.end
        trip = Itinerary(vehicle.home, leave)
        near = self._junctions_near(vehicle.home, 3000.0)
        while trip.now < done and trip.now < self.end:
            target = near[int(self.rng.integers(len(near)))]
            trip.drive(self.net.route(trip.at, target), SWEEP_KMH)
        trip.drive(self.net.route(trip.at, vehicle.home), SWEEP_KMH * 3)
        plan.samples = trip.samples(self.every_s, self.end)
        return plan

    def kitchen(self, vehicle: Vehicle) -> Plan:
        """Collection rounds: restaurants' bins near the plant, then back to the plant."""
        plan = Plan(vehicle)
        leave = self.departure(KITCHEN_SHIFT, vehicle.windows)
        if leave is None:
            return plan
        closes = next_change(KITCHEN_SHIFT, leave, False) or self.end
        trip = Itinerary(vehicle.home, leave)
        near = self._junctions_near(vehicle.home, 4000.0)
        while trip.now < min(closes - timedelta(hours=1), self.end):  # a round: up to an hour
            for _ in range(ROUND_STOPS):
                target = near[int(self.rng.integers(len(near)))]
                trip.drive(self.net.route(trip.at, target), KITCHEN_KMH)
                trip.stop(float(self.rng.uniform(*COLLECT_MIN)))
            trip.drive(self.net.route(trip.at, vehicle.home), KITCHEN_KMH)
            trip.stop(10.0)
        plan.samples = trip.samples(self.every_s, self.end)
        return plan

    def _junctions_near(self, at: XY, metres: float) -> list[XY]:
        nodes = self.net.nodes
        near = nodes[np.hypot(nodes[:, 0] - at[0], nodes[:, 1] - at[1]) <= metres]
        if not len(near):
            near = nodes[[self.net.nearest(*at)]]
        return [(float(x), float(y)) for x, y in near]


def plan_fleet(planner: Planner, vehicles: Sequence[Vehicle], stories: Stories) -> list[Plan]:
    """Every vehicle's plan; the stories handed to muck trucks drawn at random (off-route
    trips only to trucks of a company with a route corridor)."""
    muck = [v for v in vehicles if v.kind == "muck"]
    order = [muck[int(i)] for i in planner.rng.permutation(len(muck))]
    cast: dict[str, str] = {}
    routed = [v for v in order if v.company in planner.places.routed_companies]
    for v in routed[: stories.off_route]:
        cast[v.phone] = OFF_ROUTE
    # the other stories go to trucks without a corridor, so each raises the one alarm it tells
    free = [v for v in order if v.company not in planner.places.routed_companies]
    for story, count in ((DUMP, stories.dumps), (CROSS_COUNTY, stories.cross_county)):
        for v in free[:count]:
            cast[v.phone] = story
        free = free[count:]
    for v in free[: stories.late]:
        cast[v.phone] = LATE
    plans = []
    for v in vehicles:
        if v.kind == "muck":
            plans.append(planner.muck(v, cast.get(v.phone)))
        elif v.kind == "sanitation":
            plans.append(planner.sweeper(v))
        elif v.kind == "kitchen_waste":
            plans.append(planner.kitchen(v))
    return plans
