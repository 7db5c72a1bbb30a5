"""门前三包 merchants per rating per grid: how many red, yellow and green merchants each community
(or street, or section) grid holds, with the totals last, in one SQL statement with the merchants'
read scope."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, text

from layers.engine.access import Viewer, area_clause
from layers.engine.statcsv import table_csv
from layers.errors import BadQuery
from layers.registry import GRIDS, MERCHANT_RATINGS, MERCHANTS
from layers.store import versions

# a merchant's grid is its section (unit) grid; a grid code holds its community in the first 12
# digits and its street in the first 9 (the rest zeros), as the grid code standard numbers them
DIGITS = {"section": 15, "community": 12, "street": 9}
GROUPINGS = tuple(DIGITS)
RATINGS = tuple(reversed(MERCHANT_RATINGS))  # worst first: red, yellow, green
UNPLACED = "未落入网格"
COLUMNS = (
    ("key", "网格编码"),
    ("label", "网格名称"),
    *((c.value, c.label_zh) for c in RATINGS),
    ("unrated", "未评级"),
    ("merchants", "商户总数"),
)


@dataclass(frozen=True)
class RatingQuery:
    """Grouped by which grid level, for whom."""

    by: str = "community"
    viewer: Viewer | None = None


def _check(query: RatingQuery) -> None:
    if query.by not in GROUPINGS:
        raise BadQuery(
            f"by must be one of {', '.join(GROUPINGS)}.",
            f"分组方式（by）必须是：{'、'.join(GROUPINGS)}。",
        )


def _rating_counts(params: dict[str, Any]) -> str:
    """One count per rating, its value bound, its column named by the registry's code."""
    counts = []
    for n, code in enumerate(RATINGS):
        params[f"rating_{n}"] = code.value
        counts.append(f'count(*) FILTER (WHERE m.rating = :rating_{n}) AS "{code.value}"')
    return ", ".join(counts)


def rows(conn: Connection, query: RatingQuery) -> list[dict[str, Any]]:
    """One row per grid of the level holding merchants the account reads (`key` its code,
    `label` its current name), merchants in no grid under key null; the last row (label 合计,
    `total` true) the totals."""
    _check(query)
    params: dict[str, Any] = {"digits": DIGITS[query.by]}
    scope = area_clause(MERCHANTS, query.viewer, params, alias="t")
    ratings = _rating_counts(params)
    found = conn.execute(
        text(f"""
        SELECT m.key, {ratings},
               count(*) FILTER (WHERE m.rating IS NULL) AS unrated, count(*) AS merchants,
               GROUPING(m.key) AS total,
               (SELECT g.name FROM grids AS g
                WHERE g.code = m.key AND {versions.is_current(GRIDS, "g")} LIMIT 1) AS label
        FROM (SELECT rpad(left(t.grid_code, :digits), 15, '0') AS key, t.rating
              FROM merchants AS t WHERE {scope}) AS m
        GROUP BY ROLLUP (m.key)
        ORDER BY GROUPING(m.key), m.key IS NULL, m.key
    """),
        params,
    ).mappings()
    return [
        {
            "key": None if row["total"] else row["key"],
            "label": "合计"
            if row["total"]
            else row["label"] or (UNPLACED if not row["key"] else None),
            **{c.value: row[c.value] for c in RATINGS},
            "unrated": row["unrated"],
            "merchants": row["merchants"],
            "total": bool(row["total"]),
        }
        for row in found
    ]


def as_csv(found: list[dict[str, Any]]) -> str:
    """The rows as CSV with Chinese headers (the ratings by their registry labels)."""
    return table_csv(COLUMNS, found)
