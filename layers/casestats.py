"""Cases per grid for a choropleth, and cases per week or month by class for a trend chart."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Connection, text

from layers.access import Viewer, area_clause
from layers.casefilters import period_clause, within_grid
from layers.codes import category_clause
from layers.errors import BadQuery
from layers.registry import CASES, GRIDS
from layers.versions import is_current, valid_on


def choropleth(
    conn: Connection,
    level: str,
    start: date,
    end: date,
    categories: tuple[str, ...],
    viewer: Viewer | None,
    within: str | None = None,
) -> str:
    """The grids of a level valid on the last day (inside the `within` grid), as GeoJSON with
    their area and the cases reported in them during the period (in total and per km²)."""
    if level not in GRIDS.field("level").code_values:
        raise BadQuery(
            "level must be street, community or section.",
            "网格层级（level）必须是 street、community 或 section。",
        )
    params: dict[str, Any] = {"level": level}
    cases = " AND ".join(
        (
            period_clause(start, end, params, "c"),
            category_clause(conn, categories, params, "c"),
            area_clause(CASES, viewer, params, alias="c"),
        )
    )
    grids = area_clause(GRIDS, viewer, params, alias="g")
    if within is not None:
        params["within"] = within
        grids += (
            " AND ST_Intersects(ST_PointOnSurface(g.geom), (SELECT w.geom FROM grids AS w "
            f"WHERE w.code = :within AND {is_current(GRIDS, 'w')}))"
        )
    return str(
        conn.execute(
            text(f"""
            WITH g AS MATERIALIZED (
                SELECT g.* FROM grids AS g
                WHERE g.level = :level AND {valid_on(GRIDS, "g", ":last_day")} AND {grids}
            ), placed AS (
                SELECT DISTINCT ON (c.id) g.code FROM g
                JOIN cases AS c ON c.geom && g.geom AND ST_Intersects(g.geom, c.geom)
                WHERE {cases}
                ORDER BY c.id, g.code
            ), counted AS (SELECT code, count(*) AS n FROM placed GROUP BY code)
            SELECT json_build_object('type', 'FeatureCollection', 'features',
                coalesce(json_agg(json_build_object(
                    'type', 'Feature', 'id', g.code,
                    'geometry', ST_AsGeoJSON(g.geom, 6, 0)::json,
                    'properties', json_build_object(
                        'code', g.code, 'name', g.name, 'level', g.level,
                        'area_km2', round((g.area_m2 / 1e6)::numeric, 4),
                        'cases', coalesce(k.n, 0),
                        'per_km2', round((coalesce(k.n, 0) / nullif(g.area_m2 / 1e6, 0))::numeric, 2)))
                ORDER BY g.code), '[]'::json))::text
            FROM g LEFT JOIN counted AS k ON k.code = g.code
        """),
            params,
        ).scalar_one()
    )


def trend(
    conn: Connection,
    interval: str,
    start: date,
    end: date,
    categories: tuple[str, ...],
    viewer: Viewer | None,
    within: str | None = None,
) -> list[dict[str, Any]]:
    """Cases reported per week or month and per class (大类), in order."""
    if interval not in ("week", "month"):
        raise BadQuery(
            "interval must be week or month.", "时间间隔（interval）必须是 week 或 month。"
        )
    params: dict[str, Any] = {"interval": interval}
    where = " AND ".join(
        (
            period_clause(start, end, params, "c"),
            category_clause(conn, categories, params, "c"),
            area_clause(CASES, viewer, params, alias="c"),
            within_grid(within, params, "c"),
        )
    )
    found = conn.execute(
        text(f"""
        SELECT to_char(date_trunc(:interval, c.reported_at), 'YYYY-MM-DD') AS period,
               left(c.category_code, 3) AS class,
               min(k.major_name) AS class_name, count(*) AS cases
        FROM cases AS c LEFT JOIN case_categories AS k ON k.code = c.category_code
        WHERE {where}
        GROUP BY 1, 2 ORDER BY 1, 2
    """),
        params,
    ).mappings()
    return [dict(row) for row in found]
