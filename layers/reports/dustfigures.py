"""The figures of a quarterly dust-control bulletin, from dust sites, their inspections and their
work orders (交办单), by site type, by street (街道/镇) and per site, read as the viewer reads them.

An inspection counts in the quarter by its day; a work order by its issue day: rectified when it is
no longer open, overdue when rectified late or still open past its deadline today.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, text

from layers.cases.casefilters import bind_period
from layers.engine.access import Viewer, area_clause
from layers.places.counties import CountyRecord
from layers.registry import DUST_INSPECTIONS, DUST_SITES, GRIDS, WORK_ORDERS
from layers.reports.periods import Period
from layers.store.versions import valid_on

WORST_SITES = 10
MEASURES = (
    ("sites", "在册现场数"),
    ("inspected_sites", "督查现场数"),
    ("inspections", "督查次数"),
    ("problems", "发现问题数"),
    ("issued", "交办单数"),
    ("rectified", "已整改数"),
    ("on_time", "按期整改数"),
    ("overdue", "逾期数"),
)
SITE_TYPES = {c.value: c.label_zh for c in DUST_SITES.field("site_type").codes}


@dataclass(frozen=True)
class DustFigures:
    """Everything a dust bulletin prints, for one county and quarter."""

    county: CountyRecord
    period: Period
    total: dict[str, Any]
    by_type: list[dict[str, Any]]
    by_street: list[dict[str, Any]]
    worst: list[dict[str, Any]]


def _per_site(viewer: Viewer, params: dict[str, Any]) -> str:
    """One row per dust site the viewer reads, with its street and its quarter's counts."""
    sites = area_clause(DUST_SITES, viewer, params, alias="s")
    inspections = area_clause(DUST_INSPECTIONS, viewer, params, alias="i")
    orders = area_clause(WORK_ORDERS, viewer, params, alias="o")
    inside = "BETWEEN CAST(:start AS date) AND CAST(:last_day AS date)"
    return f"""
        i AS (
            SELECT i.dust_site_id AS site, count(*) AS inspections,
                   sum(i.problems_found) AS problems
            FROM dust_inspections AS i WHERE i.inspected_on {inside} AND {inspections}
            GROUP BY 1
        ), o AS (
            SELECT o.dust_site_id AS site, count(*) AS issued,
                   count(*) FILTER (WHERE o.result <> 'open') AS rectified,
                   count(*) FILTER (WHERE o.result = 'on_time') AS on_time,
                   count(*) FILTER (WHERE o.result = 'late' OR (o.result = 'open'
                       AND o.deadline < CAST(now() AT TIME ZONE :zone AS date))) AS overdue
            FROM work_orders AS o WHERE o.issued_on {inside} AND {orders} GROUP BY 1
        ), per_site AS MATERIALIZED (
            SELECT s.id, s.name, s.site_type, st.code AS street, st.name AS street_name,
                   coalesce(i.inspections, 0) AS inspections,
                   coalesce(i.problems, 0) AS problems, coalesce(o.issued, 0) AS issued,
                   coalesce(o.rectified, 0) AS rectified, coalesce(o.on_time, 0) AS on_time,
                   coalesce(o.overdue, 0) AS overdue
            FROM dust_sites AS s
            LEFT JOIN LATERAL (
                SELECT g.code, g.name FROM grids AS g
                WHERE g.level = 'street' AND g.adcode = s.adcode AND g.geom && s.geom
                  AND ST_Intersects(g.geom, s.geom) AND {valid_on(GRIDS, "g", ":last_day")}
                ORDER BY g.code LIMIT 1
            ) AS st ON TRUE
            LEFT JOIN i ON i.site = s.id LEFT JOIN o ON o.site = s.id
            WHERE {sites}
        )
    """


def _sums() -> str:
    return """
        count(*) AS sites, count(*) FILTER (WHERE inspections > 0) AS inspected_sites,
        sum(inspections) AS inspections, sum(problems) AS problems, sum(issued) AS issued,
        sum(rectified) AS rectified, sum(on_time) AS on_time, sum(overdue) AS overdue
    """


def _counts(row: Any) -> dict[str, int]:
    return {name: int(row[name] or 0) for name, _ in MEASURES}


def gather(conn: Connection, county: CountyRecord, viewer: Viewer, quarter: Period) -> DustFigures:
    """The bulletin's figures for one county (`viewer`: limited to it) and quarter."""
    params: dict[str, Any] = {"zone": county.time_zone, "top": WORST_SITES}
    bind_period(quarter.start, quarter.end, params)
    with_sites = f"WITH {_per_site(viewer, params)}"
    grouped = conn.execute(
        text(f"""
        {with_sites}
        SELECT GROUPING(site_type) AS no_type, GROUPING(street, street_name) AS no_street,
               site_type, street, street_name, {_sums()}
        FROM per_site GROUP BY GROUPING SETS ((), (site_type), (street, street_name))
        ORDER BY street NULLS LAST, site_type
    """),
        params,
    ).mappings()
    total: dict[str, Any] = {name: 0 for name, _ in MEASURES}
    by_type, by_street = [], []
    for row in grouped:
        counts = _counts(row)
        if row["no_type"] and row["no_street"]:
            total = counts
        elif not row["no_type"]:
            label = SITE_TYPES.get(row["site_type"], row["site_type"])
            by_type.append({"key": row["site_type"], "label": label} | counts)
        else:
            label = row["street_name"] or "未落入街道网格"
            by_street.append({"key": row["street"], "label": label} | counts)
    worst = conn.execute(
        text(f"""
        {with_sites}
        SELECT * FROM per_site WHERE inspections > 0 OR issued > 0
        ORDER BY problems DESC, overdue DESC, issued DESC, id LIMIT :top
    """),
        params,
    ).mappings()
    return DustFigures(
        county,
        quarter,
        total,
        sorted(
            by_type,
            key=lambda r: (
                list(SITE_TYPES).index(r["key"]) if r["key"] in SITE_TYPES else len(SITE_TYPES)
            ),
        ),
        by_street,
        [dict(r) for r in worst],
    )
