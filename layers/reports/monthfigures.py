"""The figures of a monthly bulletin, gathered with the statistics API's own queries.

Key figures are `/stats/indicators?by=month` for the month (受理数: the sum of
`/stats/evaluation?object=region` over the streets), the ranking is `/stats/evaluation?object=
department`, the worst grids its regions per section, the overdue list `/stats/overdue`; only the
list of cases supervised (督办) in the month is a query of its own. Every query reads what the viewer
reads, limited to one county.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, text

from layers.cases import casestats, evaluation, indicators
from layers.cases.casefilters import bind_period
from layers.engine.access import Viewer, area_clause
from layers.errors import BadQuery
from layers.places import counties
from layers.places.counties import CountyRecord
from layers.registry import CASE_STATUSES, CASES
from layers.reports import periods
from layers.reports.periods import Period

LISTED = 10  # overdue and supervised cases listed; the rest are counted
WORST_GRIDS = 10
TREND_MONTHS = 12
MAP_LEVEL = "community"
STATUS_LABELS = {c.value: c.label_zh for c in CASE_STATUSES}
KEY_FIGURES = (
    ("received", "受理数（件）"),
    ("registered", "立案数（件）"),
    ("closed", "结案数（件）"),
    ("due", "应结案数（件）"),
    ("closed_rate", "结案率"),
    ("on_time_rate", "按期结案率"),
    ("overdue", "超期数（件）"),
    ("avg_handling_hours", "平均处置时长（小时）"),
)


@dataclass(frozen=True)
class MonthFigures:
    """Everything a monthly bulletin prints, for one county and month."""

    county: CountyRecord
    period: Period
    previous: Period
    key: dict[str, Any]
    key_before: dict[str, Any]
    departments: list[dict[str, Any]]
    worst_grids: list[dict[str, Any]]
    map_values: dict[str, int]  # registered cases per community grid
    trend: list[dict[str, Any]]
    overdue: dict[str, Any]
    supervised: dict[str, Any]


def one_county(conn: Connection, viewer: Viewer) -> tuple[CountyRecord, Viewer]:
    """The one county a bulletin is for, and the viewer limited to it; an account holding
    several must name one with county=."""
    held = counties.each(conn, viewer)
    if len(held) != 1:
        raise BadQuery(
            "A bulletin is for one county: name it with county= (or --county).",
            "通报按县级行政区分别生成：请用 county=（或 --county）指定一个县级行政区。",
            code="report_county_required",
        )
    return held[0]


def key_figures(conn: Connection, viewer: Viewer, period: Period) -> dict[str, Any]:
    """The month's indicators as `/stats/indicators?by=month` gives them, with 受理数."""
    query = indicators.IndicatorQuery(period.start, period.end, "month", (), viewer)
    month = period.start.isoformat()
    found = next((r for r in indicators.rows(conn, query) if r["key"] == month), None)
    figures = {name: None if name.endswith(("_rate", "_hours")) else 0 for name, _ in KEY_FIGURES}
    if found is not None:
        figures |= {name: found[name] for name, _ in KEY_FIGURES if name in found}
    regions = evaluation.rows(
        conn, evaluation.EvaluationQuery("region", period.start, period.end, viewer, "street")
    )
    figures["received"] = sum(int(r["received"]) for r in regions)
    return figures


def ranked(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows by score, best first (those without a score last), then by key."""
    return sorted(found, key=lambda r: (r["score"] is None, -(r["score"] or 0), str(r["key"])))


def supervised(conn: Connection, viewer: Viewer, period: Period) -> dict[str, Any]:
    """The supervisions (督办) recorded in the period: how many, and the first LISTED of them."""
    params: dict[str, Any] = {"top": LISTED}
    bind_period(period.start, period.end, params)
    scope = area_clause(CASES, viewer, params, alias="c")
    found = conn.execute(
        text(f"""
        SELECT c.id, k.major_name || '/' || k.minor_name AS category, c.address, c.unit,
               c.status, e.at, c.supervise_deadline, count(*) OVER () AS total
        FROM case_events AS e JOIN cases AS c ON c.id = e.case_id
        LEFT JOIN case_categories AS k ON k.code = c.category_code
        WHERE e.action = 'supervise' AND e.at >= CAST(:start AS date)
          AND e.at < CAST(:after_end AS date) AND {scope}
        ORDER BY e.at, c.id LIMIT :top
    """),
        params,
    ).mappings()
    rows = [dict(r) for r in found]
    return {"count": int(rows[0]["total"]) if rows else 0, "cases": rows}


def gather(
    conn: Connection,
    county: CountyRecord,
    limited: Viewer,
    month: Period,
    weights: dict[str, Any],
) -> MonthFigures:
    """The bulletin's figures for one county (`limited`: the viewer limited to it)."""
    before = periods.previous(month)
    departments = evaluation.rows(
        conn,
        evaluation.EvaluationQuery("department", month.start, month.end, limited),
        weights,
    )
    sections = evaluation.rows(
        conn,
        evaluation.EvaluationQuery("region", month.start, month.end, limited, "section"),
        weights,
    )
    worst = sorted((r for r in sections if r["score"] is not None), key=lambda r: r["score"])
    mapped = indicators.rows(
        conn, indicators.IndicatorQuery(month.start, month.end, MAP_LEVEL, (), limited)
    )
    span = periods.months_back(month, TREND_MONTHS)
    return MonthFigures(
        county=county,
        period=month,
        previous=before,
        key=key_figures(conn, limited, month),
        key_before=key_figures(conn, limited, before),
        departments=ranked(departments),
        worst_grids=worst[:WORST_GRIDS],
        map_values={str(r["key"]): int(r["registered"]) for r in mapped if r["key"]},
        trend=casestats.trend(conn, "month", span.start, span.end, (), limited),
        overdue=casestats.overdue(conn, (), limited, None, LISTED),
        supervised=supervised(conn, limited, month),
    )
