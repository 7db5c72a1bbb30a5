"""Fume readings: written in batches by monitoring platforms, read with the restaurants' scope."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, text

from layers.engine.access import Viewer, area_clause, forbidden
from layers.errors import BadQuery
from layers.registry import RESTAURANTS, Role
from layers.store.db import BUREAU_TIMEZONE

NATIONAL_LIMIT = 2.0  # mg/m³, GB 18483-2001 饮食业油烟排放标准
MAX_CONCENTRATION = 100.0  # mg/m³: far above any kitchen's exhaust; a higher value is a fault
FUTURE_TOLERANCE = timedelta(minutes=5)  # clocks of monitoring devices drift a little
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)  # no kitchen reported online before
PLATFORM_ROLES = (Role.ADMIN, Role.DISPATCHER)  # accounts the monitoring platforms post with
# the county's own limit, else the national one
LIMIT_SQL = f"COALESCE((SELECT l.limit_mg_m3 FROM fume_limits AS l WHERE l.adcode = {{}}), {NATIONAL_LIMIT})"


@dataclass(frozen=True)
class Reading:
    """One posted reading: which device, when, how much, and whether the purifier ran."""

    device: str
    time: datetime
    concentration: float
    purifier_on: bool


def _refuse(number: int, en: str, zh: str, code: str) -> BadQuery:
    return BadQuery(f"Reading {number}: {en}", f"第 {number} 条数据：{zh}", code=code)


def problem(r: Reading, now: datetime) -> tuple[str, str, str] | None:
    """Why a reading cannot be true, as (code, English, Chinese), or None."""
    if r.time.tzinfo is None:
        return (
            "time_without_offset",
            "the time needs its offset (e.g. +08:00).",
            "时间须带时区（如 +08:00）。",
        )
    if r.time > now + FUTURE_TOLERANCE:
        return (
            "time_in_future",
            f"the time {r.time.isoformat()} is in the future.",
            f"时间 {r.time.isoformat()} 晚于当前时间。",
        )
    if r.time < EARLIEST:
        return (
            "time_too_old",
            f"the time {r.time.isoformat()} is before online monitoring began ({EARLIEST.year}).",
            f"时间 {r.time.isoformat()} 早于在线监控开始的年份（{EARLIEST.year} 年）。",
        )
    if not math.isfinite(r.concentration):
        return ("bad_concentration", "a concentration is a number.", "油烟浓度须为数字。")
    if r.concentration < 0:
        return (
            "negative_concentration",
            "a concentration cannot be negative.",
            "油烟浓度不能为负数。",
        )
    if r.concentration > MAX_CONCENTRATION:
        return (
            "concentration_out_of_range",
            f"{r.concentration} mg/m³ is beyond what a device measures "
            f"(at most {MAX_CONCENTRATION:g}); check the device.",
            f"油烟浓度 {r.concentration} mg/m³ 超出监测设备量程（最高 {MAX_CONCENTRATION:g}），"
            "请检查设备。",
        )
    return None


def check(readings: Sequence[Reading], now: datetime) -> None:
    """Refuse the whole batch at its first reading that cannot be true."""
    for number, r in enumerate(readings, start=1):
        found = problem(r, now)
        if found is not None:
            code, en, zh = found
            raise _refuse(number, en, zh, code)


def restaurants_of(
    conn: Connection, viewer: Viewer, devices: Sequence[str]
) -> dict[str, list[tuple[int, str]]]:
    """The viewer's restaurants with these device IDs: device → [(id, adcode)]."""
    params: dict[str, Any] = {"devices": sorted(set(devices))}
    scope = area_clause(RESTAURANTS, viewer, params, alias="r")
    found: dict[str, list[tuple[int, str]]] = {}
    for device, rid, adcode in conn.execute(
        text(
            f"SELECT r.device_id, r.id, r.adcode FROM restaurants AS r "
            f"WHERE r.device_id = ANY(:devices) AND {scope}"
        ),
        params,
    ):
        found.setdefault(device, []).append((rid, adcode))
    return found


def device_problem(device: str, matches: int) -> tuple[str, str, str]:
    """Why a device ID names no restaurant (0 matches) or several, as (code, English, Chinese)."""
    if matches == 0:
        return (
            "unknown_device",
            f"no monitored restaurant of your counties has the device {device}.",
            f"您所辖县区没有监控设备编号为 {device} 的餐饮单位。",
        )
    return (
        "ambiguous_device",
        f"the device {device} is registered in several counties; post with county=.",
        f"设备编号 {device} 在多个县区登记，请用 county= 指定县区。",
    )


def _month(moment: datetime) -> date:
    local = moment.astimezone(ZoneInfo(BUREAU_TIMEZONE))
    return date(local.year, local.month, 1)


def ensure_partitions(conn: Connection, months: Sequence[date]) -> int:
    """Make the month partitions of `months` that do not exist yet; how many were made."""
    wanted = sorted(set(months))
    if not wanted:
        return 0
    made: int = conn.execute(
        text("SELECT citygrid_fume_partitions(CAST(:months AS date[]))"), {"months": wanted}
    ).scalar_one()
    return made


def require_platform(viewer: Viewer) -> None:
    """Refuse (403) an account that is not a monitoring platform's."""
    if viewer.role not in PLATFORM_ROLES:
        raise forbidden(
            "Only monitoring platforms (admin or dispatcher accounts) post fume readings.",
            "只有监测平台（管理员或指挥中心账号）可以上报油烟监测数据。",
        )


def store(conn: Connection, viewer: Viewer, readings: Sequence[Reading]) -> int:
    """Store a checked batch (all or nothing); a reading already stored for that device and
    time is kept as it was. How many readings were new."""
    require_platform(viewer)
    found = restaurants_of(conn, viewer, [r.device for r in readings])
    ids: list[int] = []
    for number, r in enumerate(readings, start=1):
        matches = found.get(r.device, [])
        if len(matches) != 1:
            code, en, zh = device_problem(r.device, len(matches))
            raise _refuse(number, en, zh, code)
        ids.append(matches[0][0])
    ensure_partitions(conn, [_month(r.time) for r in readings])
    stored: int = conn.execute(
        text(f"""
        INSERT INTO fume_readings (restaurant_id, time, adcode, concentration, purifier_on, exceeded)
        SELECT x.rid, x.time, r.adcode, x.c, x.purifier_on, x.c > {LIMIT_SQL.format("r.adcode")}
        FROM unnest(CAST(:ids AS bigint[]), CAST(:times AS timestamptz[]), CAST(:cs AS real[]),
                    CAST(:ons AS boolean[])) AS x(rid, time, c, purifier_on)
        JOIN restaurants AS r ON r.id = x.rid
        ON CONFLICT ON CONSTRAINT pk_fume_readings DO NOTHING
    """),
        {
            "ids": ids,
            "times": [r.time for r in readings],
            "cs": [r.concentration for r in readings],
            "ons": [r.purifier_on for r in readings],
        },
    ).rowcount
    return stored


@dataclass(frozen=True)
class ReadingsQuery:
    """What `/collections/fume_readings/items` asks for."""

    viewer: Viewer
    start: datetime | date | None = None
    end: datetime | date | None = None
    exceeded: bool | None = None
    restaurant: int | None = None
    limit: int = 100
    offset: int = 0


def _bound(value: datetime | date, end: bool) -> tuple[str, Any]:
    """A period end as SQL and its value: a day is a China-time day (the whole of it at the end)."""
    if isinstance(value, datetime):
        return "CAST(:{} AS timestamptz)", value
    day = value + timedelta(days=1) if end else value
    return "CAST(:{} AS timestamp) AT TIME ZONE :bureau_zone", datetime(
        day.year, day.month, day.day
    )


def conditions(query: ReadingsQuery, params: dict[str, Any]) -> list[str]:
    where = [area_clause(RESTAURANTS, query.viewer, params, alias="r")]
    params["bureau_zone"] = BUREAU_TIMEZONE
    instant = (
        query.start is not None and query.start == query.end and isinstance(query.start, datetime)
    )
    if instant:
        params["t_at"] = query.start
        where.append("f.time = CAST(:t_at AS timestamptz)")
    else:
        if query.start is not None:
            sql, params["t_from"] = _bound(query.start, end=False)
            where.append(f"f.time >= {sql.format('t_from')}")
        if query.end is not None:
            sql, params["t_to"] = _bound(query.end, end=True)
            op = "<" if not isinstance(query.end, datetime) else "<="
            where.append(f"f.time {op} {sql.format('t_to')}")
    if query.exceeded is not None:
        params["exceeded"] = query.exceeded
        where.append("f.exceeded = :exceeded")
    if query.restaurant is not None:
        params["restaurant"] = query.restaurant
        where.append("f.restaurant_id = :restaurant")
    return where


def items(conn: Connection, query: ReadingsQuery) -> tuple[bytes, int]:
    """A page of readings, newest first, as a GeoJSON FeatureCollection (each at its
    restaurant), and how many were returned."""
    params: dict[str, Any] = {"limit": query.limit, "offset": query.offset}
    where = " AND ".join(conditions(query, params))
    row = conn.execute(
        text(f"""
        WITH page AS (
            SELECT f.*, r.name, r.device_id, r.geom FROM fume_readings AS f
            JOIN restaurants AS r ON r.id = f.restaurant_id
            WHERE {where}
            ORDER BY f.time DESC, f.restaurant_id
            LIMIT :limit OFFSET :offset
        )
        SELECT json_build_object(
            'type', 'FeatureCollection',
            'numberReturned', count(*),
            'features', COALESCE(json_agg(json_build_object(
                'type', 'Feature',
                'id', p.restaurant_id || '-' || extract(epoch FROM p.time)::bigint,
                'geometry', ST_AsGeoJSON(p.geom, 7)::json,
                'properties', json_build_object(
                    'restaurant_id', p.restaurant_id,
                    'restaurant', p.name,
                    'device_id', p.device_id,
                    'adcode', p.adcode,
                    'time', to_char(p.time AT TIME ZONE :bureau_zone,
                                    'YYYY-MM-DD"T"HH24:MI:SS"+08:00"'),
                    'concentration', p.concentration,
                    'purifier_on', p.purifier_on,
                    'exceeded', p.exceeded)
            ) ORDER BY p.time DESC, p.restaurant_id), '[]'::json)
        )::text, count(*) FROM page AS p
    """),
        params,
    ).one()
    return str(row[0]).encode(), int(row[1])
