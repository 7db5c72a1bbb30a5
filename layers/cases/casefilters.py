"""Conditions the case statistics share: a period of days, and a grid the cases lie in."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from layers.errors import BadQuery
from layers.registry import GRIDS
from layers.store.versions import is_current


def bind_period(start: date | None, end: date | None, params: dict[str, Any]) -> None:
    """Check a period of days (both included, either end open) and bind :start, :after_end and
    :last_day for the SQL that uses it."""
    if start is not None and end is not None and start > end:
        raise BadQuery(
            f"from {start} is after to {end}.",
            f"起始日期 {start} 晚于截止日期 {end}。",
            code="period_reversed",
        )
    if start is not None:
        params["start"] = start
    if end is not None:
        # the last representable day has no day after it: PostgreSQL's 'infinity' stands in
        after_end = "infinity" if end == date.max else end + timedelta(days=1)
        params.update(after_end=after_end, last_day=end)


def period_clause(
    start: date | None,
    end: date | None,
    params: dict[str, Any],
    alias: str,
    column: str = "reported_at",
) -> str:
    """Rows of `alias` whose `column` falls in the period: cases reported during it, or counts
    of its China-time days (`day`)."""
    bind_period(start, end, params)
    clauses = []
    if start is not None:
        clauses.append(f"{alias}.{column} >= CAST(:start AS date)")
    if end is not None:
        clauses.append(f"{alias}.{column} < CAST(:after_end AS date)")
    return " AND ".join(clauses) or "TRUE"


def within_grid(code: str | None, params: dict[str, Any], alias: str) -> str:
    """Cases of `alias` inside one current grid (a street, say), or all of them without a code."""
    if code is None:
        return "TRUE"
    params["within"] = code
    return (
        f"ST_Intersects({alias}.geom, (SELECT w.geom FROM grids AS w "
        f"WHERE w.code = :within AND {is_current(GRIDS, 'w')}))"
    )
