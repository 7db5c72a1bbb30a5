"""The demo city's component census (部件普查): about 25,000 components of GB/T 30428.2 where
people are — street lights, trees, bins and manhole covers of several owners spaced along the
town streets, poles, lights, signs and bus shelters along the main roads, street-name signs and
traffic lights at junctions, public toilets named by their street — each with its 主管部门,
权属单位 and 养护单位 from the demo's unit directory."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely

from gis.zones import from_gk
from layers.demo.features import DemoContext, Row
from layers.demo.owners import OWNERSHIP
from layers.demo.streets import Street, StreetPlan, street_plan

STATUSES = (("intact", 0.9), ("damaged", 0.07), ("lost", 0.02), ("abandoned", 0.01))
JITTER_M = 1.5


@dataclass(frozen=True)
class Along:
    """Components of one subclass every `spacing_m` along streets, `offset_m` off the centre
    line; `sides` 1 (one side), 2 (alternating sides) or 0 (both sides at every place)."""

    subclass: str
    spacing_m: float
    offset_m: float
    sides: int = 1
    main_roads: bool = False
    named: str | None = None  # a name after the street: "{street}{n}…"


TOWN_STREETS = (
    Along("路灯", 45.0, 12.0, 2),
    Along("行道树", 75.0, 9.0, 0),
    Along("果皮箱", 100.0, 8.0, 2),
    Along("上水井盖", 150.0, 4.0),
    Along("污水井盖", 80.0, 0.0),
    Along("雨水井盖", 70.0, 5.0, 2),
    Along("电力井盖", 200.0, -6.0),
    Along("路灯井盖", 250.0, 11.0),
    Along("通信井盖", 120.0, 6.0, 2),
    Along("燃气井盖", 200.0, -3.0),
    Along("消防栓", 150.0, 10.0, 2),
    Along("通信交接箱", 400.0, 11.0, 2),
    Along("公交站亭", 700.0, 14.0, 0, named="{street}{n}号站"),
    Along("公共厕所", 1800.0, 20.0, 2, named="{street}{n}号公厕"),
)
MAIN_ROADS = (
    Along("路灯", 60.0, 15.0, 1, True),
    Along("电杆", 80.0, -18.0, 1, True),
    Along("行道树", 150.0, 12.0, 0, True),
    Along("交通标志牌", 1000.0, 12.0, 2, True),
    Along("公交站亭", 1500.0, 14.0, 0, True, named="{street}{n}号站"),
)
# per junction: subclass, corners (diagonal offsets in metres), only in the county seat
AT_JUNCTIONS = (
    ("路名牌", ((15.0, 15.0), (-15.0, -15.0)), False),
    ("交通标志牌", ((25.0, -12.0),), False),
    ("交通信号灯", ((10.0, 10.0), (-10.0, 10.0), (10.0, -10.0), (-10.0, -10.0)), True),
)


@dataclass
class Placed:
    """Components of one subclass placed in metres, with the street each belongs to."""

    subclass: str
    xy: npt.NDArray[np.float64]
    streets: list[str]
    names: list[str | None]


def _along(street: Street, spec: Along, phase: float) -> tuple[npt.NDArray[np.float64], int]:
    start, end = np.array(street.start), np.array(street.end)
    direction = (end - start) / street.length
    normal = np.array([-direction[1], direction[0]])
    d = np.arange(phase * spec.spacing_m, street.length, spec.spacing_m)
    if spec.sides == 0:
        d, side = np.repeat(d, 2), np.tile([1.0, -1.0], len(d))
    elif spec.sides == 2:
        side = np.where(np.arange(len(d)) % 2 == 0, 1.0, -1.0)
    else:
        side = np.ones(len(d))
    xy = start + d[:, None] * direction + (side * spec.offset_m)[:, None] * normal
    return xy, len(d)


def _place_along(ctx: DemoContext, plan: StreetPlan, spec: Along) -> Placed:
    streets = plan.main_roads() if spec.main_roads else plan.town_streets()
    chunks, names, labels = [], [], []
    for street in streets:
        xy, n = _along(street, spec, float(ctx.rng.random()))
        chunks.append(xy)
        names += [street.name] * n
        labels += [
            spec.named.format(street=street.name, n=(i // 2 if spec.sides == 0 else i) + 1)
            if spec.named
            else None
            for i in range(n)  # the two stops of a place on both sides share a name
        ]
    xy = np.vstack(chunks) if chunks else np.empty((0, 2))
    return Placed(spec.subclass, xy + ctx.rng.normal(scale=JITTER_M, size=xy.shape), names, labels)


def _place_at_junctions(
    ctx: DemoContext,
    plan: StreetPlan,
    subclass: str,
    corners: tuple[tuple[float, float], ...],
    seat_only: bool,
) -> Placed:
    seat = ctx.population.towns[0].name
    chosen = [j for j in plan.junctions if not seat_only or j.town == seat]
    xy, streets, names = [], [], []
    for j in chosen:
        for k, (dx, dy) in enumerate(corners):
            xy.append((j.x + dx, j.y + dy))
            street = j.streets[k % 2]
            streets.append(street)
            names.append(street if subclass == "路名牌" else None)
    arr = np.asarray(xy, dtype=float).reshape(-1, 2)
    return Placed(subclass, arr + ctx.rng.normal(scale=JITTER_M, size=arr.shape), streets, names)


def census(ctx: DemoContext, plan: StreetPlan) -> list[Placed]:
    """Every component of the census in metres, by subclass name, inside the county."""
    placed = [_place_along(ctx, plan, spec) for spec in TOWN_STREETS + MAIN_ROADS]
    placed += [_place_at_junctions(ctx, plan, *spec) for spec in AT_JUNCTIONS]
    region = ctx.population.region
    kept = []
    for p in placed:
        inside = shapely.contains_xy(region, p.xy[:, 0], p.xy[:, 1])
        idx = np.flatnonzero(inside)
        kept.append(
            Placed(p.subclass, p.xy[idx], [p.streets[i] for i in idx], [p.names[i] for i in idx])
        )
    return kept


def _pick(rng: np.random.Generator, options: tuple[tuple[str, float], ...]) -> str:
    weights = np.array([w for _, w in options])
    return options[int(rng.choice(len(options), p=weights / weights.sum()))][0]


def components(ctx: DemoContext, subclass_codes: dict[str, str], adcode: str) -> list[Row]:
    """The census as rows of the components layer: IDs numbered per subclass from 000001, each
    street's components of a subclass with one owner and maintainer (a contract per street).
    `subclass_codes` maps the catalogue's component subclass names to their codes; a subclass
    the catalogue lacks is left out."""
    plan = street_plan(ctx.population)
    surveyed = date(ctx.year - 1, 6, 1)
    rows: list[Row] = []
    serials: dict[str, int] = defaultdict(int)
    for placed in census(ctx, plan):
        code = subclass_codes.get(placed.subclass)
        if code is None or not len(placed.xy):
            continue
        department, owners, maintainers = OWNERSHIP[placed.subclass]
        by_street: dict[str, tuple[str, str]] = {}
        for street in dict.fromkeys(placed.streets):
            owner = _pick(ctx.rng, owners)
            by_street[street] = (owner, _pick(ctx.rng, maintainers.get(owner, ((owner, 1.0),))))
        geoms = from_gk(shapely.points(placed.xy), ctx.epsg)
        statuses = ctx.rng.choice(
            [s for s, _ in STATUSES], size=len(geoms), p=[p for _, p in STATUSES]
        )
        for geom, street, name, status in zip(
            geoms, placed.streets, placed.names, statuses, strict=True
        ):
            serials[code] += 1
            owner, maintainer = by_street[street]
            row: dict[str, Any] = {
                "geom": geom,
                "component_code": f"{adcode}{code[1:5]}{serials[code]:06d}",
                "subclass_code": code,
                "name": name,
                "status": str(status),
                "department": department,
                "owner_unit": owner,
                "maintainer_unit": maintainer,
                "first_surveyed_on": surveyed,
                "data_source": "census",
                "accuracy": "1m",
                "valid_from": surveyed,
            }
            rows.append(row)
    return rows


RAILING_M = 600.0  # 护栏 along each end of a main road, where it leaves or enters a town
RAILING_OFFSET_M = 9.0  # off the road's centre line, on its right-hand side
GREEN_M = (40.0, 30.0)  # a 绿地 beside a junction of town streets, metres east and north
GREEN_OFFSET_M = 18.0  # from the junction, clear of the carriageways


def _railings(plan: StreetPlan) -> list[tuple[shapely.Geometry, str]]:
    """Railing lines (metres) at both ends of every main road, with the road's name."""
    found = []
    for road in (s for s in plan.streets if s.main_road):
        (x0, y0), (x1, y1) = road.start, road.end
        length = road.length
        ux, uy = (x1 - x0) / length, (y1 - y0) / length
        nx, ny = uy * RAILING_OFFSET_M, -ux * RAILING_OFFSET_M
        for a, b in ((0.0, min(RAILING_M, length)), (max(length - RAILING_M, 0.0), length)):
            line = shapely.LineString(
                [(x0 + ux * a + nx, y0 + uy * a + ny), (x0 + ux * b + nx, y0 + uy * b + ny)]
            )
            found.append((line, road.name))
    return found


def _greens(plan: StreetPlan) -> list[tuple[shapely.Geometry, str]]:
    """Green spaces (metres) beside every other junction of the town streets."""
    width, height = GREEN_M
    return [
        (
            shapely.box(
                j.x + GREEN_OFFSET_M,
                j.y + GREEN_OFFSET_M,
                j.x + GREEN_OFFSET_M + width,
                j.y + GREEN_OFFSET_M + height,
            ),
            j.streets[0],
        )
        for j in plan.junctions[::2]
    ]


def _multi(geom: shapely.Geometry) -> shapely.Geometry:
    if isinstance(geom, shapely.LineString):
        return shapely.MultiLineString([geom])
    if isinstance(geom, shapely.Polygon):
        return shapely.MultiPolygon([geom])
    return geom


def shaped(ctx: DemoContext, subclass_codes: dict[str, str], adcode: str) -> dict[str, list[Row]]:
    """The census's lines and areas: railings (护栏) along the main roads where they meet the
    towns, green spaces (绿地) beside junctions of the town streets; by layer, IDs from 000001."""
    plan = street_plan(ctx.population)
    region = ctx.population.region
    surveyed = date(ctx.year - 1, 6, 1)
    found: dict[str, list[Row]] = {}
    for layer, subclass, shapes in (
        ("component_lines", "护栏", _railings(plan)),
        ("component_areas", "绿地", _greens(plan)),
    ):
        code = subclass_codes.get(subclass)
        if code is None:
            continue
        department, owners, maintainers = OWNERSHIP[subclass]
        kept = [(g.intersection(region), name) for g, name in shapes if g.intersects(region)]
        geoms = from_gk([g for g, _ in kept], ctx.epsg)
        rows: list[Row] = []
        for serial, (geom, (_, street)) in enumerate(zip(geoms, kept, strict=True), start=1):
            owner = _pick(ctx.rng, owners)
            rows.append(
                {
                    "geom": _multi(geom),
                    "component_code": f"{adcode}{code[1:5]}{serial:06d}",
                    "subclass_code": code,
                    "name": f"{street}{subclass}",
                    "status": "intact",
                    "department": department,
                    "owner_unit": owner,
                    "maintainer_unit": _pick(ctx.rng, maintainers.get(owner, ((owner, 1.0),))),
                    "first_surveyed_on": surveyed,
                    "data_source": "census",
                    "accuracy": "1m",
                    "valid_from": surveyed,
                }
            )
        found[layer] = rows
    return found


@dataclass(frozen=True)
class CaseComponent:
    """A component a case is raised on, and the unit that maintains it."""

    component_code: str
    subclass_code: str
    point: Any
    maintainer_unit: str


CASE_WEIGHTS = {"intact": 1.0, "damaged": 25.0, "lost": 25.0, "abandoned": 0.0}


def pick_for_cases(rows: list[Row], n: int, rng: np.random.Generator) -> list[CaseComponent]:
    """`n` distinct components for cases raised on components, mostly damaged or lost ones
    (an abandoned component raises none); fewer when fewer can."""
    weights = np.array([CASE_WEIGHTS.get(str(r["status"]), 0.0) for r in rows])
    candidates = int((weights > 0).sum())
    if not candidates or n <= 0:
        return []
    chosen = rng.choice(
        len(rows), size=min(n, candidates), replace=False, p=weights / weights.sum()
    )
    return [
        CaseComponent(
            str(rows[i]["component_code"]),
            str(rows[i]["subclass_code"]),
            rows[i]["geom"],
            str(rows[i]["maintainer_unit"]),
        )
        for i in chosen
    ]
