"""The demo county's routing table (派遣规则) and how its event cases are routed by it: garbage
and clutter go to the sanitation office county-wide, construction cases to the housing bureau,
shop-front trading in the seat's central community to the bureau itself; every other case goes to
the unit responsible for its grid (属地兜底), as `layers.cases.routing.route` decides."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import shapely
from shapely.geometry import Point
from sqlalchemy import Connection, text

from layers.demo.owners import CITY, SANITATION

HOUSING = f"{CITY}住房和城乡建设局"
BUREAU = f"{CITY}城市管理局"
LEVEL_RANK = {"section": 3, "community": 2, "street": 1}


@dataclass(frozen=True)
class DemoRule:
    """A rule of the demo's routing table: subclass, area grid (None: the county), unit, why."""

    subclass_code: str
    area_code: str | None
    area_level: str | None
    unit: str
    note: str


COUNTY_RULES = (
    ("E0102", SANITATION, "垃圾清运由环卫处负责"),
    ("E0103", SANITATION, "垃圾清运由环卫处负责"),
    ("E0104", SANITATION, "道路保洁由环卫处负责"),
    ("E0107", SANITATION, "乱堆物堆料由环卫处清运"),
    ("E0301", HOUSING, "施工管理归住建局"),
    ("E0302", HOUSING, "施工管理归住建局"),
    ("E0303", HOUSING, "施工管理归住建局"),
)
CENTRE_RULE = ("E0502", BUREAU, "城区中心社区店外经营由城管局直属中队处置")


def rules(grid_rows: list[dict[str, Any]], seat: Point) -> list[DemoRule]:
    """The demo's routing table: county-wide rules, and one for the community holding `seat`."""
    table = [DemoRule(code, None, None, unit, note) for code, unit, note in COUNTY_RULES]
    centre = [
        r for r in grid_rows if r["level"] == "community" and shapely.intersects(r["geom"], seat)
    ]
    if centre:
        code, unit, note = CENTRE_RULE
        table.append(DemoRule(code, str(centre[0]["code"]), "community", unit, note))
    return table


def route_events(
    cases: list[dict[str, Any]], grid_rows: list[dict[str, Any]], table: list[DemoRule]
) -> None:
    """Give each case without a unit the unit of the most specific rule whose area holds its grid,
    else its grid's (or the nearest parent's) responsible unit; with the reason in `routed_by`."""
    grids = {str(r["code"]): r for r in grid_rows}
    by_subclass: dict[str, list[DemoRule]] = {}
    for entry in sorted(table, key=lambda r: -LEVEL_RANK.get(r.area_level or "", 0)):
        by_subclass.setdefault(entry.subclass_code, []).append(entry)
    chains: dict[str, tuple[list[str], str | None]] = {}
    for case in cases:
        grid = case["grid_code"]
        if case["unit"] is not None or grid is None:
            continue
        if grid not in chains:
            chain = [grid]
            while (parent := grids[chain[-1]]["parent_code"]) is not None and len(chain) < 3:
                chain.append(str(parent))
            units = [grids[c]["responsible_unit"] for c in chain]
            chains[grid] = chain, next((u for u in units if u), None)
        areas, fallback = chains[grid]
        rule = next(
            (
                r
                for r in by_subclass.get(case["category_code"], ())
                if r.area_code is None or r.area_code in areas
            ),
            None,
        )
        if rule is not None:
            case["unit"], case["routed_by"] = rule.unit, "rule"
        elif fallback is not None:
            case["unit"], case["routed_by"] = fallback, "territory"


def write_rules(conn: Connection, adcode: str, table: list[DemoRule], actor: str) -> int:
    """Replace the county's routing rules with the demo's; how many were written."""
    conn.execute(text("DELETE FROM routing_rules WHERE adcode = :a"), {"a": adcode})
    if table:
        conn.execute(
            text("""
            INSERT INTO routing_rules (adcode, subclass_code, area_code, area_level, unit, note,
                                       created_by)
            VALUES (:a, :s, :area, :level, :unit, :note, :by)
        """),
            [
                {"a": adcode, "s": r.subclass_code, "area": r.area_code, "level": r.area_level}
                | {"unit": r.unit, "note": r.note, "by": actor}
                for r in table
            ],
        )
    return len(table)
