"""The cases of a period as counts per 250 m cell, summed from the tables of migration 0036.

Why days and months: on the scaled demo city (1,025,433 cases in a year, 23 subclasses, 8,947 cells)
a row per county, day, subclass and cell is 680,523 rows, two thirds of the cases, and summing
them took as long as the index-only scan of the cases they would replace. Per month it is 143,093
rows, and 53,310 more for all subclasses together ('*'): a year's heatmap reads those 53,310 (5 %
of the cases), one asking for subclasses at most the 143,093 of theirs. So whole months of a
period are read from `case_cell_months` and only the days before the first and after the last
whole month from `case_cell_days`; weekly frames, which cut across months, read days alone. The
months are keyed by subclass first and the days by day, with n beside the key, so both are read
by index-only range scans, with or without a county (the deployment's admin has none).

Both tables are keyed by China-time dates (the API's sessions run in the bureau's time zone,
which is how a period's days are read from the cases), so a day or a month counted is exactly
the cases reported in it.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import Connection

from layers.cases.casefilters import bind_period, period_clause
from layers.cases.codes import category_clause
from layers.engine.access import Viewer, county_condition

ALL_SUBCLASSES = "*"  # the category of a month's row counting every subclass


def _month_after(day: date) -> date | None:
    """The first day of the month after `day`'s, None past the calendar's end."""
    try:
        return (day.replace(day=1) + timedelta(days=32)).replace(day=1)
    except OverflowError:
        return None


def whole_months(start: date | None, end: date | None) -> tuple[date | None, date | None] | None:
    """The first whole month of the period and the month after its last one (None: open, the
    period is); None when the period holds no whole month."""
    first = start if start is None or start.day == 1 else _month_after(start)
    if start is not None and first is None:
        return None
    after: date | None = None
    if end is not None and end != date.max:
        after = end.replace(day=1) if (end + timedelta(days=1)).day != 1 else _month_after(end)
    if first is not None and after is not None and first >= after:
        return None
    return first, after


def _edges(
    months: tuple[date | None, date | None],
    start: date | None,
    end: date | None,
    params: dict[str, Any],
) -> str:
    """The days of the period outside its whole months, on `case_cell_days AS x`."""
    bind_period(start, end, params)
    first, after = months
    edges = []
    if first is not None:
        params["months_from"] = first
        before = "x.day < CAST(:months_from AS date)"
        edges.append(f"({before} AND x.day >= CAST(:start AS date))" if start else before)
    if after is not None:
        params["months_to"] = after
        past = "x.day >= CAST(:months_to AS date)"
        edges.append(f"({past} AND x.day < CAST(:after_end AS date))" if end else past)
    return "(" + " OR ".join(edges) + ")" if edges else "FALSE"


def _month_range(months: tuple[date | None, date | None]) -> str:
    first, after = months
    clauses = ["x.month >= CAST(:months_from AS date)"] if first is not None else []
    if after is not None:
        clauses.append("x.month < CAST(:months_to AS date)")
    return " AND ".join(clauses) or "TRUE"


def cell_counts(
    conn: Connection,
    viewer: Viewer | None,
    period: tuple[date | None, date | None],
    categories: tuple[str, ...],
    params: dict[str, Any],
    by_week: bool = False,
) -> str:
    """SQL of the rows (day, gk_srid, cell_x, cell_y, n) counting the cases of the viewer's
    counties in the period, of the subclasses (all without any); a month's rows carry its first
    day. `by_week`: days only, for frames that cut across months."""
    start, end = period
    county, bound = county_condition(viewer, "x.adcode")
    params.update(bound)
    subclasses = category_clause(conn, categories, params, "x")
    columns = "x.gk_srid, x.cell_x, x.cell_y, x.n"
    months = None if by_week else whole_months(start, end)
    if months is None:
        days = period_clause(start, end, params, "x", "day")
        return (
            f"(SELECT x.day, {columns} FROM case_cell_days AS x "
            f"WHERE {county} AND {days} AND {subclasses})"
        )
    if not categories:
        params["all_subclasses"] = ALL_SUBCLASSES
        subclasses_of_months = "x.category_code = :all_subclasses"
    else:
        subclasses_of_months = subclasses
    return f"""(
        SELECT x.month AS day, {columns} FROM case_cell_months AS x
        WHERE {county} AND {_month_range(months)} AND {subclasses_of_months}
        UNION ALL
        SELECT x.day, {columns} FROM case_cell_days AS x
        WHERE {county} AND {_edges(months, start, end, params)} AND {subclasses}
    )"""
