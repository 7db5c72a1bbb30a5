"""The test street: four 1,200×900 m communities side by side in 启东's projected zone, their
sections, and grids inserted straight into the table."""

from __future__ import annotations

from typing import Any

import numpy as np
import shapely
from pyproj import Transformer
from shapely.geometry import MultiPolygon, box
from sqlalchemy import text

from layers.places import counties

EPSG = 4550  # CGCS2000 / 3-degree GK CM 123E, where 启东 lies
TO_LONLAT = Transformer.from_crs(EPSG, 4490, always_xy=True)
ORIGIN = Transformer.from_crs(4490, EPSG, always_xy=True).transform(121.65, 31.80)
STREET = "320681100000000"
SIDE = 300.0


def lonlat(geom: shapely.Geometry) -> shapely.Geometry:
    return shapely.transform(
        geom, lambda xy: np.column_stack(TO_LONLAT.transform(xy[:, 0], xy[:, 1]))
    )


def family_box(col: int, row: int) -> tuple[float, float]:
    """South-west corner (metres) of the community at (col, row) of a 4×3 street of 1,200×900 m blocks."""
    return ORIGIN[0] + col * 4 * SIDE, ORIGIN[1] + row * 3 * SIDE


def insert_grid(
    conn: Any, level: str, code: str, parent: str | None, geom: shapely.Geometry, since: str
) -> None:
    conn.execute(
        text("""
        INSERT INTO grids (adcode, geom, level, code, name, parent_code, responsible_unit, valid_from)
        VALUES ('320681', ST_Multi(ST_GeomFromWKB(:wkb, 4490)), :level, :code, :name, :parent, '测试单位', :since)
    """),
        {
            "wkb": shapely.to_wkb(lonlat(geom)),
            "level": level,
            "code": code,
            "name": f"测试{code[-6:]}",
            "parent": parent,
            "since": since,
        },
    )


COMMUNITIES = {n: f"320681100{n:03d}000" for n in range(1, 5)}


def insert_street(conn: Any, sectioned: tuple[int, ...]) -> None:
    """The test street: four communities side by side, those in `sectioned` cut into 12 sections
    (001..012, row by row from the north-west)."""
    x0, y0 = family_box(0, 0)
    street = box(x0, y0, x0 + 4 * 4 * SIDE, y0 + 3 * SIDE)
    insert_grid(conn, "street", STREET, None, street, "2020-01-01")
    # the test county is this one street: its official boundary is the streets' parent
    counties.set_boundary(conn, "320681", MultiPolygon([lonlat(street)]))
    for n, code in COMMUNITIES.items():
        cx, cy = family_box(n - 1, 0)
        community = box(cx, cy, cx + 4 * SIDE, cy + 3 * SIDE)
        insert_grid(conn, "community", code, STREET, community, "2020-01-01")
        for k in range(1, 13) if n in sectioned else ():
            insert_grid(conn, "section", section(n, k), code, cell_box(n, k), "2020-01-01")


def section(community: int, k: int) -> str:
    return f"{COMMUNITIES[community][:12]}{k:03d}"


def cell_box(community: int, k: int) -> shapely.Geometry:
    cx, cy = family_box(community - 1, 0)
    i, j = (k - 1) % 4, 2 - (k - 1) // 4
    return box(cx + i * SIDE, cy + j * SIDE, cx + (i + 1) * SIDE, cy + (j + 1) * SIDE)
