"""The demo city's watched things: billboards, dust sites, illegal buildings, parking lots.

Counts and totals follow the 启东 2023 report: 226 dust sites checked 724 times with 144
problems and 104 work orders; 1,700+ graded shop signs; 46 new (497.7675 m²) and 38 existing
(2,897.571 m²) illegal buildings demolished; 5 large poles (1,629.05 m²), 57 other ads
(1,442.61 m²) and 26 window covers (1,305.05 m²) removed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry import MultiPolygon, Point, Polygon

from gis.zones import from_gk, to_gk, zone_epsg
from layers.demo.names import NameBook
from layers.demo.population import Mix, Population

Row = dict[str, Any]

SHOP_STREETS = Mix(cores=0.65, streets=0.35, rural=0.0)
PERI_URBAN = Mix(cores=0.45, streets=0.35, rural=0.20)
COUNTRYSIDE = Mix(cores=0.25, streets=0.25, rural=0.50)


@dataclass(frozen=True)
class DemoContext:
    """What every generator needs: randomness, names, the people model and the zone."""

    rng: np.random.Generator
    names: NameBook
    population: Population
    epsg: int
    year: int

    def day(self, n: int, start: date | None = None, end: date | None = None) -> list[date]:
        """`n` random days between `start` and `end` (default: the demo year)."""
        start = start or date(self.year, 1, 1)
        end = end or date(self.year, 12, 31)
        offsets = self.rng.integers(0, (end - start).days + 1, size=n)
        return [start + timedelta(days=int(o)) for o in offsets]

    def points(self, n: int, mix: Mix) -> npt.NDArray[np.object_]:
        """`n` CGCS2000 points drawn from the people model."""
        xy = self.population.sample(self.rng, n, mix)
        return from_gk(shapely.points(xy), self.epsg)


def split_total(
    rng: np.random.Generator, total: float, weights: npt.ArrayLike, decimals: int
) -> list[float]:
    """Random parts of `total` proportional to `weights` × noise that add up exactly to `total`."""
    w = np.asarray(weights, dtype=float) * rng.gamma(4.0, 1.0, size=len(np.atleast_1d(weights)))
    parts = np.round(total * w / w.sum(), decimals)
    parts[-1] = round(total - parts[:-1].sum(), decimals)
    return [float(p) for p in parts]


def footprint(
    centre: Point, area_m2: float, rng: np.random.Generator, aspect: float | None = None
) -> MultiPolygon:
    """A rotated rectangle of exactly `area_m2` around a CGCS2000 point, in its own GK zone."""
    epsg = int(zone_epsg(centre.x))
    cx, cy = to_gk([centre], epsg)[0].coords[0]
    ratio = aspect if aspect is not None else float(rng.uniform(0.5, 2.0))
    w = float(np.sqrt(area_m2 * ratio))
    h = area_m2 / w
    angle = float(rng.uniform(0, np.pi))
    corners = np.array([[-w / 2, -h / 2], [w / 2, -h / 2], [w / 2, h / 2], [-w / 2, h / 2]])
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    ring = corners @ rot.T + [cx, cy]
    return MultiPolygon([from_gk([Polygon(ring)], epsg)[0]])


BILLBOARD_COUNTS = {
    "shop_sign": 1712,
    "light_box": 36,
    "rooftop": 24,
    "wall": 14,
    "pole": 12,
    "window_cover": 40,
    "other": 6,
}
FACE_AREA = {  # median face area (m²) by type
    "shop_sign": 6.0,
    "light_box": 3.0,
    "rooftop": 40.0,
    "wall": 30.0,
    "pole": 300.0,
    "window_cover": 45.0,
    "other": 8.0,
}
RISK_GRADES = (["A", "B", "C", "D"], [0.70, 0.20, 0.08, 0.02])


def billboards(ctx: DemoContext, scale: float = 1.0) -> list[Row]:
    """~1,800 billboards; every shop sign graded; the year's removals as in the report."""
    rng = ctx.rng
    types = [t for t, n in BILLBOARD_COUNTS.items() for _ in range(round(n * scale))]
    pts = ctx.points(len(types), SHOP_STREETS)
    rows: list[Row] = []
    for t, p in zip(types, pts, strict=True):
        graded = t == "shop_sign" or rng.random() < 0.5
        rows.append(
            {
                "geom": p,
                "type": t,
                "face_area_m2": round(float(FACE_AREA[t] * rng.lognormal(0, 0.35)), 2),
                "owner": ctx.names.shop()
                if t in {"shop_sign", "light_box"}
                else ctx.names.company("汇龙镇"),
                "risk_grade": str(rng.choice(RISK_GRADES[0], p=RISK_GRADES[1])) if graded else None,
                "safety_report": f"AQJC-{ctx.year}-{len(rows) + 1:05d}" if graded else None,
                "last_inspected_on": ctx.day(1)[0] if graded else None,
                "removed_on": None,
                "removed_area_m2": None,
            }
        )
    _remove(ctx, rows, {"pole": 5}, 1629.05)
    _remove(ctx, rows, {"rooftop": 10, "shop_sign": 35, "light_box": 12}, 1442.61)
    _remove(ctx, rows, {"window_cover": 26}, 1305.05)
    return rows


def _remove(ctx: DemoContext, rows: list[Row], how_many: dict[str, int], total_m2: float) -> None:
    chosen: list[Row] = []
    for kind, n in how_many.items():
        pool = [r for r in rows if r["type"] == kind and r["removed_on"] is None]
        chosen += [pool[i] for i in ctx.rng.choice(len(pool), size=n, replace=False)]
    areas = split_total(ctx.rng, total_m2, [FACE_AREA[r["type"]] for r in chosen], 2)
    for row, area in zip(chosen, areas, strict=True):
        row.update(face_area_m2=area, removed_area_m2=area, removed_on=ctx.day(1)[0])


def illegal_buildings(ctx: DemoContext, new: int = 120, existing: int = 300) -> list[Row]:
    """Several hundred illegal buildings; the year's demolitions add up to the report's areas."""
    rng = ctx.rng
    rows: list[Row] = []
    for category, total, demolished, demolished_m2, median in (
        ("new", new, 46, 497.7675, 12.0),
        ("existing", existing, 38, 2897.571, 60.0),
    ):
        pts = ctx.points(total, COUNTRYSIDE)
        areas = split_total(rng, demolished_m2, np.ones(demolished), 4)
        areas += [
            round(float(median * rng.lognormal(0, 0.8)), 2) for _ in range(total - demolished)
        ]
        for i, (p, area) in enumerate(zip(pts, areas, strict=True)):
            gone = i < demolished
            found = (
                ctx.day(1)[0]
                if category == "new"
                else ctx.day(1, date(2015, 1, 1), date(ctx.year - 1, 12, 31))[0]
            )
            status = (
                "demolished"
                if gone
                else str(rng.choice(["pending", "ordered", "retained"], p=[0.45, 0.4, 0.15]))
            )
            rows.append(
                {
                    "geom": footprint(p, area, rng),
                    "category": category,
                    "found_by": str(
                        rng.choice(
                            ["remote_sensing", "patrol", "complaint"],
                            p=[0.3, 0.5, 0.2] if category == "new" else [0.7, 0.2, 0.1],
                        )
                    ),
                    "status": status,
                    "address": None,
                    "party": ctx.names.person(),
                    "found_on": found,
                    "demolished_on": ctx.day(1, max(found, date(ctx.year, 1, 1)))[0]
                    if gone
                    else None,
                    "demolished_area_m2": area if gone else None,
                }
            )
    return rows


PARKING_COUNTS = {"public": 80, "dedicated": 110, "temporary": 40, "on_street": 70}
SHARED_TIME_LOTS = 4  # the report's 错时共享 lots; the other counts are the demo's own
M2_PER_SPACE = 28.0
ON_STREET_SPACE_M = (2.5, 6.0)


def parking_lots(ctx: DemoContext) -> list[Row]:
    """A few hundred parking lots in the towns (a made-up inventory: the report counts no lots
    but its 4 shared-time ones, which are the 4 public lots drawn first for sharing); on-street
    bays are strips along the road."""
    rng = ctx.rng
    kinds = [k for k, n in PARKING_COUNTS.items() for _ in range(n)]
    pts = ctx.points(len(kinds), SHOP_STREETS)
    label = {
        "public": "公共停车场",
        "dedicated": "停车场",
        "temporary": "临时停车场",
        "on_street": "道路泊位",
    }
    rows: list[Row] = []
    shared_lots = 0
    for i, (kind, p) in enumerate(zip(kinds, pts, strict=True), start=1):
        if kind == "on_street":
            spaces = int(rng.integers(6, 40))
            width, length = ON_STREET_SPACE_M
            geom = footprint(p, width * length * spaces, rng, aspect=(length * spaces) / width)
        else:
            spaces = int(rng.integers(20, 400) if kind != "temporary" else rng.integers(15, 120))
            geom = footprint(p, spaces * M2_PER_SPACE, rng)
        # drawn for every such lot as before, so the rest of the demo stays as it was
        draw = rng.random() if kind in {"public", "dedicated"} else 1.0
        shared = kind == "public" and draw < 0.35 and shared_lots < SHARED_TIME_LOTS
        shared_lots += shared
        rows.append(
            {
                "geom": geom,
                "name": f"{ctx.names.place()}{label[kind]}{i:03d}"
                if kind != "dedicated"
                else f"{ctx.names.shop()}{label[kind]}",
                "category": kind,
                "spaces": spaces,
                "shared_windows": "工作日18:00-次日08:00；周末全天" if shared else None,
                "registration": str(
                    rng.choice(["registered", "pending", "unregistered"], p=[0.75, 0.1, 0.15])
                ),
                "operator": ctx.names.company("汇龙镇")
                if kind != "on_street"
                else "启东市城市管理局",
            }
        )
    return rows


SITE_TYPES = {
    "construction": 120,
    "demolition": 20,
    "road": 30,
    "water": 20,
    "yard": 16,
    "landscaping": 20,
}
SITE_LABEL = {
    "construction": "建设项目",
    "demolition": "拆迁项目",
    "road": "道路工程",
    "water": "水利工程",
    "yard": "堆场",
    "landscaping": "绿化工程",
}
DUST_PROBLEMS = [
    "裸土未覆盖",
    "车辆未冲洗",
    "围挡破损",
    "道路未洒水降尘",
    "渣土车未密闭",
    "喷淋设施未开启",
]


@dataclass
class DustRows:
    """Dust sites with their inspections and work orders (ids assigned, parents referenced)."""

    sites: list[Row]
    inspections: list[Row]
    work_orders: list[Row]


def dust_sites(
    ctx: DemoContext, inspections: int = 724, problems: int = 144, orders: int = 104
) -> DustRows:
    """226 sites checked `inspections` times finding `problems` problems and `orders` work orders."""
    rng = ctx.rng
    kinds = [k for k, n in SITE_TYPES.items() for _ in range(n)]
    pts = ctx.points(len(kinds), PERI_URBAN)
    sites = [
        {
            "id": i,
            "geom": p,
            "site_type": k,
            "name": f"{ctx.names.place()}{SITE_LABEL[k]}",
            "contractor": ctx.names.company("汇龙镇"),
            "status": str(rng.choice(["active", "suspended", "finished"], p=[0.75, 0.07, 0.18])),
            "started_on": ctx.day(1, date(ctx.year - 2, 1, 1), date(ctx.year, 10, 31))[0],
        }
        for i, (k, p) in enumerate(zip(kinds, pts, strict=True), start=1)
    ]
    visits = rng.choice(len(sites), size=inspections, p=_visit_weights(sites))
    inspectors = [ctx.names.person() for _ in range(8)]
    found = np.zeros(inspections, dtype=int)
    with_problems = rng.choice(inspections, size=orders, replace=False)
    found[with_problems] = 1
    extra = rng.choice(with_problems, size=problems - orders, replace=False)
    found[extra] += 1
    days = sorted(ctx.day(inspections))
    insp_rows = []
    for i, (site, day, n) in enumerate(zip(visits, days, found, strict=True), start=1):
        listed = list(rng.choice(DUST_PROBLEMS, size=n, replace=False)) if n else []
        insp_rows.append(
            {
                "id": i,
                "dust_site_id": sites[site]["id"],
                "inspected_on": day,
                "inspector": str(rng.choice(inspectors)),
                "problems_found": int(n),
                "problems": "；".join(listed) or None,
            }
        )
    return DustRows(
        sites, insp_rows, _work_orders(ctx, [r for r in insp_rows if r["problems_found"]])
    )


def _visit_weights(sites: list[Row]) -> npt.NDArray[np.float64]:
    w = np.array([{"active": 4.0, "suspended": 1.0, "finished": 0.5}[s["status"]] for s in sites])
    return w / w.sum()


def _work_orders(ctx: DemoContext, problem_inspections: list[Row]) -> list[Row]:
    rows = []
    year_end = date(ctx.year, 12, 31)
    for i, insp in enumerate(problem_inspections, start=1):
        issued = insp["inspected_on"] + timedelta(days=int(ctx.rng.integers(0, 2)))
        deadline = issued + timedelta(days=int(ctx.rng.choice([3, 5, 7])))
        took = (
            int(ctx.rng.integers(1, 6)) if ctx.rng.random() < 0.9 else int(ctx.rng.integers(8, 15))
        )
        done = issued + timedelta(days=took)
        result = "open" if done > year_end else ("on_time" if done <= deadline else "late")
        rows.append(
            {
                "id": i,
                "dust_site_id": insp["dust_site_id"],
                "inspection_id": insp["id"],
                "issued_on": issued,
                "deadline": deadline,
                "rectified_on": None if result == "open" else done,
                "result": result,
                "requirement": f"限期整改：{insp['problems']}",
            }
        )
    return rows
