"""The other systems of 启东's reports in the demo city: 53 residential compounds with 160
garbage-sorting points in their build stages (撤桶并点: 73 being rebuilt, 64 with water and
power connected or in service, 70 sorting rooms), 8 城管驿站, cameras at the street crossings,
520 shared e-bike parking points and 18,500 m of painted non-motor-vehicle parking lines along
the town centres' streets.

Everything is laid out in metres of the county's Gauss-Krüger zone on the demo's street plan
(`layers/demo/streets.py`) and drawn from its own generator seeded by the demo's seed, so adding
these layers leaves every other row of the demo as it was.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry import LineString, MultiPolygon, Point, Polygon
from shapely.geometry.base import BaseGeometry

from gis.zones import from_gk, to_gk
from layers.demo.grids import allocate
from layers.demo.names import NameBook
from layers.demo.population import Population, Town
from layers.demo.streets import Junction, Street, StreetPlan, street_plan

Row = dict[str, Any]

SEED_SALT = 18  # this module's generator: the demo's seed and this salt
COMPOUNDS = 53
SEAT_COMPOUNDS = 32  # the rest spread over the other towns
# the report's garbage-sorting points by kind and by build stage (160 in all)
POINT_KINDS = {"sorting_room": 70, "transfer": 6, "sorting_point": 84}
BUILD_STAGES = {"planned": 23, "building": 40, "built": 33, "connected": 30, "in_service": 34}
KIND_LABELS = {"sorting_room": "分类房", "transfer": "中转站", "sorting_point": "分类投放点"}
CERTIFICATIONS = (
    ["none", "no_illegal_building", "sorting_model", "model_property", "civilised"],
    [0.35, 0.35, 0.1, 0.1, 0.1],
)
STATIONS = 8
STATION_DUTIES = "便民服务；文明劝导；受理群众诉求；门前三包巡查；应急避险"
CAMERA_SOURCES = {  # source: (share, GB/T 28181 industry code, network digit)
    "police": (0.3, "00", "5"),
    "comprehensive": (0.25, "01", "6"),
    "traffic": (0.2, "04", "5"),
    "urban_management": (0.15, "08", "6"),
    "greenway": (0.05, "08", "7"),
    "other": (0.05, "03", "8"),
}
CAMERA_TYPE = "132"  # network camera
CAMERA_CORNER_M = 8.0
BIKE_POINTS = 520
BIKE_OPERATORS = ["哈啰", "美团", "青桔"]
BIKE_OFFSET_M = 10.0
PARKING_LINES_M = 18_500.0
LINE_OFFSET_M = 6.0
LINE_SLOT_M = 100.0  # one painted line at most per this much of a street side
CENTRE_SHARE = 0.7  # the town centre: streets within this share of the town's radius


@dataclass(frozen=True)
class Axes:
    """A town's street grid: its centre, the unit vectors of its 路 and 街, and their offsets."""

    centre: npt.NDArray[np.float64]
    along: npt.NDArray[np.float64]
    across: npt.NDArray[np.float64]
    us: npt.NDArray[np.float64]  # the 街 crossing the 路, as offsets along them
    vs: npt.NDArray[np.float64]  # the 路, as offsets across them

    def point(self, u: float, v: float) -> npt.NDArray[np.float64]:
        """The point at offsets (u, v) of the grid, in metres."""
        return self.centre + self.along * u + self.across * v


def _axes(town: Town, streets: list[Street], junctions: list[Junction]) -> Axes:
    road = next(s for s in streets if s.name.endswith("路"))
    along = np.subtract(road.end, road.start)
    along = along / np.hypot(*along)
    across = np.array([-along[1], along[0]])
    centre = np.array([town.x, town.y])
    xy = np.array([[j.x, j.y] for j in junctions]) - centre
    us = np.unique(np.round(xy @ along, 3))
    vs = np.unique(np.round(xy @ across, 3))
    return Axes(centre, along, across, us, vs)


def _rectangle(axes: Axes, u: float, v: float, width: float, height: float) -> Polygon:
    corners = [(-1, -1), (1, -1), (1, 1), (-1, 1)]
    return Polygon([axes.point(u + a * width / 2, v + b * height / 2) for a, b in corners])


@dataclass
class Generated:
    """What every part of this module draws from."""

    rng: np.random.Generator
    names: NameBook
    population: Population
    plan: StreetPlan
    epsg: int
    year: int
    adcode: str

    def day(self, start: date, end: date) -> date:
        """A random day from `start` to `end`."""
        return start + timedelta(days=int(self.rng.integers(0, (end - start).days + 1)))

    def town_streets(self, town: Town) -> list[Street]:
        """The streets of one town."""
        return [s for s in self.plan.town_streets() if s.town == town.name]

    def town_junctions(self, town: Town) -> list[Junction]:
        """The junctions of one town."""
        return [j for j in self.plan.junctions if j.town == town.name]


def _built_up(grid_rows: list[Row], epsg: int) -> BaseGeometry:
    """The towns' built-up community grids (社区, not 村), in metres."""
    urban = [
        r["geom"] for r in grid_rows if r["level"] == "community" and r["name"].endswith("社区")
    ]
    return shapely.union_all(to_gk(urban, epsg))


def _compound_sites(g: Generated, built_up: BaseGeometry) -> list[tuple[Town, Polygon]]:
    """Rectangles in the quarters of the town blocks, clear of the streets, inside built-up grids:
    as many as `COMPOUNDS`, most of them in the county seat."""
    shapely.prepare(built_up)
    by_town: list[list[tuple[Town, Polygon]]] = []
    for town in g.population.towns:
        axes = _axes(town, g.town_streets(town), g.town_junctions(town))
        spacing = float(axes.us[1] - axes.us[0])
        quarter = spacing / 2
        sites = []
        for u0, u1 in zip(axes.us[:-1], axes.us[1:], strict=True):
            for v0, v1 in zip(axes.vs[:-1], axes.vs[1:], strict=True):
                for du in (-1, 1):
                    for dv in (-1, 1):
                        u = (u0 + u1) / 2 + du * quarter / 2
                        v = (v0 + v1) / 2 + dv * quarter / 2
                        w, h = g.rng.uniform(0.5, 0.8, size=2) * quarter
                        shape = _rectangle(axes, u, v, float(w), float(h))
                        if built_up.contains(shape) and g.population.region.contains(shape):
                            sites.append((town, shape))
        by_town.append([sites[i] for i in g.rng.permutation(len(sites))])
    seat, others = by_town[0], by_town[1:]
    chosen = seat[:SEAT_COMPOUNDS]
    for rank in range(max(map(len, others), default=0)):  # the other towns in turn
        chosen += [sites[rank] for sites in others if rank < len(sites)]
    chosen += seat[SEAT_COMPOUNDS:]  # the seat again where the towns have too few
    if len(chosen) < COMPOUNDS:
        raise RuntimeError(f"only {len(chosen)} compound sites in the built-up grids")
    return chosen[:COMPOUNDS]


def compounds(g: Generated, built_up: BaseGeometry) -> tuple[list[Row], list[Polygon]]:
    """The 53 compounds (ids from 1), and their shapes in metres."""
    sites = _compound_sites(g, built_up)
    shapes = [shape for _, shape in sites]
    degrees = from_gk(shapes, g.epsg)
    rows = []
    suffixes = ["花园", "小区", "新村", "苑", "公寓", "家园"]
    taken: set[str] = set()
    for i, ((town, shape), geom) in enumerate(zip(sites, degrees, strict=True), start=1):
        cert = str(g.rng.choice(CERTIFICATIONS[0], p=CERTIFICATIONS[1]))
        name = f"{g.names.place()}{suffixes[i % len(suffixes)]}"
        while name in taken:  # the name is how people and files name a compound
            name = f"{g.names.place()}{suffixes[i % len(suffixes)]}"
        taken.add(name)
        rows.append(
            {
                "id": i,
                "geom": MultiPolygon([geom]),
                "name": name,
                "address": f"启东市{town.name}",
                "households": int(shape.area * g.rng.uniform(0.008, 0.016)),
                "property_manager": f"启东市{g.names.place()}物业管理有限公司",
                "sorting_coverage": None,  # from its points, below
                "certification": cert,
            }
        )
    return rows, shapes


def garbage_points(g: Generated, compound_rows: list[Row], shapes: list[Polygon]) -> list[Row]:
    """160 points in the compounds (two at least each, more in the larger), by kind and stage."""
    total = sum(POINT_KINDS.values())
    per_compound = allocate(total, [r["households"] for r in compound_rows], minimum=2)
    kinds = [k for k, n in POINT_KINDS.items() for _ in range(n)]
    stages = [s for s, n in BUILD_STAGES.items() for _ in range(n)]
    kinds = [kinds[i] for i in g.rng.permutation(total)]
    stages = [stages[i] for i in g.rng.permutation(total)]
    owner = np.repeat(np.arange(len(compound_rows)), per_compound)
    rows: list[Row] = []
    xy = []
    for c, kind, stage in zip(owner, kinds, stages, strict=True):
        shape = shapes[int(c)]
        ring = np.asarray(shape.exterior.coords)[:4]
        a, b = g.rng.uniform(0.15, 0.85, size=2)  # inside, off the fence
        xy.append(ring[0] + (ring[1] - ring[0]) * a + (ring[3] - ring[0]) * b)
        compound = compound_rows[int(c)]
        number = sum(1 for r in rows if r["compound_id"] == compound["id"]) + 1
        in_use = stage == "in_service"
        rows.append(
            {
                "name": f"{compound['name']}{number}号{KIND_LABELS[kind]}",
                "compound_id": compound["id"],
                "kind": kind,
                "build_status": stage,
                "supervisor": g.names.person() if stage in ("connected", "in_service") else None,
                "opening_hours": "06:00-18:00" if kind == "transfer" else "07:00-09:00,18:00-20:00",
                "in_service_on": g.day(date(g.year - 1, 1, 1), date(g.year, 12, 31))
                if in_use
                else None,
            }
        )
    geoms = from_gk(shapely.points(np.asarray(xy)), g.epsg)
    for row, geom in zip(rows, geoms, strict=True):
        row["geom"] = geom
    for compound in compound_rows:
        mine = [r for r in rows if r["compound_id"] == compound["id"]]
        serving = sum(1 for r in mine if r["build_status"] == "in_service")
        # whole percent, halves up (as the database rounds)
        compound["sorting_coverage"] = (200 * serving + len(mine)) // (2 * len(mine))
    return rows


def stations(g: Generated) -> list[Row]:
    """One 城管驿站 by the central junction of every town, two in the county seat."""
    towns = g.population.towns
    places = [(t, 0) for t in towns] + [(towns[0], 1)] * (STATIONS - len(towns))
    rows = []
    for town, rank in places[:STATIONS]:
        junctions = sorted(
            g.town_junctions(town), key=lambda j: math.hypot(j.x - town.x, j.y - town.y)
        )
        junction = junctions[rank * 3]
        xy = (junction.x + 25.0, junction.y + 25.0)
        street = junction.streets[rank % 2]
        staff = "、".join(g.names.person() for _ in range(3))
        rows.append(
            {
                "geom": from_gk([Point(xy)], g.epsg)[0],
                "name": f"{town.name}{street}城管驿站",
                "address": f"启东市{town.name}{junction.streets[0]}与{junction.streets[1]}交叉口",
                "staff": f"站长：{g.names.person()}；队员：{staff}",
                "duties": STATION_DUTIES,
                "opening_hours": "08:00-20:00",
                "phone": g.names.phone(),
            }
        )
    return rows


def _bearing(vector: npt.ArrayLike) -> float:
    """Degrees clockwise from grid north."""
    dx, dy = np.asarray(vector, dtype=float)
    return math.degrees(math.atan2(dx, dy)) % 360.0


def cameras(g: Generated) -> list[Row]:
    """Two cameras at every street crossing, one watching along each street."""
    sources = list(CAMERA_SOURCES)
    shares = np.array([CAMERA_SOURCES[s][0] for s in sources])
    serials = dict.fromkeys(sources, 0)
    rows: list[Row] = []
    xy = []
    for town in g.population.towns:
        axes = _axes(town, g.town_streets(town), g.town_junctions(town))
        for j in g.town_junctions(town):
            for direction, corner in (
                (axes.along, axes.across),
                (axes.across, -axes.along),
            ):
                source = str(g.rng.choice(sources, p=shares / shares.sum()))
                serials[source] += 1
                _, industry, network = CAMERA_SOURCES[source]
                way = 1.0 if g.rng.random() < 0.5 else -1.0
                device = f"{g.adcode}00{industry}{CAMERA_TYPE}{network}{serials[source]:06d}"
                xy.append(np.array([j.x, j.y]) + (corner + direction * way) * CAMERA_CORNER_M)
                rows.append(
                    {
                        "device_id": device,
                        "name": f"{j.streets[0]}{j.streets[1]}路口{len(rows) % 2 + 1}",
                        "source": source,
                        "direction_deg": round(
                            (_bearing(direction * way) + g.rng.normal(0, 4)) % 360, 1
                        ),
                        "view_angle_deg": float(g.rng.choice([60.0, 75.0, 90.0])),
                        "view_range_m": float(g.rng.choice([50.0, 80.0, 120.0])),
                        "status": str(
                            g.rng.choice(["online", "offline", "fault"], p=[0.93, 0.05, 0.02])
                        ),
                        "installed_on": g.day(date(g.year - 6, 1, 1), date(g.year, 6, 30)),
                    }
                )
    for row, geom in zip(rows, from_gk(shapely.points(np.asarray(xy)), g.epsg), strict=True):
        row["geom"] = geom
    return rows


def _central_stretches(g: Generated) -> list[tuple[Street, LineString]]:
    """The town streets' stretches in the town centres and inside the county, in metres."""
    out = []
    for town in g.population.towns:
        core = Point(town.x, town.y).buffer(town.radius_m * CENTRE_SHARE)
        for street in g.town_streets(town):
            stretch = LineString([street.start, street.end]).intersection(core)
            stretch = stretch.intersection(g.population.region)
            for part in getattr(stretch, "geoms", [stretch]):
                if isinstance(part, LineString) and part.length > LINE_SLOT_M:
                    out.append((street, part))
    return out


def _offset(line: LineString, at: float, side: float, distance: float) -> npt.NDArray[np.float64]:
    """The point `at` metres along `line`, `side × distance` metres to its left."""
    (x0, y0), (x1, y1) = line.coords[0], line.coords[-1]
    d = np.array([x1 - x0, y1 - y0]) / line.length
    return np.array([x0, y0]) + d * at + np.array([-d[1], d[0]]) * side * distance


def bike_points(g: Generated, stretches: list[tuple[Street, LineString]]) -> list[Row]:
    """520 parking points spread along the central streets, alternately on either side."""
    spots = [
        (street, line, float(at))
        for street, line in stretches
        for at in np.arange(25.0, line.length - 25.0, 50.0)
    ]
    picked = np.sort(g.rng.choice(len(spots), size=BIKE_POINTS, replace=False))
    rows: list[Row] = []
    xy = []
    counts: dict[str, int] = {}
    for n, i in enumerate(picked):
        street, line, at = spots[int(i)]
        counts[street.name] = counts.get(street.name, 0) + 1
        xy.append(_offset(line, at, 1.0 if n % 2 else -1.0, BIKE_OFFSET_M))
        rows.append(
            {
                "name": f"{street.town}{street.name}{counts[street.name]}号投放点",
                "road": street.name,
                "capacity": int(g.rng.integers(2, 9) * 5),
                "operator": str(g.rng.choice(BIKE_OPERATORS)),
            }
        )
    for row, geom in zip(rows, from_gk(shapely.points(np.asarray(xy)), g.epsg), strict=True):
        row["geom"] = geom
    return rows


def parking_lines(g: Generated, stretches: list[tuple[Street, LineString]]) -> list[Row]:
    """Painted lines of 15-60 m, one per 100 m slot of a street side, adding up to 18,500 m."""
    slots = [
        (street, line, float(start), side)
        for street, line in stretches
        for start in np.arange(0.0, line.length - LINE_SLOT_M, LINE_SLOT_M)
        for side in (-1.0, 1.0)
    ]
    order = g.rng.permutation(len(slots))
    rows: list[Row] = []
    left = PARKING_LINES_M
    for i in order:
        if left <= 0:
            break
        street, line, start, side = slots[int(i)]
        length = float(round(g.rng.uniform(15.0, 60.0), 1))
        if left - length < 15.0:  # the last line takes what is left, never a stub
            length = left
        length = min(length, LINE_SLOT_M - 10.0)
        begin = start + float(g.rng.uniform(0.0, LINE_SLOT_M - length))
        ends = [
            _offset(line, begin, side, LINE_OFFSET_M),
            _offset(line, begin + length, side, LINE_OFFSET_M),
        ]
        rows.append(
            {
                "geom": from_gk([LineString(ends)], g.epsg)[0],
                "road": street.name,
                "painted_on": g.day(date(g.year - 1, 3, 1), date(g.year, 11, 30)),
            }
        )
        left -= length
    return rows


def systems(
    population: Population, epsg: int, grid_rows: list[Row], adcode: str, year: int, seed: int
) -> dict[str, list[Row]]:
    """The rows of the six layers, by layer id."""
    rng = np.random.default_rng([seed, SEED_SALT])
    g = Generated(rng, NameBook(rng), population, street_plan(population), epsg, year, adcode)
    compound_rows, shapes = compounds(g, _built_up(grid_rows, epsg))
    points = garbage_points(g, compound_rows, shapes)
    stretches = _central_stretches(g)
    return {
        "residential_compounds": compound_rows,
        "garbage_points": points,
        "stations": stations(g),
        "cameras": cameras(g),
        "bike_parking_points": bike_points(g, stretches),
        "bike_parking_lines": parking_lines(g, stretches),
    }
