"""Sorting-point progress per residential compound: the garbage points of each compound counted
per build status, the share in service and the share with water and power connected, a total line
per county (and over every county when there are several), in one SQL statement with the read
scopes of both layers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, text

from layers.engine.access import Viewer, area_clause
from layers.engine.statcsv import table_csv
from layers.errors import BadQuery
from layers.registry import GARBAGE_POINTS, RESIDENTIAL_COMPOUNDS

STATUSES = GARBAGE_POINTS.field("build_status").codes  # in the order a point goes through them
KINDS = GARBAGE_POINTS.field("kind").codes
IN_SERVICE = "in_service"
# a point has water and power once it reaches that stage: connected, or later in service
CONNECTED_FROM = [c.value for c in STATUSES].index("connected")
UNLINKED = "未关联小区的投放点"
COLUMNS = (
    ("adcode", "县级行政区代码"),
    ("county", "县级行政区"),
    ("compound_id", "小区编号"),
    ("compound", "小区名称"),
    *((c.value, c.label_zh) for c in STATUSES),
    ("points", "投放点总数"),
    ("in_service_rate", "投用率"),
    ("connected_rate", "水电接通率"),
)


@dataclass(frozen=True)
class SortingQuery:
    """Which kind of point (None: every kind), for whom."""

    kind: str | None = None
    viewer: Viewer | None = None


def _check(query: SortingQuery) -> None:
    known = [c.value for c in KINDS]
    if query.kind is not None and query.kind not in known:
        raise BadQuery(
            f"kind must be one of {', '.join(known)}.",
            f"设施类型（kind）必须是：{'、'.join(known)}。",
            code="unknown_kind",
        )


def _status_counts(params: dict[str, Any]) -> str:
    """One count per build status, its value bound, its column named by the registry's code."""
    counts = []
    for n, code in enumerate(STATUSES):
        params[f"status_{n}"] = code.value
        counts.append(f'count(j.id) FILTER (WHERE j.build_status = :status_{n}) AS "{code.value}"')
    params["in_service"] = IN_SERVICE
    params["connected_from"] = [c.value for c in STATUSES[CONNECTED_FROM:]]
    return ",\n               ".join(counts)


def rows(conn: Connection, query: SortingQuery) -> list[dict[str, Any]]:
    """One row per compound the account reads (with the points it reads in it, none counted 0),
    one for the points linked to no readable compound where there are any, then each county's
    total line (`level` county, label 合计) and, over several counties, the total of all (`all`)."""
    _check(query)
    params: dict[str, Any] = {"kind": query.kind}
    compounds = area_clause(RESIDENTIAL_COMPOUNDS, query.viewer, params, alias="t")
    points = area_clause(GARBAGE_POINTS, query.viewer, params, alias="t")
    statuses = _status_counts(params)
    found = conn.execute(
        text(f"""
        WITH c AS (SELECT t.id, t.adcode, t.name FROM residential_compounds AS t
                   WHERE {compounds}),
             p AS (SELECT t.id, t.adcode, t.compound_id, t.build_status FROM garbage_points AS t
                   WHERE {points} AND (CAST(:kind AS text) IS NULL OR t.kind = :kind)),
             j AS (SELECT coalesce(c.adcode, p.adcode) AS adcode, c.id AS compound_id,
                          c.name AS compound, p.id, p.build_status
                   FROM c FULL JOIN p ON p.compound_id = c.id)
        SELECT j.adcode, max(k.name) AS county, j.compound_id, max(j.compound) AS compound,
               {statuses},
               count(j.id) AS points,
               round(count(j.id) FILTER (WHERE j.build_status = :in_service)
                     ::numeric / nullif(count(j.id), 0), 4) AS in_service_rate,
               round(count(j.id) FILTER (WHERE j.build_status = ANY(:connected_from))
                     ::numeric / nullif(count(j.id), 0), 4) AS connected_rate,
               GROUPING(j.adcode) AS all_counties, GROUPING(j.compound_id) AS county_total
        FROM j LEFT JOIN counties AS k ON k.adcode = j.adcode
        GROUP BY GROUPING SETS ((j.adcode, j.compound_id), (j.adcode), ())
        HAVING GROUPING(j.adcode) = 0 OR count(DISTINCT j.adcode) > 1
        ORDER BY GROUPING(j.adcode), j.adcode, GROUPING(j.compound_id),
                 j.compound_id IS NULL, j.compound_id
    """),
        params,
    ).mappings()
    return [_row(row) for row in found]


def _row(row: Any) -> dict[str, Any]:
    level = "all" if row["all_counties"] else "county" if row["county_total"] else "compound"
    label = {"all": "总计", "county": "合计"}.get(level, row["compound"] or UNLINKED)
    out = {
        "level": level,
        "adcode": None if level == "all" else row["adcode"],
        "county": None if level == "all" else row["county"],
        "compound_id": row["compound_id"] if level == "compound" else None,
        "compound": label,
        **{c.value: row[c.value] for c in STATUSES},
        "points": row["points"],
    }
    for name in ("in_service_rate", "connected_rate"):
        out[name] = None if row[name] is None else float(row[name])
    return out


def as_csv(found: list[dict[str, Any]]) -> str:
    """The rows as CSV with Chinese headers (the build statuses by their registry labels)."""
    return table_csv(COLUMNS, found)
