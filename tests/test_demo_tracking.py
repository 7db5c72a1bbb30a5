"""The demo's road network, and its fleet driven through the real JT/T 808 gateway: a short,
accelerated night of three muck trucks in the county seat, one of which dumps on the way."""

from __future__ import annotations

import asyncio
import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pytest
import shapely
from shapely.geometry import LineString, Point, box
from sqlalchemy import Engine, text

from gis.zones import from_gk, to_gk
from layers.demo import driving
from layers.demo import load as demo_city
from layers.demo.geofences import CORRIDOR_HALF_WIDTH_M
from layers.demo.roadnet import RoadNet, road_net
from layers.demo.streets import street_plan
from layers.demo.trips import (
    CROSS_COUNTY,
    DUMP,
    LATE,
    OFF_ROUTE,
    Places,
    Planner,
    Stories,
    Vehicle,
    in_windows,
    plan_fleet,
)
from layers.store import db
from layers.tracking.jt808.messages import CHINA
from tests.counties import DEMO, two_counties
from tests.databases import PgServer, fresh_database
from tests.gateways import serve_gateway
from tests.support import citygrid, in_own_thread

DEMO_SEED = 20231231
NIGHT = "20:00-24:00,00:00-06:00"
SPOTS = ((-1400, 0), (1400, 700), (0, -1400), (-4000, 4000), (5000, -3000))  # 3 sites, 2 yards


def test_shortest_paths_on_a_small_network() -> None:
    # a square A(0,0) B(100,0) C(100,100) D(0,100) with a long detour E(300,50) from B to C, and
    # a cross through the middle cut where it meets the square's sides
    lines = [
        LineString([(0, 0), (100, 0)]),
        LineString([(100, 0), (100, 100)]),
        LineString([(100, 100), (0, 100)]),
        LineString([(0, 100), (0, 0)]),
        LineString([(100, 0), (300, 50), (100, 100)]),
        LineString([(50, -50), (50, 150)]),
    ]
    net = RoadNet.from_lines(lines)
    at = {
        xy: net.nearest(*xy) for xy in [(0, 0), (100, 0), (100, 100), (0, 100), (50, 0), (50, 100)]
    }
    assert net.components() == 1
    assert net.shortest_path(at[0, 0], at[100, 100]) in (
        [at[0, 0], at[50, 0], at[100, 0], at[100, 100]],
        [at[0, 0], at[0, 100], at[50, 100], at[100, 100]],
    )
    assert net.shortest_path(at[50, 0], at[50, 100]) == [at[50, 0], at[50, 100]]  # the cross
    assert net.shortest_path(at[100, 0], at[100, 0]) == [at[100, 0]]
    way = net.route((-10.0, 0.0), (100.0, 110.0))
    assert way[0] == (-10.0, 0.0) and way[-1] == (100.0, 110.0)
    assert math.isclose(sum(math.dist(a, b) for a, b in itertools.pairwise(way)), 10 + 200 + 10)
    apart = RoadNet.from_lines([LineString([(0, 0), (1, 0)]), LineString([(5, 5), (6, 5)])])
    assert apart.components() == 2
    with pytest.raises(ValueError, match="no road"):
        apart.shortest_path(apart.nearest(0, 0), apart.nearest(6, 5))


def test_the_demo_network_is_connected() -> None:
    population, _ = demo_city.people(demo_city.qidong(), DEMO_SEED)
    plan = street_plan(population)
    net = road_net(plan)
    assert net.components() == 1
    assert len(net.nodes) > len(plan.junctions)  # every crossing and street end is a junction
    seat, far = population.towns[0], population.towns[-1]
    path = net.shortest_path(net.nearest(seat.x, seat.y), net.nearest(far.x, far.y))
    walked = sum(math.dist(net.nodes[a], net.nodes[b]) for a, b in itertools.pairwise(path))
    assert (
        math.dist((seat.x, seat.y), (far.x, far.y))
        <= walked
        < 1.2 * math.dist((seat.x, seat.y), (far.x, far.y))
    )


def test_the_night_plan_tells_each_story_once() -> None:
    county = demo_city.qidong()
    population, epsg = demo_city.people(county, DEMO_SEED)
    plan = street_plan(population)
    net, roads = road_net(plan), shapely.union_all(plan.lines())
    seat = population.towns[0]
    spots = [tuple(net.nodes[net.nearest(seat.x + dx, seat.y + dy)]) for dx, dy in SPOTS]
    sites, yards = spots[:3], spots[3:]
    places = Places(sites, yards, to_gk([county.boundary], epsg)[0], frozenset({"甲公司"}))
    start = datetime(2026, 11, 1, 20, 0, tzinfo=CHINA)
    planner = Planner(
        net, places, start, start + timedelta(hours=12), 60.0, np.random.default_rng(3)
    )
    home = (seat.x, seat.y)
    fleet = [
        Vehicle(
            f"苏F9000{n}", "muck", "甲公司" if n < 2 else "乙公司", f"1450000100{n}", home, NIGHT
        )
        for n in range(6)
    ]
    plans = {p.story: p for p in plan_fleet(planner, fleet, Stories(1, 1, 1, 1))}
    assert set(plans) == {DUMP, OFF_ROUTE, CROSS_COUNTY, LATE, None}
    assert plans[OFF_ROUTE].vehicle.company == "甲公司"  # only a truck with a corridor strays
    for p in plans.values():
        times = [s.time for s in p.samples]
        assert times == sorted(times)
        assert p.samples[-1].engine_on == (p.story == LATE)  # parked, but the late one
        assert p.samples[0].time >= start.replace(hour=21)  # after the centre's no-go hours
    fences = [Point(xy) for xy in sites + yards]
    stops = [
        s
        for s in plans[DUMP].samples
        if s.speed == 0 and min(f.distance(Point(s.x, s.y)) for f in fences) > 400
    ]
    assert (stops[-1].time - stops[0].time) >= timedelta(minutes=10)
    off_road = max(roads.distance(Point(s.x, s.y)) for s in plans[OFF_ROUTE].samples)
    assert off_road > 3 * CORRIDOR_HALF_WIDTH_M  # well out of its company's corridor
    assert any(not places.county.contains(Point(s.x, s.y)) for s in plans[CROSS_COUNTY].samples)
    for story, p in plans.items():
        late = [s for s in p.samples if s.speed > 0 and not in_windows(NIGHT, s.time)]
        assert bool(late) == (story == LATE)
    assert all(p.story_at is not None for story, p in plans.items() if story is not None)


# --- driving through the gateway --------------------------------------------------------------

TRUCKS = {"14500000001": "苏F80001", "14500000002": "苏F80002", "14500000003": "苏F80003"}
CLI_TRUCKS = {"14500000004": "苏F80004", "14500000005": "苏F80005"}  # driven by the command


@dataclass
class Seat:
    """The database with the demo county's rows, three trucks, a site and a yard in the seat."""

    url: str
    owner: Engine
    owner_url: str


@pytest.fixture(scope="module")
def seat(pg_server: PgServer) -> Iterator[Seat]:
    databases = fresh_database(pg_server, "drive")
    url = next(databases)
    owner = db.make_engine(pg_server.as_owner(url))
    population, epsg = demo_city.people(demo_city.qidong(), DEMO_SEED)
    net = road_net(street_plan(population))
    centre = population.towns[0]
    home, site, yard = (
        net.nodes[net.nearest(centre.x + dx, centre.y)] for dx in (0.0, -1400.0, 1400.0)
    )
    lonlat = from_gk(shapely.points([home, site, yard]), epsg)
    fences = from_gk([box(x - 100, y - 100, x + 100, y + 100) for x, y in (site, yard)], epsg)
    with owner.begin() as conn:
        two_counties(conn)  # grids in the seat, so the dump's case has a place
        for phone, plate in (TRUCKS | CLI_TRUCKS).items():
            conn.execute(
                text("""INSERT INTO vehicles (adcode, geom, plate, kind, terminal_phone, company,
                                              time_windows)
                        VALUES (:a, ST_GeomFromText(:g, 4490), :p, 'muck', :t, '测试渣土公司',
                                '20:00-24:00,00:00-06:00')"""),
                {"a": DEMO, "g": lonlat[0].wkt, "p": plate, "t": phone},
            )
        for kind, shape in zip(("site", "yard"), fences, strict=True):
            conn.execute(
                text("""INSERT INTO geofences (adcode, geom, name, kind)
                        VALUES (:a, ST_Multi(ST_GeomFromText(:g, 4490)), :n, :k)"""),
                {"a": DEMO, "g": shape.wkt, "n": f"测试{kind}", "k": kind},
            )
    try:
        yield Seat(url, owner, pg_server.as_owner(url))
    finally:
        owner.dispose()
        next(databases, None)


def test_a_short_night_driven_through_the_gateway(seat: Seat) -> None:
    period = timedelta(minutes=40)
    options = driving.DriveOptions(
        driving.default_start(period, at="22:30"),  # night: the dwell limit is 5 minutes
        period,
        speed=300.0,
        every_s=20.0,
        kinds=("muck",),
        plates=tuple(TRUCKS.values()),
        seed=1,
        stories=Stories(dumps=1, off_route=0, cross_county=0, late=0),
    )
    with seat.owner.connect() as conn:
        plans = driving.plan(conn, options, DEMO_SEED)
    assert {p.vehicle.phone for p in plans} == set(TRUCKS)
    (dumper,) = [p for p in plans if p.story == DUMP]
    assert dumper.story_at is not None and dumper.story_at <= options.end
    assert driving.expected_alarms(plans) == {"dwell_outside_sites": 1}

    for served in serve_gateway(seat.url):
        drive = driving.drive("127.0.0.1", served.port, plans, options)
        tally = in_own_thread(asyncio.run, drive)

    sent = sum(len(p.samples) for p in plans)
    assert (tally.signed_in, tally.failed, tally.refused) == (3, [], 0)
    assert tally.sent == tally.acknowledged == sent
    with seat.owner.connect() as conn:
        stored = dict(
            conn.execute(
                text("""SELECT t.phone, count(p.*) FROM terminals AS t
                        JOIN latest_positions AS l ON l.terminal_id = t.id
                        JOIN positions AS p ON p.tracker_id = l.id
                        WHERE t.phone = ANY(:phones) GROUP BY t.phone"""),
                {"phones": list(TRUCKS)},
            ).all()
        )
        latest = dict(
            conn.execute(
                text("""SELECT t.phone, l.time FROM terminals AS t
                        JOIN latest_positions AS l ON l.terminal_id = t.id
                        WHERE t.phone = ANY(:phones)"""),
                {"phones": list(TRUCKS)},
            ).all()
        )
        alarms = conn.execute(
            text("""SELECT t.phone, a.kind, a.case_id, c.category_code, c.source
                    FROM alarms AS a JOIN terminals AS t ON t.id = a.terminal_id
                    LEFT JOIN cases AS c ON c.id = a.case_id WHERE t.phone = ANY(:phones)"""),
            {"phones": list(TRUCKS)},
        ).all()
        raised = driving.alarms_raised(conn, plans, options)
    assert stored == {p.vehicle.phone: len(p.samples) for p in plans}
    assert latest == {p.vehicle.phone: p.samples[-1].time.replace(microsecond=0) for p in plans}
    dwell = [a for a in alarms if a.kind == "dwell_outside_sites"]
    assert [(a.phone, a.category_code, a.source) for a in dwell] == [
        (dumper.vehicle.phone, "E0303", "vehicle")
    ]
    assert raised["dwell_outside_sites"] == (1, 1)


def test_the_command_drives_through_the_gateway_and_sums_up(seat: Seat) -> None:
    night = driving.default_start(timedelta(minutes=40), at="22:30").strftime("%Y-%m-%d %H:%M")
    plates = [arg for plate in CLI_TRUCKS.values() for arg in ("--plate", plate)]
    env = {"CITYGRID_DATABASE_URL": seat.owner_url}
    for served in serve_gateway(seat.url):
        args = [*("demo", "tracking", "--start", night, "--duration", "40", "--speed", "300")]
        args += [*("--every", "20", "--kinds", "muck", "--port", str(served.port), *plates)]
        ran = in_own_thread(citygrid, *args, env=env)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    out = " ".join(ran.stderr.split())
    assert "terminals 2/2 signed in" in out and "refused 0" in out and "终端登录 2/2" in out
    # both trucks dump on their first loaded trip: 3 dumps were asked for, 2 trucks had them
    assert "alarm dwell_outside_sites: 2 scripted, raised by 2 vehicles (2 alarms)" in out
    future = citygrid("demo", "tracking", "--start", "2099-01-01 00:00", env=env)
    assert future.returncode == 2 and "before now" in future.stdout + future.stderr
