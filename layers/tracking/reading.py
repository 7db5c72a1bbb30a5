"""Reading tracking data: latest positions of vehicles and people, one tracker's track; the
database builds the GeoJSON, limited to what the viewer may read."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

from layers.engine.access import PATROL_AREA, Viewer, county_condition, forbidden, require_role
from layers.errors import FeatureNotFound
from layers.registry import Role

PERSON = "inspector"  # the `kind` of a tracked person


@dataclass(frozen=True)
class States:
    """When a tracker counts as offline, and from what speed it is moving."""

    offline_minutes: float = 10.0
    moving_kmh: float = 1.0


# A tracker row `l` with its terminal `t`, vehicle `v` (by the number, else the registered link)
# and person `u`.
TRACKERS = """latest_positions AS l
    LEFT JOIN terminals AS t ON t.id = l.terminal_id
    LEFT JOIN LATERAL (SELECT * FROM vehicles AS v
                       WHERE v.terminal_phone = t.phone OR v.id = t.vehicle_id
                       ORDER BY v.terminal_phone = t.phone DESC LIMIT 1) AS v ON TRUE
    LEFT JOIN users AS u ON u.username = l.username"""


def _scope(viewer: Viewer, params: dict[str, Any]) -> str:
    """The condition on `l` keeping the trackers the viewer may read."""
    if viewer.role is Role.HANDLER:
        raise forbidden(
            "Handling units do not read vehicle positions.",
            "处置单位无权查看车辆位置。",
        )
    county_sql, county_params = county_condition(viewer, "l.adcode")
    params.update(county_params)
    if viewer.role is not Role.INSPECTOR:
        return county_sql
    params.update(patrol_buffer_m=viewer.patrol_buffer_m, patrol_user=viewer.username)
    return f"(l.username = :patrol_user OR ({county_sql} AND ST_Intersects(l.geom, {PATROL_AREA})))"


def _readable(viewer: Viewer, params: dict[str, Any], ids: Sequence[int] | None) -> list[str]:
    """The conditions on `l` keeping the trackers the viewer may read (of `ids` when given)."""
    where = [_scope(viewer, params), "l.time IS NOT NULL"]
    if ids is not None:
        where.append("l.id = ANY(:ids)")
        params["ids"] = list(ids)
    return where


def readable(conn: Connection, viewer: Viewer, ids: Sequence[int] | None = None) -> set[int]:
    """The ids of the trackers (of `ids`, or all) whose latest position the viewer may read."""
    params: dict[str, Any] = {}
    where = _readable(viewer, params, ids)
    sql = f"SELECT l.id FROM latest_positions AS l WHERE {' AND '.join(where)}"
    return set(conn.execute(text(sql), params).scalars())


def latest(
    conn: Connection,
    viewer: Viewer,
    states: States,
    plate: str | None = None,
    kind: str | None = None,
    ids: Sequence[int] | None = None,
) -> bytes:
    """The latest position of every tracker the viewer may read (of `ids` when given), as a
    GeoJSON collection."""
    params: dict[str, Any] = {
        "offline": states.offline_minutes,
        "moving": states.moving_kmh,
    }
    where = _readable(viewer, params, ids)
    if plate is not None:
        where.append("COALESCE(v.plate, t.plate) ILIKE :plate")
        params["plate"] = "%" + plate.replace("\\", "\\\\").replace("%", "\\%") + "%"
    if kind == PERSON:
        where.append("l.username IS NOT NULL")
    elif kind is not None:
        where.append("v.kind = :kind")
        params["kind"] = kind
    sql = f"""
    SELECT CAST(json_build_object('type', 'FeatureCollection', 'features',
        COALESCE(json_agg(json_build_object(
            'type', 'Feature', 'id', l.id,
            'geometry', CAST(ST_AsGeoJSON(l.geom, 7) AS json),
            'properties', json_build_object(
                'subject', CASE WHEN l.username IS NULL THEN 'vehicle' ELSE 'person' END,
                'vehicle_id', v.id, 'plate', COALESCE(v.plate, t.plate),
                'kind', CASE WHEN l.username IS NULL THEN v.kind ELSE CAST(:person AS text) END,
                'company', v.company, 'terminal', t.phone,
                'username', l.username, 'name', u.display_name,
                'registered', l.username IS NOT NULL OR v.id IS NOT NULL,
                'state', CASE
                    WHEN l.time < now() - make_interval(secs => CAST(:offline AS float8) * 60) THEN 'offline'
                    WHEN l.speed >= :moving THEN 'moving' ELSE 'stopped' END,
                'time', l.time, 'speed', l.speed, 'heading', l.heading,
                'alarm', l.alarm, 'status', l.status, 'adcode', l.adcode))
            ORDER BY l.id), '[]'::json)) AS text)
    FROM {TRACKERS}
    WHERE {" AND ".join(where)}
    """
    params["person"] = PERSON
    body: str = conn.execute(text(sql), params).scalar_one()
    return body.encode()


def not_found(tracker: int) -> FeatureNotFound:
    """What a tracker the viewer may not read looks like: absent."""
    return FeatureNotFound(
        f"There is no vehicle or person {tracker}.", f"没有编号为 {tracker} 的车辆或人员。"
    )


def track(
    conn: Connection,
    viewer: Viewer,
    tracker: int,
    start: datetime,
    end: datetime,
    points: bool = False,
) -> bytes:
    """Every stored position of a tracker between `start` and `end`: one LineString feature with
    a `times` property (no geometry under two positions), or one point feature each."""
    params: dict[str, Any] = {"tracker": tracker, "start": start, "end": end}
    if viewer.role is Role.INSPECTOR:
        visible = "l.username = :viewer_name"  # an inspector reads their own track only
        params["viewer_name"] = viewer.username
    else:
        require_role(viewer, Role.LEADER, Role.PLANNER, Role.DISPATCHER)
        visible = _scope(viewer, params)
    head = conn.execute(
        text(f"""SELECT l.id, COALESCE(v.plate, t.plate) AS plate, l.username
                 FROM {TRACKERS} WHERE l.id = :tracker AND {visible}"""),
        params,
    ).first()
    if head is None:
        raise not_found(tracker)
    county_sql, county_params = county_condition(viewer, "p.adcode")
    params.update(county_params, plate=head.plate, username=head.username)
    rows = f"""positions AS p WHERE p.tracker_id = :tracker AND p.time >= :start
               AND p.time <= :end AND {county_sql}"""
    order = "p.time, p.received_at"
    if points:
        sql = f"""
        SELECT CAST(json_build_object('type', 'FeatureCollection', 'features',
            COALESCE(json_agg(json_build_object('type', 'Feature',
                'geometry', CAST(ST_AsGeoJSON(p.geom, 7) AS json),
                'properties', json_build_object('time', p.time, 'speed', p.speed,
                    'heading', p.heading, 'alarm', p.alarm, 'status', p.status))
            ORDER BY {order}), '[]'::json)) AS text)
        FROM {rows}"""
    else:
        sql = f"""
        SELECT CAST(json_build_object('type', 'Feature', 'id', :tracker,
            'geometry', CASE WHEN count(*) >= 2
                THEN CAST(ST_AsGeoJSON(ST_MakeLine(p.geom ORDER BY {order}), 7) AS json) END,
            'properties', json_build_object('plate', CAST(:plate AS text),
                'username', CAST(:username AS text), 'count', count(*),
                'times', COALESCE(json_agg(p.time ORDER BY {order}), '[]'::json))) AS text)
        FROM {rows}"""
    body: str = conn.execute(text(sql), params).scalar_one()
    return body.encode()


ALARM_LABELS = {
    "dwell_outside_sites": "疑似偷倒（场外停留）",
    "no_go_entry": "驶入禁行区",
    "off_route": "偏离核准路线",
    "out_of_hours": "非准运时段行驶",
    "unregistered_vehicle": "未登记车辆",
    "cross_county": "跨区域行驶",
    "offline": "离线",
}


@dataclass(frozen=True)
class AlarmQuery:
    """Which alarms to read: of one tracker, of one kind, overlapping a period; at most `limit`."""

    tracker: int | None = None
    kind: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    limit: int = 10_000
    ids: tuple[int, ...] | None = None  # only these alarms (the live map's changed ones)


def _alarm_scope(viewer: Viewer, params: dict[str, Any]) -> str:
    """The condition on alarm `a` keeping those the viewer may read: of its counties, and for an
    inspector inside the patrol area."""
    if viewer.role is Role.HANDLER:
        raise forbidden("Handling units do not read vehicle alarms.", "处置单位无权查看车辆报警。")
    county_sql, county_params = county_condition(viewer, "a.adcode")
    params.update(county_params)
    if viewer.role is not Role.INSPECTOR:
        return county_sql
    params.update(patrol_buffer_m=viewer.patrol_buffer_m, patrol_user=viewer.username)
    return f"({county_sql} AND ST_Intersects(a.geom, {PATROL_AREA}))"


def readable_alarms(conn: Connection, viewer: Viewer, ids: Sequence[int]) -> set[int]:
    """The ids of the alarms of `ids` the viewer may read."""
    params: dict[str, Any] = {"ids": list(ids)}
    where = _alarm_scope(viewer, params)
    sql = f"SELECT a.id FROM alarms AS a WHERE a.id = ANY(:ids) AND {where}"
    return set(conn.execute(text(sql), params).scalars())


def alarms(conn: Connection, viewer: Viewer, query: AlarmQuery) -> bytes:
    """The alarms the viewer may read, newest first, as GeoJSON points where each started."""
    params: dict[str, Any] = {"limit": query.limit, "labels": json.dumps(ALARM_LABELS)}
    where = [_alarm_scope(viewer, params)]
    if query.tracker is not None:
        where.append("a.tracker_id = :tracker")
        params["tracker"] = query.tracker
    if query.ids is not None:
        where.append("a.id = ANY(:ids)")
        params["ids"] = list(query.ids)
    if query.kind is not None:
        where.append("a.kind = :kind")
        params["kind"] = query.kind
    if query.start is not None:
        where.append("(a.ended IS NULL OR a.ended >= :start)")
        params["start"] = query.start
    if query.end is not None:
        where.append("a.started <= :end")
        params["end"] = query.end
    sql = f"""
    SELECT CAST(json_build_object('type', 'FeatureCollection', 'features',
        COALESCE(json_agg(json_build_object(
            'type', 'Feature', 'id', a.id,
            'geometry', CAST(ST_AsGeoJSON(a.geom, 7) AS json),
            'properties', json_build_object(
                'kind', a.kind, 'label', CAST(:labels AS jsonb) ->> a.kind,
                'tracker', a.tracker_id, 'vehicle_id', a.vehicle_id,
                'plate', COALESCE(v.plate, t.plate, a.details ->> 'plate'),
                'vehicle_kind', v.kind, 'company', v.company, 'terminal', t.phone,
                'adcode', a.adcode, 'time', a.started, 'ended', a.ended,
                'open', a.ended IS NULL,
                'duration_s', round(CAST(extract(epoch FROM
                    GREATEST(COALESCE(a.ended, now()), a.started) - a.started) AS numeric)),
                'case_id', a.case_id, 'details', a.details))
            ORDER BY a.started DESC, a.id DESC), '[]'::json)) AS text)
    FROM (SELECT a.* FROM alarms AS a WHERE {" AND ".join(where)}
          ORDER BY a.started DESC, a.id DESC LIMIT :limit) AS a
    LEFT JOIN terminals AS t ON t.id = a.terminal_id
    LEFT JOIN vehicles AS v ON v.id = a.vehicle_id
    """
    body: str = conn.execute(text(sql), params).scalar_one()
    return body.encode()
