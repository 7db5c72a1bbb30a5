"""Case heatmaps aggregated by PostGIS: counts per square bin in metres of the Gauss-Krüger zone.

Every case keeps its zone, its projected position and its 250 m cell (migration 0010), so a bin
of 250 m × 2^k is an integer division of stored cells: no point is projected at query time and
the planner, knowing how few distinct cells there are, aggregates in parallel workers. Only the
bins leave the database: their centres in longitude/latitude and their weights.

Bins of whole cells (250 m and up) for a viewer limited by county alone, with no box and no grid,
are summed from the cases counted per county, China-time day or month, subclass and cell, kept
current by the triggers of every write (migration 0036, `layers/cases/cellcounts.py`). Those
filters are conditions on the key, so the sums are the counts of the scan, to the case. A patrol
area, a handling unit, a grid or a box cuts through cells (a box on points is not a box on
cells), and bins smaller than a cell need each case's position: those read the cases.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import Connection, text

from gis.bins import bin_metres, cells_per_bin
from layers.cases.casefilters import period_clause, within_grid
from layers.cases.cellcounts import cell_counts
from layers.cases.codes import category_clause
from layers.engine.access import Viewer, area_clause, county_condition, read_limit
from layers.engine.features import BBox, bbox_clause
from layers.errors import BadQuery
from layers.registry import CASES


@dataclass(frozen=True)
class HeatmapQuery:
    """What a heatmap asks for: where, at which zoom, when, which categories, for whom."""

    zoom: float
    bbox: BBox | None = None
    start: date | None = None
    end: date | None = None  # inclusive
    categories: tuple[str, ...] = field(default=())
    viewer: Viewer | None = None
    within: str | None = None  # a current grid's code: only the cases inside it
    counts: bool = True  # False: scan the cases even where the counts would answer


def filters(conn: Connection, query: HeatmapQuery, params: dict[str, Any]) -> str:
    """The WHERE conditions on `cases AS t` shared by the bins and by their check count."""
    clauses = [area_clause(CASES, query.viewer, params)]
    if query.bbox is not None:
        clauses.append(bbox_clause(query.bbox, params))
    clauses.append(period_clause(query.start, query.end, params, "t"))
    clauses.append(category_clause(conn, query.categories, params, "t"))
    clauses.append(within_grid(query.within, params, "t"))
    return " AND ".join(clauses)


def _latitude(conn: Connection, query: HeatmapQuery) -> float:
    """The latitude the bins are sized at: the box's middle, else the middle of the viewer's
    counties (never of the deployment's others: a county's heatmap is the same in any)."""
    bbox, viewer = query.bbox, query.viewer
    if bbox is not None and bbox.crs.uri.endswith("CRS84"):
        return (bbox.south + bbox.north) / 2
    held, bound = county_condition(viewer, "adcode")
    middle = conn.execute(
        text(f"SELECT avg(ST_Y(centre)) FROM counties WHERE {held}"), dict(bound)
    ).scalar()
    return float(middle) if middle is not None else 30.0


def counted(query: HeatmapQuery, k: int | None) -> bool:
    """Whether the per-day cell counts answer the query exactly (see the module's docstring)."""
    return (
        query.counts
        and k is not None
        and query.bbox is None
        and query.within is None
        and not read_limit(CASES, query.viewer).narrow
    )


def _binned(
    conn: Connection, query: HeatmapQuery, period: str | None
) -> tuple[str, dict[str, Any]]:
    """SQL of `centres` (period, n, c: the bin's centre; srid, i, j: the bin) and its values."""
    bin_m = bin_metres(query.zoom, _latitude(conn, query))
    params: dict[str, Any] = {"bin": bin_m, "zoom": query.zoom}
    k = cells_per_bin(bin_m)
    if period is not None:
        params["interval"] = period
    if counted(query, k):
        period_days = (query.start, query.end)
        source = cell_counts(
            conn, query.viewer, period_days, query.categories, params, period == "week"
        )
        where, weight = "TRUE", "sum(t.n)"
        when = "date_trunc(:interval, CAST(t.day AS timestamptz))"
    else:
        where = filters(conn, query, params)
        source, weight = "cases", "count(*)"
        when = "date_trunc(:interval, t.reported_at)"
        # The default setup cost keeps PostgreSQL from splitting a one-second scan over the cores.
        conn.execute(text("SET LOCAL parallel_setup_cost = 100"))
    if k is not None:
        params["k"] = k
        column, row = "t.cell_x / :k", "t.cell_y / :k"
    else:
        column, row = "floor(t.gk_x / :bin)::int", "floor(t.gk_y / :bin)::int"
    sql = f"""
        bins AS (
            SELECT {when if period else "NULL::timestamptz"} AS period, t.gk_srid AS srid,
                   {column} AS i, {row} AS j, {weight} AS n
            FROM {source} AS t WHERE {where}
            GROUP BY 1, 2, 3, 4
        ), centres AS (
            SELECT period, n, srid, i, j, ST_Transform(ST_SetSRID(ST_MakePoint(
                       (i + 0.5) * CAST(:bin AS float8), (j + 0.5) * CAST(:bin AS float8)),
                       srid), 4490) AS c
            FROM bins
        )"""
    return sql, params


# bins of equal weight in the order of their cells: the same text whichever table was read
BIN_JSON = """coalesce(json_agg(json_build_array(
    round(ST_X(c)::numeric, 6), round(ST_Y(c)::numeric, 6), n)
    ORDER BY n DESC, srid, i, j), '[]'::json)"""


def heatmap(conn: Connection, query: HeatmapQuery) -> str:
    """The bins as JSON text: cell size, total, heaviest bin, and [lon, lat, weight] per bin."""
    centres, params = _binned(conn, query, None)
    return str(
        conn.execute(
            text(f"""
            WITH {centres}
            SELECT json_build_object(
                'cell_m', CAST(:bin AS float8), 'zoom', CAST(:zoom AS float8),
                'total', coalesce(sum(n), 0), 'max', coalesce(max(n), 0), 'bins', {BIN_JSON})::text
            FROM centres
        """),
            params,
        ).scalar_one()
    )


def frames(conn: Connection, query: HeatmapQuery, interval: str) -> str:
    """The bins of each week or month, in order, for an animated heatmap."""
    if interval not in ("week", "month"):
        raise BadQuery(
            "interval must be week or month.", "时间间隔（interval）必须是 week 或 month。"
        )
    centres, params = _binned(conn, query, interval)
    return str(
        conn.execute(
            text(f"""
            WITH {centres}, framed AS (
                SELECT to_char(period, 'YYYY-MM-DD') AS period, sum(n) AS total, max(n) AS max,
                       {BIN_JSON} AS bins
                FROM centres GROUP BY period
            )
            SELECT json_build_object(
                'cell_m', CAST(:bin AS float8), 'interval', CAST(:interval AS text),
                'max', coalesce(max(max), 0),
                'frames', coalesce(json_agg(json_build_object(
                    'period', period, 'total', total, 'bins', bins) ORDER BY period), '[]'::json)
            )::text
            FROM framed
        """),
            params,
        ).scalar_one()
    )
