"""Which unit a case goes to, and why: a named component's maintainer (部件养护单位), else the most
specific routing rule of the county for the case's subclass and area (派遣规则), else the grid's
responsible unit (属地兜底). Only active units of the case's county in the directory are chosen.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Connection, text

from layers.engine.access import Viewer
from layers.errors import InvalidFeature
from layers.inventory import lookup
from layers.registry import GRIDS, STORAGE_SRID, CaseRouting
from layers.store.versions import is_current

MAX_DISTANCE_M = 100.0  # a reported point this far from the component it names is refused
# the unit fields of a component, in the order they answer for it
COMPONENT_UNITS = ("maintainer_unit", "owner_unit", "department")


@dataclass(frozen=True)
class Routed:
    """The unit a case goes to (None: none found) and the rule that chose it."""

    unit: str | None
    rule: str | None


@dataclass(frozen=True)
class Component:
    """A current component a case names: its subclass, county and geometry (a point, a line or
    an area)."""

    code: str
    subclass_code: str
    adcode: str
    geometry: dict[str, Any]


def component(conn: Connection, code: str, viewer: Viewer | None) -> Component:
    """The current component with this ID the viewer may read; another county's, or one outside
    an inspector's area, looks absent; in whichever component layer holds it."""
    row = lookup.find(conn, code, viewer)
    if row is None:
        raise InvalidFeature(
            f"There is no current component {code} you may read.",
            f"不存在部件标识码为 {code} 的现有部件，或不在您的查看范围内。",
            code="component_not_found",
            field="component_code",
        )
    return Component(row.component_code, row.subclass_code, row.adcode, row.geometry)


def check_case_on_component(
    conn: Connection, found: Component, category: Any, geom: BaseGeometry | None, adcode: Any
) -> None:
    """Refuse a case whose category, county or point does not fit the component it names (the
    distance, in metres, to the nearest part of a line or an area)."""
    if category is not None and category != found.subclass_code:
        raise InvalidFeature(
            f"A case on component {found.code} is of its subclass {found.subclass_code}, "
            f"not {category}.",
            f"部件案件的类别取部件的小类 {found.subclass_code}，不能填写 {category}。",
            code="category_not_component_subclass",
            field="category_code",
        )
    if adcode is not None and adcode != found.adcode:
        raise InvalidFeature(
            f"The case lies in county {adcode}, its component in {found.adcode}.",
            f"案件位置所在县级行政区（{adcode}）与部件（{found.adcode}）不一致。",
            code="component_too_far",
            field="geometry",
        )
    if geom is None:
        return
    distance = conn.execute(
        text(f"""
        SELECT ST_Distance(ST_Transform(g.a, citygrid_gk_srid(g.a)),
                           ST_Transform(g.b, citygrid_gk_srid(g.a)))
        FROM (SELECT ST_SetSRID(ST_GeomFromWKB(:wkb), {STORAGE_SRID}) AS a,
                     ST_SetSRID(ST_GeomFromGeoJSON(:point), {STORAGE_SRID}) AS b) AS g
    """),
        {"wkb": shapely.to_wkb(geom), "point": json.dumps(found.geometry)},
    ).scalar_one()
    if distance > MAX_DISTANCE_M:
        raise InvalidFeature(
            f"The point lies {distance:,.0f} m from component {found.code}; at most "
            f"{MAX_DISTANCE_M:,.0f} m.",
            f"上报位置距部件 {found.code} {distance:,.0f} 米，超过 {MAX_DISTANCE_M:,.0f} 米。",
            code="component_too_far",
            field="geometry",
            distance_m=round(float(distance), 1),
        )


def _component_unit(conn: Connection, code: str, adcode: str) -> str | None:
    found = lookup.current(None, {})
    choices = " UNION ALL ".join(
        f"SELECT {n} AS rank, t.{name} AS unit FROM ({found}) AS t "
        "WHERE t.component_code = :code AND t.adcode = :adcode"
        for n, name in enumerate(COMPONENT_UNITS)
    )
    unit: str | None = conn.execute(
        text(f"""
        SELECT c.unit FROM ({choices}) AS c
        JOIN units AS u ON u.adcode = :adcode AND u.name = c.unit AND u.active
        ORDER BY c.rank LIMIT 1
    """),
        {"code": code, "adcode": adcode},
    ).scalar()
    return unit


AREAS = f"""
    SELECT g.code, coalesce(g.responsible_unit, m.responsible_unit, s.responsible_unit)
           AS fallback, m.code AS parent, s.code AS grandparent
    FROM grids AS g
    LEFT JOIN grids AS m ON m.code = g.parent_code AND {is_current(GRIDS, "m")}
    LEFT JOIN grids AS s ON s.code = m.parent_code AND {is_current(GRIDS, "s")}
    WHERE g.code = :grid AND g.adcode = :adcode AND {is_current(GRIDS, "g")}
"""


def _rule_unit(
    conn: Connection, adcode: str, category: str, grid: str | None
) -> tuple[str | None, str | None]:
    """The unit of the most specific rule whose area holds the grid, and the grid's own unit."""
    row = conn.execute(text(AREAS), {"grid": grid, "adcode": adcode}).first() if grid else None
    # the grid and its parents, the most specific first: a rule on the nearest of them wins
    areas = [c for c in (row.code, row.parent, row.grandparent) if c] if row else []
    unit = conn.execute(
        text("""
        SELECT r.unit FROM routing_rules AS r
        JOIN units AS u ON u.adcode = r.adcode AND u.name = r.unit AND u.active
        WHERE r.adcode = :adcode AND r.subclass_code = :category
          AND (r.area_code IS NULL OR r.area_code = ANY(:areas))
        ORDER BY array_position(CAST(:areas AS text[]), CAST(r.area_code AS text)) NULLS LAST
        LIMIT 1
    """),
        {"adcode": adcode, "category": category, "areas": areas},
    ).scalar()
    return unit, (row.fallback if row else None)


def route(
    conn: Connection,
    adcode: str,
    category: str | None,
    grid: str | None,
    component_code: str | None,
) -> Routed:
    """The unit a case of this county, category, grid and (perhaps) component goes to."""
    if component_code:
        unit = _component_unit(conn, component_code, adcode)
        if unit is not None:
            return Routed(unit, "component")
    rule_unit, fallback = _rule_unit(conn, adcode, category or "", grid)
    if rule_unit is not None:
        return Routed(rule_unit, "rule")
    if fallback is not None:
        return Routed(fallback, "territory")
    return Routed(None, None)


def routed_values(
    conn: Connection,
    decl: CaseRouting,
    values: dict[str, Any],
    geom: BaseGeometry | None,
    viewer: Viewer,
    given_unit: str | None,
) -> dict[str, Any]:
    """What routing writes on a new case (`values` holding its adcode and grid): its unit and
    the rule that chose it; a unit the writer gave is kept, as chosen by hand."""
    code = values.get(decl.component_field)
    category = values.get(decl.category_field)
    adcode = values.get("adcode")
    if code:
        found = component(conn, code, viewer)
        check_case_on_component(conn, found, category, geom, adcode)
    if given_unit is not None:
        return {decl.unit_field: given_unit, decl.rule_field: "dispatcher"}
    if adcode is None:
        return {}
    decided = route(conn, adcode, category, values.get(decl.grid_field), code)
    return {decl.unit_field: decided.unit, decl.rule_field: decided.rule}
