"""Which county a row lies in: the stored county whose official boundary holds it; and, for a
layer placed in grids (`Layer.placed_in_grid`), which grid and handling unit.

Boundaries from two sources never agree exactly, so a row within the tolerance (in metres of the
county's Gauss-Krüger zone) of a boundary belongs to that county. The database answers for every
geometry of a request or a file in one statement.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Connection, text

from layers.engine import access
from layers.engine.access import Viewer
from layers.errors import InvalidFeature, OutsideEveryCounty
from layers.registry import GRIDS, STORAGE_SRID, GridPlacement, Layer
from layers.store.versions import is_current


def _most_of(grid: str, geom: str) -> str:
    """An ORDER BY key putting first the grid holding most of a line (by length) or an area (by
    area); points tie, and the lowest code on a shared edge wins as before."""
    share = f"ST_Intersection({grid}, {geom})"
    return (
        f"CASE ST_Dimension({geom}) WHEN 1 THEN ST_Length({share}) "
        f"WHEN 2 THEN ST_Area({share}) ELSE 0 END DESC"
    )


@dataclass(frozen=True)
class Place:
    """Where one geometry lies: its county, or the nearest one and how far outside it is."""

    adcode: str | None  # the county holding it (within the tolerance); None: outside every one
    nearest: str | None = None  # the nearest county's code (None when no county is stored)
    nearest_name: str | None = None
    distance_m: float = 0.0  # how far its farthest vertex lies outside the nearest county
    swapped: bool = False  # its latitude and longitude exchanged would lie in a county
    degrees: bool = True  # its coordinates are longitude/latitude at all (perhaps exchanged)


# Per geometry: the county that covers it; for the others, the nearest county (by box, then by
# the farthest vertex's distance in metres of that county's zone) and whether the geometry with
# its axes exchanged lands in a county.
PLACE_SQL = f"""
WITH metres AS MATERIALIZED (  -- each boundary in its zone, once per statement
    SELECT adcode, gk_srid, ST_Transform(boundary, gk_srid) AS boundary_m FROM counties
), g AS (
    SELECT n, ST_SetSRID(ST_GeomFromWKB(w), {STORAGE_SRID}) AS geom
    FROM unnest(CAST(:wkbs AS bytea[])) WITH ORDINALITY AS u(w, n)
), inside AS MATERIALIZED (  -- each row's covering county, computed once
    SELECT g.n, g.geom, (
        SELECT min(c.adcode) FROM counties AS c WHERE ST_Covers(c.boundary, g.geom)
    ) AS adcode FROM g
)
SELECT i.n, i.adcode, near.adcode, near.name, near.d,
       i.adcode IS NULL AND near.d > :tolerance AND EXISTS (
           SELECT 1 FROM counties AS c WHERE ST_Intersects(c.boundary, ST_FlipCoordinates(i.geom)))
FROM inside AS i
LEFT JOIN LATERAL (
    SELECT c.adcode, c.name, (
        SELECT max(ST_Distance(m.boundary_m, ST_Transform(p.geom, m.gk_srid)))
        FROM ST_DumpPoints(i.geom) AS p
    ) AS d
    FROM (SELECT k.adcode, k.name FROM counties AS k
          WHERE i.adcode IS NULL  -- computed only for the rows no county covers
          ORDER BY k.boundary <-> i.geom LIMIT 3) AS c
    JOIN metres AS m ON m.adcode = c.adcode
    ORDER BY d, c.adcode LIMIT 1
) AS near ON TRUE
ORDER BY i.n
"""


def _in_degrees(geoms: np.ndarray) -> np.ndarray:
    bounds = shapely.bounds(geoms)
    return np.asarray(
        (bounds[:, 0] >= -180)
        & (bounds[:, 2] <= 180)
        & (bounds[:, 1] >= -90)
        & (bounds[:, 3] <= 90)
    )


def places(conn: Connection, geoms: Sequence[BaseGeometry], tolerance_m: float) -> list[Place]:
    """The place of each geometry (CGCS2000 longitude/latitude), in one query."""
    if not geoms:
        return []
    shapes = np.asarray(geoms, dtype=object)
    flipped = shapely.transform(shapes, lambda xy: xy[:, ::-1])
    degrees, flippable = _in_degrees(shapes), _in_degrees(flipped)
    # a geometry whose latitude is no latitude may still be one with its axes exchanged
    asked = np.where(degrees, shapes, flipped)[degrees | flippable]
    rows = iter(
        conn.execute(
            text(PLACE_SQL),
            {"wkbs": list(shapely.to_wkb(asked)), "tolerance": tolerance_m},
        ).all()
        if len(asked)
        else []
    )
    out = []
    for ok, flips in zip(degrees, flippable, strict=True):
        if not ok:
            found = next(rows) if flips else None
            swapped = found is not None and (
                found[1] is not None or (found[4] is not None and found[4] <= tolerance_m)
            )
            out.append(Place(None, swapped=swapped, degrees=swapped))
            continue
        _, adcode, nearest, name, distance, swapped = next(rows)
        if adcode is None and nearest is not None and distance <= tolerance_m:
            adcode = nearest
        out.append(Place(adcode, nearest, name, float(distance or 0.0), bool(swapped)))
    return out


def refusal(place: Place, tolerance_m: float) -> tuple[str, str, str]:
    """Why a row is not in any county: (code, English, Chinese), as a clause (an import's
    row report lists it as it is; the API makes it a sentence)."""
    if not place.degrees:
        return (
            "geometry_outside_county",
            "the coordinates are not longitude/latitude in degrees",
            "坐标不是以度为单位的经纬度",
        )
    if place.swapped:
        return (
            "geometry_axis_swapped",
            "the geometry lies outside every county; latitude and longitude look swapped: "
            "GeoJSON wants [longitude, latitude]",
            "几何不在任何县级行政区内，疑似经纬度颠倒：GeoJSON 坐标顺序应为 [经度, 纬度]",
        )
    if place.nearest is None:
        return (
            OutsideEveryCounty.code,
            "no county is stored yet: add one first (citygrid county add ADCODE)",
            "尚未添加任何县级行政区：请先添加（citygrid county add 行政区划代码）",
        )
    return (
        OutsideEveryCounty.code,
        f"the geometry lies outside every county: {place.distance_m:,.0f} m outside the nearest, "
        f"{place.nearest_name} ({place.nearest}); tolerance {tolerance_m:,.0f} m",
        f"几何不在任何县级行政区内：距最近的{place.nearest_name}（{place.nearest}）边界 "
        f"{place.distance_m:,.0f} 米（容差 {tolerance_m:,.0f} 米）",
    )


def county_for_write(
    conn: Connection, geom: BaseGeometry, viewer: Viewer, tolerance_m: float
) -> str:
    """The county a new or moved geometry lies in, if the viewer may write there."""
    [place] = places(conn, [geom], tolerance_m)
    if place.adcode is None:
        code, clause, zh = refusal(place, tolerance_m)
        en = clause[0].upper() + clause[1:] + "."
        zh += "。"
        if code == OutsideEveryCounty.code:
            raise OutsideEveryCounty(
                en, zh, nearest_county=place.nearest, distance_m=round(place.distance_m, 1)
            )
        raise InvalidFeature(en, zh, code=code)
    if not access.may_write_county(viewer, place.adcode):
        raise access.outside_counties()
    return place.adcode


def grid_under(
    conn: Connection, placement: GridPlacement, geom: BaseGeometry, adcode: str
) -> tuple[str, str | None] | None:
    """The current grid of the placement's level under a point (the lowest code on a shared
    edge) or holding most of a line or an area, and the nearest responsible unit up its family;
    None outside every such grid."""
    point = f"ST_SetSRID(ST_GeomFromWKB(:wkb), {STORAGE_SRID})"
    grid = conn.execute(
        text(f"""
        SELECT g.code, coalesce(g.responsible_unit, c.responsible_unit, s.responsible_unit)
        FROM grids AS g
        LEFT JOIN grids AS c ON c.code = g.parent_code AND {is_current(GRIDS, "c")}
        LEFT JOIN grids AS s ON s.code = c.parent_code AND {is_current(GRIDS, "s")}
        WHERE g.level = :level AND {is_current(GRIDS, "g")} AND g.adcode = :adcode
          AND ST_Intersects(g.geom, {point})
        ORDER BY {_most_of("g.geom", point)}, g.code LIMIT 1
    """),
        {"wkb": shapely.to_wkb(geom), "adcode": adcode, "level": placement.level},
    ).first()
    return (grid[0], grid[1]) if grid else None


def family_names(conn: Connection, grid_code: str) -> tuple[str | None, str | None]:
    """The names of the current community and street grids above a current grid."""
    row = conn.execute(
        text(f"""
        SELECT c.name, s.name FROM grids AS g
        LEFT JOIN grids AS c ON c.code = g.parent_code AND {is_current(GRIDS, "c")}
        LEFT JOIN grids AS s ON s.code = c.parent_code AND {is_current(GRIDS, "s")}
        WHERE g.code = :code AND {is_current(GRIDS, "g")}
    """),
        {"code": grid_code},
    ).first()
    return (row[0], row[1]) if row else (None, None)


def placed_values(
    conn: Connection,
    placement: GridPlacement,
    geom: BaseGeometry,
    adcode: str,
    given: dict[str, Any],
) -> dict[str, Any]:
    """What a placement writes on a row: the grid under it (unless given), and, where the
    placement names them, the grid's unit (unless given), community and street."""
    if given.get(placement.grid_field) is not None:
        return {}
    grid = grid_under(conn, placement, geom, adcode)
    out: dict[str, Any] = {placement.grid_field: grid[0] if grid else None}
    if placement.unit_field and given.get(placement.unit_field) is None and grid is not None:
        out[placement.unit_field] = grid[1]
    community, street = family_names(conn, grid[0]) if grid else (None, None)
    if placement.community_field:
        out[placement.community_field] = community
    if placement.street_field:
        out[placement.street_field] = street
    return out


def placements(
    conn: Connection,
    placement: GridPlacement,
    rows: list[dict[str, Any]],
) -> None:
    """Place many new rows (each with its `geom` and `adcode`) in one query: what
    `placed_values` writes, filled in on the rows in place."""
    todo = [r for r in rows if r.get(placement.grid_field) is None and r.get("geom") is not None]
    if not todo:
        return
    for row in rows:  # the rows written by one COPY have the same columns
        for name in placement.fields:
            row.setdefault(name, None)
    found = conn.execute(
        text(f"""
        WITH p AS (
            SELECT n, a, ST_SetSRID(ST_GeomFromWKB(w), {STORAGE_SRID}) AS geom
            FROM unnest(CAST(:wkbs AS bytea[]), CAST(:adcodes AS text[])) WITH ORDINALITY AS u(w, a, n)
        )
        SELECT p.n, g.code, coalesce(g.responsible_unit, c.responsible_unit, s.responsible_unit),
               c.name, s.name
        FROM p
        JOIN LATERAL (
            SELECT g.code, g.parent_code, g.responsible_unit FROM grids AS g
            WHERE g.level = :level AND {is_current(GRIDS, "g")} AND g.adcode = p.a
              AND ST_Intersects(g.geom, p.geom)
            ORDER BY {_most_of("g.geom", "p.geom")}, g.code LIMIT 1
        ) AS g ON TRUE
        LEFT JOIN grids AS c ON c.code = g.parent_code AND {is_current(GRIDS, "c")}
        LEFT JOIN grids AS s ON s.code = c.parent_code AND {is_current(GRIDS, "s")}
    """),
        {
            "wkbs": list(shapely.to_wkb([r["geom"] for r in todo])),
            "adcodes": [r["adcode"] for r in todo],
            "level": placement.level,
        },
    ).all()
    for n, code, unit, community, street in found:
        row = todo[n - 1]
        row[placement.grid_field] = code
        if placement.unit_field and row.get(placement.unit_field) is None:
            row[placement.unit_field] = unit
        if placement.community_field:
            row[placement.community_field] = community
        if placement.street_field:
            row[placement.street_field] = street


def place_unplaced(conn: Connection, layer: Layer) -> None:
    """Give the rows of a layer placed in grids that have no grid yet the current grid under
    them, its responsible unit where they name none, and its community and street."""
    placement = layer.placed_in_grid
    if placement is None:
        return
    grid = f'"{placement.grid_field}"'
    sets = [f"{grid} = g.code"]
    if placement.unit_field:
        unit = f'"{placement.unit_field}"'
        sets.append(f"{unit} = coalesce(c.{unit}, g.responsible_unit)")
    if placement.community_field:
        sets.append(f'"{placement.community_field}" = m.name')
    if placement.street_field:
        sets.append(f'"{placement.street_field}" = s.name')
    conn.execute(
        text(f"""
        UPDATE "{layer.id}" AS c SET {", ".join(sets)}
        FROM "{layer.id}" AS r
        JOIN LATERAL (
            SELECT g.code, g.parent_code, g.responsible_unit FROM grids AS g
            WHERE g.level = :level AND {is_current(GRIDS, "g")} AND g.adcode = r.adcode
              AND ST_Intersects(g.geom, r.geom)
            ORDER BY {_most_of("g.geom", "r.geom")}, g.code LIMIT 1
        ) AS g ON TRUE
        LEFT JOIN grids AS m ON m.code = g.parent_code AND {is_current(GRIDS, "m")}
        LEFT JOIN grids AS s ON s.code = m.parent_code AND {is_current(GRIDS, "s")}
        WHERE c.id = r.id AND r.{grid} IS NULL
    """),
        {"level": placement.level},
    )
