"""Fume exceedance statistics: the share of readings over the limit per restaurant, street or
month, computed by one SQL statement with the restaurants' read scope."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Connection, text

from layers.engine.access import Viewer, area_clause
from layers.engine.statcsv import table_csv
from layers.errors import BadQuery
from layers.registry import RESTAURANTS
from layers.store.db import BUREAU_TIMEZONE

GROUPINGS = ("restaurant", "grid", "month")
COLUMNS = (
    ("key", "编码/时段"),
    ("label", "名称"),
    ("readings", "监测数据条数"),
    ("exceeded", "超标条数"),
    ("exceedance_rate", "超标率"),
)
UNPLACED = "未落入网格"  # the street label of restaurants standing in no grid
# group key and label of each grouping: a restaurant by its id, a street grid by its code (the
# first 9 digits of the restaurant's unit grid), a month as YYYY-MM of China time
_KEYS = {
    "restaurant": ("CAST(r.id AS text)", "max(k.name)"),
    "grid": ("rpad(left(r.grid_code, 9), 15, '0')", "coalesce(max(k.street), :unplaced)"),
    "month": ("to_char(f.time AT TIME ZONE :bureau_zone, 'YYYY-MM')", "NULL"),
}


@dataclass(frozen=True)
class FumeQuery:
    """Which days (China time, both included), grouped how, for whom."""

    start: date
    end: date
    by: str
    viewer: Viewer | None = None


def _check(query: FumeQuery) -> None:
    if query.by not in GROUPINGS:
        raise BadQuery(
            f"by must be one of {', '.join(GROUPINGS)}.",
            f"分组方式（by）必须是：{'、'.join(GROUPINGS)}。",
        )
    if query.end < query.start:
        raise BadQuery(
            f"The period ends ({query.end}) before it starts ({query.start}).",
            f"统计时段的结束日期（{query.end}）早于开始日期（{query.start}）。",
            code="period_reversed",
        )


def rows(conn: Connection, query: FumeQuery) -> list[dict[str, Any]]:
    """One row per group with its readings, exceedances and their rate; the last row (key
    null, label 合计) holds the totals."""
    _check(query)
    params: dict[str, Any] = {
        "bureau_zone": BUREAU_TIMEZONE,
        "start": query.start,
        "after_end": query.end + timedelta(days=1),
        "unplaced": UNPLACED,
    }
    scope = area_clause(RESTAURANTS, query.viewer, params, alias="r")
    key, label = _KEYS[query.by]
    found = conn.execute(
        text(f"""
        SELECT k.key, {label} AS label, count(*) AS readings,
               count(*) FILTER (WHERE k.exceeded) AS exceeded,
               round(count(*) FILTER (WHERE k.exceeded)::numeric / nullif(count(*), 0), 4) AS rate,
               GROUPING(k.key) AS total
        FROM (
            SELECT {key} AS key, r.name, r.street, f.exceeded
            FROM fume_readings AS f JOIN restaurants AS r ON r.id = f.restaurant_id
            WHERE f.time >= CAST(:start AS timestamp) AT TIME ZONE :bureau_zone
              AND f.time < CAST(:after_end AS timestamp) AT TIME ZONE :bureau_zone
              AND {scope}
        ) AS k
        GROUP BY ROLLUP (k.key)
        ORDER BY GROUPING(k.key), k.key
    """),
        params,
    ).mappings()
    return [
        {
            "key": None if row["total"] else row["key"],
            "label": "合计" if row["total"] else row["label"],
            "readings": row["readings"],
            "exceeded": row["exceeded"],
            "exceedance_rate": None if row["rate"] is None else float(row["rate"]),
        }
        for row in found
    ]


def as_csv(found: list[dict[str, Any]]) -> str:
    """The rows as CSV with Chinese headers, with a byte-order mark so spreadsheets read UTF-8."""
    return table_csv(COLUMNS, found)
