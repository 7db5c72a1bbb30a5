"""The bureau's case indicators, computed by one SQL statement per request.

Each indicator counts the moments that define it inside the period: 立案数 by the registration
time, 结案数 and the average handling time (dispatch to close) by the closing time, and the cases
falling due (应结案数: the deadline falls in the period) for 结案率 (closed of those due),
按期结案率 (closed by the deadline) and 超期数 (not closed by a deadline already past).
Rows group by grid (the grids valid on the period's last day, by location), by street, by
category, by handling unit, by the owner or maintainer of the component a case names (the
component as it was on the day the case was reported), or by month or week of each moment.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Connection, text

from layers.cases.casefilters import bind_period, within_grid
from layers.cases.codes import category_clause
from layers.engine.access import Viewer, area_clause
from layers.engine.statcsv import table_csv
from layers.errors import BadQuery
from layers.inventory import lookup
from layers.registry import CASES, COMPONENTS, GRIDS
from layers.store.db import BUREAU_TIMEZONE
from layers.store.versions import valid_on

GROUPINGS = (
    "section",
    "community",
    "street",
    "category",
    "unit",
    "owner",
    "maintainer",
    "month",
    "week",
)
# groupings by a unit of the component a case names (only component cases are counted)
COMPONENT_UNITS = {"owner": "owner_unit", "maintainer": "maintainer_unit"}
COLUMNS = (
    ("key", "编码/时段"),
    ("label", "名称"),
    ("registered", "立案数"),
    ("closed", "结案数"),
    ("due", "应结案数"),
    ("closed_rate", "结案率"),
    ("on_time_rate", "按期结案率"),
    ("overdue", "超期数"),
    ("avg_handling_hours", "平均处置时长（小时）"),
)


@dataclass(frozen=True)
class IndicatorQuery:
    """Which period, grouped how, for which categories, for whom."""

    start: date
    end: date  # inclusive
    by: str = "street"
    categories: tuple[str, ...] = ()
    viewer: Viewer | None = None
    within: str | None = None  # a current grid's code: only the cases inside it


def _check(query: IndicatorQuery) -> None:
    if query.by not in GROUPINGS:
        raise BadQuery(
            f"by must be one of {', '.join(GROUPINGS)}.",
            f"分组方式（by）必须是：{'、'.join(GROUPINGS)}。",
        )


def grouped_cases(
    conn: Connection, query: IndicatorQuery, params: dict[str, Any]
) -> tuple[str, str]:
    """The cases to count with their group key (FROM clause), and the label of a key."""
    where = " AND ".join(
        (
            area_clause(CASES, query.viewer, params, alias="c"),
            category_clause(conn, query.categories, params, "c"),
            within_grid(query.within, params, "c"),
        )
    )
    if query.by in GRIDS.field("level").code_values:
        params["level"] = query.by
        grids = area_clause(GRIDS, query.viewer, params, alias="g")
        # a case on a shared edge belongs to one grid only: the lower code
        base = f"""
            SELECT DISTINCT ON (c.id) g.code AS gkey, c.* FROM grids AS g
            JOIN cases AS c ON c.geom && g.geom AND ST_Intersects(g.geom, c.geom)
            WHERE g.level = :level AND {valid_on(GRIDS, "g", ":last_day")} AND {grids} AND {where}
            ORDER BY c.id, g.code
        """
        label = (
            "(SELECT g.name FROM grids AS g WHERE g.code = r.key AND "
            f"{valid_on(GRIDS, 'g', ':last_day')} LIMIT 1)"
        )
        return base, label
    if query.by == "category":
        base = f"SELECT c.category_code AS gkey, c.* FROM cases AS c WHERE {where}"
        label = (
            "(SELECT k.major_name || '/' || k.minor_name FROM case_categories AS k "
            "WHERE k.code = r.key)"
        )
        return base, label
    if query.by == "unit":
        return f"SELECT c.unit AS gkey, c.* FROM cases AS c WHERE {where}", "r.key"
    if query.by in COMPONENT_UNITS:
        params["bureau_zone"] = BUREAU_TIMEZONE
        reported_on = "CAST(c.reported_at AT TIME ZONE :bureau_zone AS date)"
        # the version valid when the case was reported, else (a case older than the census)
        # the component's first version
        base = f"""
            SELECT m.unit AS gkey, c.* FROM cases AS c
            CROSS JOIN LATERAL (
                SELECT v.{COMPONENT_UNITS[query.by]} AS unit FROM ({lookup.versions()}) AS v
                WHERE v.component_code = c.component_code AND v.adcode = c.adcode
                ORDER BY ({valid_on(COMPONENTS, "v", reported_on)}) DESC, v.id
                LIMIT 1
            ) AS m
            WHERE c.component_code IS NOT NULL AND {where}
        """
        return base, "r.key"
    return f"SELECT NULL::text AS gkey, c.* FROM cases AS c WHERE {where}", "r.key"


def _key(query: IndicatorQuery, moment: str) -> str:
    if query.by in ("month", "week"):
        return f"to_char(date_trunc('{query.by}', {moment}), 'YYYY-MM-DD')"
    return "gkey"


def rows(conn: Connection, query: IndicatorQuery) -> list[dict[str, Any]]:
    """One row per group: counts, rates (None without cases due) and the average hours."""
    _check(query)
    params: dict[str, Any] = {}
    bind_period(query.start, query.end, params)
    base, label = grouped_cases(conn, query, params)
    within = "{0} >= CAST(:start AS date) AND {0} < CAST(:after_end AS date)"
    found = conn.execute(
        text(f"""
        WITH base AS MATERIALIZED ({base}),
        moments AS (
            SELECT {_key(query, "registered_at")} AS key, 'registered' AS kind,
                   NULL::float8 AS hours, NULL::boolean AS closed, NULL::boolean AS on_time,
                   NULL::boolean AS overdue
            FROM base WHERE {within.format("registered_at")}
            UNION ALL
            SELECT {_key(query, "closed_at")}, 'closed',
                   extract(epoch FROM closed_at - dispatched_at) / 3600, NULL, NULL, NULL
            FROM base WHERE status = 'closed' AND {within.format("closed_at")}
            UNION ALL
            SELECT {_key(query, "deadline")}, 'due', NULL, status = 'closed',
                   status = 'closed' AND closed_at <= deadline,
                   deadline < now() AND (status <> 'closed' OR closed_at > deadline)
            FROM base WHERE status <> 'rejected' AND {within.format("deadline")}
        ),
        r AS (
            SELECT key,
                   count(*) FILTER (WHERE kind = 'registered') AS registered,
                   count(*) FILTER (WHERE kind = 'closed') AS closed,
                   count(*) FILTER (WHERE kind = 'due') AS due,
                   count(*) FILTER (WHERE kind = 'due' AND closed) AS due_closed,
                   count(*) FILTER (WHERE kind = 'due' AND on_time) AS on_time,
                   count(*) FILTER (WHERE kind = 'due' AND overdue) AS overdue,
                   avg(hours) FILTER (WHERE kind = 'closed') AS avg_hours
            FROM moments GROUP BY key
        )
        SELECT r.key, {label} AS label, r.registered, r.closed, r.due,
               round(r.due_closed::numeric / nullif(r.due, 0), 4) AS closed_rate,
               round(r.on_time::numeric / nullif(r.due, 0), 4) AS on_time_rate,
               r.overdue, round(r.avg_hours::numeric, 2) AS avg_handling_hours
        FROM r ORDER BY r.key NULLS LAST
    """),
        params,
    ).mappings()
    return [_plain(row) for row in found]


def _plain(row: Any) -> dict[str, Any]:
    return {
        name: (float(row[name]) if row[name] is not None else None)
        if name in ("closed_rate", "on_time_rate", "avg_handling_hours")
        else row[name]
        for name, _ in COLUMNS
    }


def as_csv(found: list[dict[str, Any]]) -> str:
    """The rows as CSV with Chinese headers (see `table_csv`)."""
    return table_csv(COLUMNS, found)
