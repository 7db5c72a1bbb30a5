"""Cases per grid for a choropleth (with each grid's indicators), cases per week or month by
class for a trend chart, and the cases open past their deadline."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from sqlalchemy import Connection, text

from layers.cases.casefilters import period_clause, within_grid
from layers.cases.codes import category_clause
from layers.cases.indicators import IndicatorQuery
from layers.cases.indicators import rows as indicator_rows
from layers.engine.access import Viewer, area_clause
from layers.errors import BadQuery
from layers.registry import CASE_FINAL_STATUSES, CASES, GRIDS
from layers.store.versions import is_current, valid_on

MEASURES = (  # the indicators joined to each grid of a choropleth, with their SQL types
    ("registered", "int"),
    ("closed", "int"),
    ("due", "int"),
    ("closed_rate", "float8"),
    ("on_time_rate", "float8"),
    ("overdue", "int"),
    ("avg_handling_hours", "float8"),
)


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
    their area, the cases reported in them during the period (in total and per km²) and their
    indicators for the period (those without cases due: rates null, overdue 0)."""
    if level not in GRIDS.field("level").code_values:
        raise BadQuery(
            "level must be street, community or section.",
            "网格层级（level）必须是 street、community 或 section。",
        )
    measured = indicator_rows(conn, IndicatorQuery(start, end, level, categories, viewer, within))
    params: dict[str, Any] = {"level": level, "measures": json.dumps(measured, default=str)}
    cases = " AND ".join(
        (
            period_clause(start, end, params, "c"),
            category_clause(conn, categories, params, "c"),
            area_clause(CASES, viewer, params, alias="c"),
        )
    )
    grids = area_clause(GRIDS, viewer, params, alias="g")
    measures = ", ".join(
        f"'{name}', " + ("coalesce(m.overdue, 0)" if name == "overdue" else f"m.{name}")
        for name, _ in MEASURES
    )
    columns = ", ".join(["key text", *(f"{name} {kind}" for name, kind in MEASURES)])
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
                        'per_km2', round((coalesce(k.n, 0) / nullif(g.area_m2 / 1e6, 0))::numeric, 2),
                        {measures}))
                ORDER BY g.code), '[]'::json))::text
            FROM g LEFT JOIN counted AS k ON k.code = g.code
            LEFT JOIN json_to_recordset(CAST(:measures AS json)) AS m({columns}) ON m.key = g.code
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


def overdue(
    conn: Connection,
    categories: tuple[str, ...],
    viewer: Viewer | None,
    within: str | None = None,
    top: int = 10,
) -> dict[str, Any]:
    """How many open cases are past their deadline now, and the `top` of them longest overdue."""
    params: dict[str, Any] = {"closed": list(CASE_FINAL_STATUSES), "top": top}
    where = " AND ".join(
        (
            "c.status <> ALL(:closed) AND c.deadline < now()",
            category_clause(conn, categories, params, "c"),
            area_clause(CASES, viewer, params, alias="c"),
            within_grid(within, params, "c"),
        )
    )
    count = conn.execute(
        text(f"SELECT count(*) FROM cases AS c WHERE {where}"), params
    ).scalar_one()
    found = conn.execute(
        text(f"""
        SELECT c.id, c.category_code, k.major_name || '/' || k.minor_name AS category,
               c.status, c.address, c.grid_code, c.unit, c.deadline
        FROM cases AS c LEFT JOIN case_categories AS k ON k.code = c.category_code
        WHERE {where} ORDER BY c.deadline, c.id LIMIT :top
    """),
        params,
    ).mappings()
    return {
        "count": int(count),
        "cases": [dict(row) | {"deadline": row["deadline"].isoformat()} for row in found],
    }
