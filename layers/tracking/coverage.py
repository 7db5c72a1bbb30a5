"""Presence and coverage (在岗, 巡查覆盖, 清扫覆盖): per inspector and day the time on duty inside the
patrol area and the share of its streets passed, per sanitation vehicle and day the share of its
road segments swept. One SQL statement each, with the viewer's scope in it (README, "Presence
and coverage").

A track is cut into runs wherever two positions lie more than the gap limit apart (a phone
switched off, a terminal out of coverage): no line is drawn across the gap. A vehicle's run is
cut too where it drives faster than the sweeping limit, and those stretches are left out. The
runs are lines in the county's Gauss-Krüger zone; a street counts with the length of it that lies
within the buffer distance of them, measured in pieces of a few metres.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Connection, text

from layers.engine.access import Viewer, area_clause, county_condition, forbidden
from layers.errors import BadQuery
from layers.registry import GRIDS, ROAD_SEGMENTS, Role
from layers.store import versions
from layers.store.db import BUREAU_TIMEZONE
from layers.tracking.jt808.messages import CHINA

PRESENCE_COLUMNS = (
    ("day", "日期"),
    ("adcode", "县级行政区划代码"),
    ("username", "监督员账号"),
    ("name", "监督员"),
    ("grids", "巡查网格"),
    ("fixes", "定位点数"),
    ("on_duty_minutes", "在岗时长(分钟)"),
    ("streets_m", "网格内道路长度(米)"),
    ("passed_m", "已巡查道路长度(米)"),
    ("passed_share", "道路巡查覆盖率"),
)
SWEEPING_COLUMNS = (
    ("day", "日期"),
    ("adcode", "县级行政区划代码"),
    ("vehicle_id", "车辆编号"),
    ("plate", "车牌号"),
    ("company", "所属单位"),
    ("fixes", "定位点数"),
    ("segments", "责任路段数"),
    ("assigned_m", "责任路段长度(米)"),
    ("swept_m", "已清扫长度(米)"),
    ("swept_share", "清扫覆盖率"),
)
TOLERANCE_M = 2.0  # tracks are simplified this much (under GPS error): fewer vertices to test
PIECE_M = 5.0  # streets are counted passed in pieces at most this long


@dataclass(frozen=True)
class Rules:
    """How positions become time on duty and passed streets."""

    gap_minutes: float = 5.0  # consecutive positions further apart do not count, nor join
    buffer_m: float = 30.0  # a street within this distance of the track is passed
    sweeping_kmh: float = 20.0  # a vehicle faster than this is driving, not sweeping
    max_days: int = 31  # the longest period of one query


@dataclass(frozen=True)
class Period:
    """The days asked for (China time, both included), for whom, under which rules."""

    first: date
    last: date
    viewer: Viewer
    rules: Rules = Rules()


def _check(period: Period) -> None:
    if period.last < period.first:
        raise BadQuery(
            f"The period ends ({period.last}) before it starts ({period.first}).",
            f"统计时段的结束日期（{period.last}）早于开始日期（{period.first}）。",
            code="period_reversed",
        )
    if period.last >= date.max:  # the day after it, where the period ends, has no date
        raise BadQuery(
            f"{period.last} is beyond the calendar.",
            f"日期 {period.last} 超出了日历范围。",
            code="day_out_of_range",
        )
    if (period.last - period.first).days >= period.rules.max_days:
        raise BadQuery(
            f"A period covers at most {period.rules.max_days} days.",
            f"一次统计不能超过 {period.rules.max_days} 天。",
            code="period_too_long",
        )


def _params(period: Period) -> dict[str, Any]:
    """The period's bounds as instants (constants, so only its days' partitions are read)."""
    rules = period.rules
    return {
        "first": period.first,
        "last": period.last,
        "start": datetime.combine(period.first, time(), CHINA),
        "end": datetime.combine(period.last + timedelta(days=1), time(), CHINA),
        "zone": BUREAU_TIMEZONE,
        "gap": timedelta(minutes=rules.gap_minutes),
        "buffer_m": rules.buffer_m,
        "sweeping_kmh": rules.sweeping_kmh,
        "tolerance_m": TOLERANCE_M,
        "piece_m": PIECE_M,
    }


DAYS = """days AS (
    SELECT CAST(d AS date) AS day
    FROM generate_series(CAST(:first AS date), CAST(:last AS date), interval '1 day') AS d
)"""


# the seconds between consecutive positions that both count and lie at most the gap apart
ON_TIME = (
    "COALESCE(sum(extract(epoch FROM f.gap)) FILTER (WHERE f.counted AND f.was_counted "
    "AND f.gap <= :gap), 0)"
)


def _runs(fixes: str, key: str, counts: str) -> str:
    """CTEs `steps` (each position with the gap since the one before and whether that one
    counted) and `runs` (positions numbered by run) over the CTE `fixes`, whose `counts`
    column says whether a position counts."""
    window = f"PARTITION BY {key} ORDER BY f.time"
    return f"""steps AS (
        SELECT f.*, f.{counts} AS counted, f.time - lag(f.time) OVER w AS gap,
               lag(f.{counts}) OVER w AS was_counted
        FROM {fixes} AS f
        WINDOW w AS ({window})
    ), runs AS (
        SELECT f.*, count(*) FILTER (WHERE f.gap IS NULL OR f.gap > :gap OR NOT f.was_counted
                                     OR NOT f.counted) OVER w AS run
        FROM steps AS f
        WINDOW w AS ({window})
    )"""


def _covered(part: str, track: str) -> str:
    """The length of a line `part` within the buffer of a `track` (both in metres; the track
    possibly null), counted in pieces of `PIECE_M`: a piece counts when its middle is that close
    to the track. The track is clipped to the part's box first: a vehicle passing the same street
    many times a day is tested a few hundred metres at a time, and nothing is buffered."""
    near = f"ST_ClipByBox2D({track}, ST_Expand(Box2D({part}), :buffer_m))"
    pieces = f"""(SELECT COALESCE(sum(ST_Length(s.geom)), 0)
        FROM (SELECT {near} AS geom) AS n, ST_DumpSegments(ST_Segmentize({part}, :piece_m)) AS s
        WHERE ST_DWithin(ST_LineInterpolatePoint(s.geom, 0.5), n.geom, :buffer_m))"""
    return f"CASE WHEN ST_DWithin({part}, {track}, :buffer_m) THEN {pieces} ELSE 0 END"


def _presence_scope(viewer: Viewer, params: dict[str, Any]) -> str:
    """The condition on the grids `g` and inspectors `i` of the rows the viewer may read."""
    if viewer.role is Role.HANDLER:
        raise forbidden(
            "Handling units do not read inspectors' presence.",
            "处置单位无权查看监督员在岗情况。",
        )
    county_sql, county_params = county_condition(viewer, "g.adcode")
    params.update(county_params)
    if viewer.role is not Role.INSPECTOR:
        return county_sql
    params["self"] = viewer.username
    return f"({county_sql} AND i.username = :self)"


def presence(conn: Connection, period: Period) -> list[dict[str, Any]]:
    """One row per inspector, county and day: positions, minutes on duty in the patrol area,
    the length of the area's road segments and how much of it the track passed."""
    _check(period)
    params = _params(period)
    scope = _presence_scope(period.viewer, params)
    key = "f.day, f.username, f.adcode"
    found = conn.execute(
        text(f"""
        WITH {DAYS}, areas AS MATERIALIZED (
            SELECT d.day, i.username, g.adcode, ST_Union(g.geom) AS geom,
                   string_agg(g.code, ',' ORDER BY g.code) AS grids
            FROM days AS d
            JOIN grids AS g ON {versions.valid_on(GRIDS, "g", "d.day")}
            JOIN grid_inspectors AS i ON i.grid_code = g.code
            WHERE i.username IS NOT NULL AND {scope}
            GROUP BY d.day, i.username, g.adcode
        ), fixes AS (
            SELECT a.day, a.username, a.adcode, p.time, p.geom,
                   ST_Intersects(a.geom, p.geom) AS inside
            FROM areas AS a
            JOIN latest_positions AS l ON l.username = a.username
            CROSS JOIN LATERAL (
                SELECT p.time, p.geom FROM positions AS p
                WHERE p.tracker_id = l.id AND p.time >= :start AND p.time < :end
                  AND CAST(p.time AT TIME ZONE :zone AS date) = a.day
                OFFSET 0) AS p
        ), {_runs("fixes", key, "inside")}, duty AS (
            SELECT f.day, f.username, f.adcode, count(*) AS fixes, {ON_TIME} AS seconds
            FROM steps AS f
            GROUP BY f.day, f.username, f.adcode
        ), tracks AS MATERIALIZED (
            SELECT r.day, r.username, r.adcode,
                   ST_Simplify(ST_Transform(ST_Collect(r.line), c.gk_srid), :tolerance_m, TRUE)
                       AS geom
            FROM (SELECT f.day, f.username, f.adcode, ST_MakeLine(f.geom ORDER BY f.time) AS line
                  FROM runs AS f WHERE f.inside
                  GROUP BY f.day, f.username, f.adcode, f.run) AS r
            JOIN counties AS c ON c.adcode = r.adcode
            GROUP BY r.day, r.username, r.adcode, c.gk_srid
        ), streets AS (
            SELECT k.day, k.username, k.adcode, sum(ST_Length(k.part)) AS total_m,
                   sum({_covered("k.part", "w.geom")}) AS passed_m
            FROM (SELECT a.day, a.username, a.adcode,
                         ST_Transform(ST_Intersection(s.geom, a.geom), c.gk_srid) AS part
                  FROM areas AS a
                  JOIN counties AS c ON c.adcode = a.adcode
                  JOIN road_segments AS s ON s.adcode = a.adcode AND ST_Intersects(s.geom, a.geom)
                 ) AS k
            LEFT JOIN tracks AS w
                ON w.day = k.day AND w.username = k.username AND w.adcode = k.adcode
            GROUP BY k.day, k.username, k.adcode
        )
        SELECT a.day, a.adcode, a.username, u.display_name AS name, a.grids,
               COALESCE(d.fixes, 0) AS fixes,
               round(COALESCE(d.seconds, 0) / 60.0, 1) AS on_duty_minutes,
               round(CAST(COALESCE(s.total_m, 0) AS numeric), 1) AS streets_m,
               round(CAST(COALESCE(s.passed_m, 0) AS numeric), 1) AS passed_m,
               round(CAST(COALESCE(s.passed_m, 0) / nullif(s.total_m, 0) AS numeric), 4)
                   AS passed_share
        FROM areas AS a
        LEFT JOIN users AS u ON u.username = a.username
        LEFT JOIN duty AS d ON d.day = a.day AND d.username = a.username AND d.adcode = a.adcode
        LEFT JOIN streets AS s
            ON s.day = a.day AND s.username = a.username AND s.adcode = a.adcode
        ORDER BY a.day, a.adcode, a.username
    """),
        params,
    ).mappings()
    return [_plain(row) for row in found]


def _sweeping_scope(viewer: Viewer, params: dict[str, Any]) -> str:
    """The condition on the road segments `s` the viewer may read (an inspector's: those in
    the patrol area, so their vehicles' coverage counts those alone)."""
    if viewer.role is Role.HANDLER:
        raise forbidden(
            "Handling units do not read vehicles' tracks.",
            "处置单位无权查看车辆轨迹。",
        )
    return area_clause(ROAD_SEGMENTS, viewer, params, alias="s")


def sweeping(conn: Connection, period: Period) -> list[dict[str, Any]]:
    """One row per sanitation vehicle with road segments and per day: positions, the length of
    its segments and how much of it the track passed at sweeping speed."""
    _check(period)
    params = _params(period)
    scope = _sweeping_scope(period.viewer, params)
    found = conn.execute(
        text(f"""
        WITH {DAYS}, assigned AS MATERIALIZED (
            SELECT s.sweeper_vehicle_id AS vehicle_id, s.geom
            FROM road_segments AS s
            WHERE s.sweeper_vehicle_id IS NOT NULL AND {scope}
        ), fleet AS MATERIALIZED (
            SELECT v.id AS vehicle_id, v.plate, v.company, v.adcode, c.gk_srid,
                   count(*) AS segments,
                   sum(ST_Length(ST_Transform(a.geom, c.gk_srid))) AS assigned_m
            FROM assigned AS a
            JOIN vehicles AS v ON v.id = a.vehicle_id
            JOIN counties AS c ON c.adcode = v.adcode
            GROUP BY v.id, c.gk_srid
        ), trackers AS (
            SELECT DISTINCT f.vehicle_id, l.id AS tracker
            FROM fleet AS f
            JOIN vehicles AS v ON v.id = f.vehicle_id
            JOIN terminals AS t ON t.phone = v.terminal_phone OR t.vehicle_id = v.id
            JOIN latest_positions AS l ON l.terminal_id = t.id
        ), fixes AS (
            SELECT k.vehicle_id, k.tracker, CAST(p.time AT TIME ZONE :zone AS date) AS day,
                   p.time, p.geom, p.speed <= :sweeping_kmh AS sweeping
            FROM trackers AS k
            CROSS JOIN LATERAL (
                SELECT p.time, p.geom, p.speed FROM positions AS p
                WHERE p.tracker_id = k.tracker AND p.time >= :start AND p.time < :end
                OFFSET 0) AS p
        ), {_runs("fixes", "f.tracker, f.day", "sweeping")}, tallies AS (
            SELECT f.vehicle_id, f.day, count(*) AS fixes FROM fixes AS f
            GROUP BY f.vehicle_id, f.day
        ), tracks AS MATERIALIZED (
            SELECT r.vehicle_id, r.day,
                   ST_Simplify(ST_Transform(ST_Collect(r.line), m.gk_srid), :tolerance_m, TRUE)
                       AS geom
            FROM (SELECT f.vehicle_id, f.tracker, f.day, ST_MakeLine(f.geom ORDER BY f.time) AS line
                  FROM runs AS f WHERE f.sweeping
                  GROUP BY f.vehicle_id, f.tracker, f.day, f.run) AS r
            JOIN fleet AS m ON m.vehicle_id = r.vehicle_id
            GROUP BY r.vehicle_id, r.day, m.gk_srid
        ), covered AS (
            SELECT w.vehicle_id, w.day, sum({_covered("a.part", "w.geom")}) AS swept_m
            FROM tracks AS w
            JOIN (SELECT a.vehicle_id, ST_Transform(a.geom, m.gk_srid) AS part
                  FROM assigned AS a JOIN fleet AS m ON m.vehicle_id = a.vehicle_id) AS a
                ON a.vehicle_id = w.vehicle_id
            GROUP BY w.vehicle_id, w.day
        )
        SELECT d.day, m.adcode, m.vehicle_id, m.plate, m.company,
               COALESCE(n.fixes, 0) AS fixes, m.segments,
               round(CAST(m.assigned_m AS numeric), 1) AS assigned_m,
               round(CAST(COALESCE(w.swept_m, 0) AS numeric), 1) AS swept_m,
               round(CAST(COALESCE(w.swept_m, 0) / nullif(m.assigned_m, 0) AS numeric), 4)
                   AS swept_share
        FROM fleet AS m
        CROSS JOIN days AS d
        LEFT JOIN tallies AS n ON n.vehicle_id = m.vehicle_id AND n.day = d.day
        LEFT JOIN covered AS w ON w.vehicle_id = m.vehicle_id AND w.day = d.day
        ORDER BY d.day, m.adcode, m.plate
    """),
        params,
    ).mappings()
    return [_plain(row) for row in found]


def _plain(row: Any) -> dict[str, Any]:
    """A row with JSON's types: days as ISO text, decimals as floats."""
    out: dict[str, Any] = {}
    for name, value in row.items():
        if isinstance(value, date):
            out[name] = value.isoformat()
        elif value is not None and not isinstance(value, int | str):
            out[name] = float(value)
        else:
            out[name] = value
    return out
