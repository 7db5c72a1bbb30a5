"""The demo's geofences for its fleet: a 工地 around every active construction, demolition and
road-works dust site (where muck trucks load), 4 消纳场 disposal yards in the countryside (where
they unload), a 禁行区 over the county seat's centre closed to muck trucks by day, and the seat's
two 严管街 strict streets; and the 路线走廊 route corridors of two haulage companies, whose permits
bind their trucks to the roads: the demo's road network and the ways from it to every site, yard
and the company's own yard.

Shapes are drawn in metres of the county's Gauss-Krüger zone from the demo's own rows and streets,
from a generator of their own, so the other demo rows stay as they were.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import shapely
import shapely.affinity
from shapely.geometry import LineString, MultiPolygon, Point
from shapely.geometry.base import BaseGeometry

from gis.zones import from_gk, to_gk
from layers.demo.population import Population
from layers.demo.roadnet import RoadNet, road_net
from layers.demo.streets import street_plan

Row = dict[str, Any]

SEED_SALT = 27  # this module's generator: the demo's seed and this salt
LOADING_SITES = {"construction", "demolition", "road"}  # dust sites where muck is loaded
SITE_SIDE_M = (120.0, 260.0)
YARDS = 4
YARD_SIDE_M = 300.0
YARD_WAY = (0.3, 0.45)  # out in the fields on the way from a town to the seat
NO_GO_SHARE = 0.5  # of the seat's radius
NO_GO_HOURS = "06:00-21:00"  # muck trucks keep out of the centre by day
STRICT_STREETS = 2
STRICT_HALF_WIDTH_M = 20.0
ROUTED_COMPANIES = 2  # haulage companies held to a route corridor
CORRIDOR_HALF_WIDTH_M = 60.0


def _multi(shape: BaseGeometry, epsg: int) -> MultiPolygon:
    degrees = from_gk([shape], epsg)[0]
    return degrees if isinstance(degrees, MultiPolygon) else MultiPolygon([degrees])


def _square(x: float, y: float, side: float, angle: float) -> BaseGeometry:
    square = shapely.box(x - side / 2, y - side / 2, x + side / 2, y + side / 2)
    return shapely.affinity.rotate(square, angle, origin=(x, y))


def _corridor(net: RoadNet, lines: list[LineString], ends: list[Point]) -> BaseGeometry:
    """The roads and the ways from each of `ends` to its nearest junction, widened."""
    ways = [LineString([(p.x, p.y), tuple(net.nodes[net.nearest(p.x, p.y)])]) for p in ends]
    return shapely.union_all([*lines, *ways]).buffer(CORRIDOR_HALF_WIDTH_M, quad_segs=4)


def geofences(
    population: Population,
    epsg: int,
    dust_sites: list[Row],
    seed: int,
    vehicles: list[Row] | None = None,
) -> list[Row]:
    """The rows of the `geofences` layer (corridors for the haulage companies of `vehicles`)."""
    rng = np.random.default_rng([seed, SEED_SALT])
    rows: list[Row] = []

    def fence(kind: str, name: str, shape: BaseGeometry, windows: str | None = None) -> None:
        rows.append(
            {
                "geom": _multi(shape, epsg),
                "kind": kind,
                "name": name,
                "vehicle_id": None,
                "company": None,
                "time_windows": windows,
            }
        )

    loading = [s for s in dust_sites if s["site_type"] in LOADING_SITES and s["status"] == "active"]
    site_points = list(to_gk([s["geom"] for s in loading], epsg))
    for site, point in zip(loading, site_points, strict=True):
        side = rng.uniform(*SITE_SIDE_M)
        fence("site", f"{site['name']}工地", _square(point.x, point.y, side, rng.uniform(0, 90)))
    seat = population.towns[0]
    yard_points = []
    for number, town in enumerate(population.towns[1 : YARDS + 1], start=1):
        way = rng.uniform(*YARD_WAY)
        x, y = town.x + way * (seat.x - town.x), town.y + way * (seat.y - town.y)
        yard_points.append(Point(x, y))
        fence("yard", f"第{number}渣土消纳场", _square(x, y, YARD_SIDE_M, rng.uniform(0, 90)))
    centre = Point(seat.x, seat.y).buffer(seat.radius_m * NO_GO_SHARE, quad_segs=16)
    fence("no_go", f"{seat.name}中心城区渣土车禁行区", centre, NO_GO_HOURS)
    streets = [s for s in street_plan(population).town_streets() if s.town == seat.name]
    longest = sorted(streets, key=lambda s: -s.length)
    for street in longest[:STRICT_STREETS]:
        line = LineString([street.start, street.end])
        fence(
            "strict_street",
            f"{street.name}严管街",
            line.buffer(STRICT_HALF_WIDTH_M, cap_style="flat"),
        )
    plan = street_plan(population)
    net, lines = road_net(plan), list(plan.lines())
    depots = {v["company"]: v["geom"] for v in vehicles or () if v["kind"] == "muck"}
    for company in list(depots)[:ROUTED_COMPANIES]:
        depot = to_gk([depots[company]], epsg)[0]
        shape = _corridor(net, lines, [*site_points, *yard_points, depot])
        fence("corridor", f"{company}核准路线", shape.intersection(population.region))
        rows[-1]["company"] = company
    return rows
