"""Geometries for the pictures, simplified by the database in metres of the county's zone."""

from __future__ import annotations

from datetime import date
from typing import Any

import shapely
from sqlalchemy import Connection, text

from layers.engine.access import Viewer, area_clause, county_condition
from layers.registry import GRIDS
from layers.store.versions import valid_on

TOLERANCE_M = 15.0  # invisible at the printed scale of a county (1 mm ≈ 200 m)


def _zone(column: str) -> str:
    return f"ST_SimplifyPreserveTopology(ST_Transform({column}, k.gk_srid), :tolerance)"


def grid_shapes(
    conn: Connection, level: str, day: date, viewer: Viewer
) -> dict[str, shapely.Geometry]:
    """The grids of a level valid on `day` that the viewer reads, by code, in the zone's metres."""
    params: dict[str, Any] = {"level": level, "day": day, "tolerance": TOLERANCE_M}
    scope = area_clause(GRIDS, viewer, params, alias="g")
    found = conn.execute(
        text(f"""
        SELECT g.code, ST_AsBinary({_zone("g.geom")}) AS wkb
        FROM grids AS g JOIN counties AS k ON k.adcode = g.adcode
        WHERE g.level = :level AND {valid_on(GRIDS, "g", ":day")} AND {scope}
        ORDER BY g.code
    """),
        params,
    )
    return {row.code: shapely.from_wkb(bytes(row.wkb)) for row in found}


def county_outline(conn: Connection, viewer: Viewer) -> shapely.Geometry | None:
    """The official boundary of the viewer's (one) county, in its zone's metres."""
    condition, bound = county_condition(viewer, "k.adcode")
    wkb = conn.execute(
        text(
            f"SELECT ST_AsBinary({_zone('k.boundary')}) FROM counties AS k WHERE {condition} "
            "ORDER BY k.adcode LIMIT 1"
        ),
        {"tolerance": TOLERANCE_M, **dict(bound)},
    ).scalar_one_or_none()
    return shapely.from_wkb(bytes(wkb)) if wkb is not None else None
