"""Tracking alarms, evaluated in SQL for every batch of positions in the transaction that stores
it: each terminal whose latest position moved is tested once, an alarm opens when its condition
starts (one open alarm per terminal and kind) and closes when it ends. A muck truck's stop
outside every site and disposal yard also raises a case for the command centre. `offline` is
the exception: silence cannot arrive in a batch, so the gateway's periodic task opens it and
the terminal's next report closes it."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

from gis.validate import Limits
from layers.cases import casework
from layers.engine import editing
from layers.engine.access import Viewer
from layers.errors import CitygridError
from layers.registry import Role
from layers.tracking.jt808.messages import CHINA
from layers.tracking.store import Fix

log = logging.getLogger("citygrid.tracking")

DWELL = "dwell_outside_sites"
OFFLINE = "offline"
CASE_CATEGORY = "E0303"  # 渣土运输撒漏: the catalogue's event for muck lost or dumped on the way
SYSTEM_ACTOR = "tracking"  # who the audit log names for cases raised by alarms
ACC_ON = 1  # JT/T 808 status bit 0: the engine (ACC) is on


@dataclass(frozen=True)
class Rules:
    """When a stop, a silence or a speed counts."""

    dwell_minutes: float = 10.0
    dwell_night_minutes: float = 5.0
    night_hours: str = "22:00-06:00"
    moving_kmh: float = 1.0
    offline_minutes: float = 10.0


# A geofence `g` that is in force at the position's time.
_ACTIVE = "citygrid_in_windows(g.time_windows, s.time)"
_SITES = f"""EXISTS (SELECT 1 FROM geofences AS g WHERE g.kind IN ('site', 'yard')
                 AND ST_Intersects(g.geom, s.geom) AND {_ACTIVE})"""
_CORRIDORS = """geofences AS g WHERE g.kind = 'corridor'
                 AND (g.vehicle_id = s.vehicle_id
                      OR (g.vehicle_id IS NULL AND g.company = s.company))"""

# A terminal's vehicle: the one naming its number, else the one it registered as (two index
# lookups, where an OR of both would scan the fleet for every terminal).
_VEHICLE = """COALESCE((SELECT n.id FROM vehicles AS n WHERE n.terminal_phone = t.phone
                     ORDER BY n.id LIMIT 1), t.vehicle_id)"""

# The terminals of the batch at their latest position, the stop state moved on, each alarm
# kind's condition, then the alarms opened and closed. Positions older than a terminal's latest
# (a late batch) do not move it and change no alarm.
EVALUATE = text(f"""
WITH input AS (
    SELECT * FROM unnest(CAST(:tracker AS bigint[]), CAST(:time AS timestamptz[]),
                         CAST(:speed AS float8[])) AS i (tracker_id, time, speed)
), batch AS (
    SELECT tracker_id, max(time) AS newest, max(time) FILTER (WHERE speed >= :moving) AS moved
    FROM input GROUP BY tracker_id
), stops AS (  -- the first position of the batch after its last moving one
    SELECT i.tracker_id, min(i.time) AS first_stop FROM input AS i
    JOIN batch AS b ON b.tracker_id = i.tracker_id
    WHERE b.moved IS NULL OR i.time > b.moved
    GROUP BY i.tracker_id
), subject AS (
    SELECT l.id AS tracker_id, l.terminal_id, l.time, l.geom, l.speed, l.adcode,
        v.id AS vehicle_id, v.kind AS vehicle_kind, v.company, v.time_windows,
        v.adcode AS vehicle_adcode, v.plate,
        CASE WHEN l.speed >= :moving THEN NULL
             WHEN b.moved IS NOT NULL THEN sp.first_stop
             ELSE LEAST(COALESCE(st.stopped_since, l.time), sp.first_stop)
        END AS stopped_since
    FROM batch AS b
    LEFT JOIN stops AS sp ON sp.tracker_id = b.tracker_id
    JOIN latest_positions AS l ON l.id = b.tracker_id AND l.time = b.newest
    JOIN terminals AS t ON t.id = l.terminal_id
    LEFT JOIN tracker_states AS st ON st.tracker_id = l.id
    LEFT JOIN vehicles AS v ON v.id = {_VEHICLE}
), kept AS (
    INSERT INTO tracker_states AS k (tracker_id, stopped_since)
    SELECT tracker_id, stopped_since FROM subject
    ON CONFLICT (tracker_id) DO UPDATE SET stopped_since = EXCLUDED.stopped_since
    WHERE k.stopped_since IS DISTINCT FROM EXCLUDED.stopped_since
    RETURNING 1
), tested AS (
    SELECT s.*, c.kind, c.active, c.started, c.details
    FROM subject AS s
    CROSS JOIN LATERAL (SELECT
        CASE WHEN citygrid_in_windows(CAST(:night AS text), s.time)
             THEN CAST(:night_minutes AS float8) ELSE CAST(:day_minutes AS float8)
        END AS dwell_limit,
        (SELECT g.name FROM geofences AS g WHERE g.kind = 'no_go'
         AND ST_Intersects(g.geom, s.geom) AND {_ACTIVE} ORDER BY g.id LIMIT 1) AS no_go,
        s.vehicle_id IS NOT NULL AND EXISTS (SELECT 1 FROM {_CORRIDORS} AND {_ACTIVE}) AS routed
    ) AS f
    CROSS JOIN LATERAL (VALUES
        ('unregistered_vehicle', s.vehicle_id IS NULL, s.time,
         jsonb_build_object('terminal', (SELECT phone FROM terminals WHERE id = s.terminal_id))),
        ('{DWELL}', s.vehicle_kind = 'muck' AND s.stopped_since IS NOT NULL
             AND s.time - s.stopped_since >= make_interval(secs => f.dwell_limit * 60)
             AND NOT {_SITES},
         s.stopped_since, jsonb_build_object('limit_minutes', f.dwell_limit)),
        ('no_go_entry', s.vehicle_id IS NOT NULL AND s.vehicle_kind <> 'enforcement'
             AND f.no_go IS NOT NULL, s.time, jsonb_build_object('geofence', f.no_go)),
        ('off_route', f.routed AND NOT EXISTS (SELECT 1 FROM {_CORRIDORS}
                                                AND ST_Intersects(g.geom, s.geom) AND {_ACTIVE})
             AND NOT {_SITES}, s.time, jsonb_build_object('speed', s.speed)),
        ('out_of_hours', s.time_windows IS NOT NULL AND s.speed >= :moving
             AND NOT citygrid_in_windows(s.time_windows, s.time), s.time,
         jsonb_build_object('time_windows', s.time_windows, 'speed', s.speed)),
        ('cross_county', s.vehicle_kind = 'muck' AND NOT EXISTS (
             SELECT 1 FROM counties AS c WHERE c.adcode = s.vehicle_adcode
             AND ST_Intersects(c.boundary, s.geom)), s.time,
         jsonb_build_object('county', s.vehicle_adcode, 'now_in', s.adcode)),
        ('{OFFLINE}', FALSE, s.time, '{{}}'::jsonb)
    ) AS c (kind, active, started, details)
), opened AS (
    INSERT INTO alarms (kind, tracker_id, vehicle_id, terminal_id, adcode, started, geom, details)
    SELECT kind, tracker_id, vehicle_id, terminal_id, COALESCE(adcode, vehicle_adcode), started,
        geom, details || jsonb_build_object('plate', plate)
    FROM tested AS t WHERE active AND NOT EXISTS (
        SELECT 1 FROM alarms AS a
        WHERE a.tracker_id = t.tracker_id AND a.kind = t.kind AND a.ended IS NULL)
    ON CONFLICT (tracker_id, kind) WHERE ended IS NULL DO NOTHING
    RETURNING id, kind
), closed AS (
    UPDATE alarms AS a SET ended = GREATEST(t.time, a.started),
        track = CASE WHEN a.kind = '{DWELL}' THEN (
            SELECT ST_MakeLine(p.geom ORDER BY p.time) FROM positions AS p
            WHERE p.tracker_id = a.tracker_id AND p.time >= a.started AND p.time <= t.time)
            ELSE a.track END
    FROM tested AS t
    WHERE a.tracker_id = t.tracker_id AND a.kind = t.kind AND a.ended IS NULL AND NOT t.active
    RETURNING 1
)
SELECT kind, id FROM opened
""")


def evaluate(
    conn: Connection,
    trackers: Sequence[int],
    times: Sequence[datetime],
    speeds: Sequence[float],
    rules: Rules,
) -> Counter[str]:
    """Open and close the alarms of the terminals just reported (positions stored already, in
    the caller's transaction); cases for the dwells opened. How many opened, by kind."""
    if not trackers:
        return Counter()
    rows = conn.execute(
        EVALUATE,
        {
            "tracker": list(trackers),
            "time": list(times),
            "speed": list(speeds),
            "moving": rules.moving_kmh,
            "night": rules.night_hours,
            "night_minutes": rules.dwell_night_minutes,
            "day_minutes": rules.dwell_minutes,
        },
    ).all()
    for row in rows:
        if row.kind == DWELL:
            try:
                with conn.begin_nested():
                    raise_case(conn, row.id)
            except CitygridError as refused:  # the positions are stored, the alarm kept anyway
                log.warning("no case for dwell alarm %d: %s", row.id, refused.message_en)
    return Counter(row.kind for row in rows)


def evaluate_fixes(conn: Connection, fixes: Sequence[Fix], rules: Rules) -> Counter[str]:
    """`evaluate` for the fixes just stored."""
    return evaluate(
        conn,
        [f.tracker_id for f in fixes],
        [f.time for f in fixes],
        [f.speed for f in fixes],
        rules,
    )


OPEN_OFFLINE = text(f"""
WITH silent AS (
    SELECT l.id AS tracker_id, l.terminal_id, l.time, l.geom, l.adcode, v.id AS vehicle_id,
        v.adcode AS vehicle_adcode, v.plate
    FROM latest_positions AS l
    JOIN terminals AS t ON t.id = l.terminal_id
    LEFT JOIN vehicles AS v ON v.id = {_VEHICLE}
    WHERE l.time < :now - make_interval(secs => CAST(:minutes AS float8) * 60)
      AND (l.status & {ACC_ON}) <> 0
)
INSERT INTO alarms (kind, tracker_id, vehicle_id, terminal_id, adcode, started, geom, details)
SELECT '{OFFLINE}', tracker_id, vehicle_id, terminal_id, COALESCE(adcode, vehicle_adcode), time,
    geom, jsonb_build_object('plate', plate, 'silent_minutes', CAST(:minutes AS float8))
FROM silent
ON CONFLICT (tracker_id, kind) WHERE ended IS NULL DO NOTHING
RETURNING id
""")


def open_offline(conn: Connection, rules: Rules, now: datetime) -> int:
    """Open an `offline` alarm for every terminal silent for the offline minutes whose last
    report had the engine on (started at that report); how many were opened."""
    rows = conn.execute(OPEN_OFFLINE, {"now": now, "minutes": rules.offline_minutes}).all()
    return len(rows)


def raise_case(conn: Connection, alarm_id: int) -> int:
    """Report a case at a dwell alarm's stop as the command centre's desk would (source
    `vehicle`: verified on site first, routed as every event case), the stop's positions so far
    kept as the alarm's track and the vehicle named; the case's id."""
    alarm = conn.execute(
        text("""
        UPDATE alarms AS a SET track = (
            SELECT ST_MakeLine(p.geom ORDER BY p.time) FROM positions AS p
            WHERE p.tracker_id = a.tracker_id AND p.time >= a.started)
        WHERE a.id = :id
        RETURNING a.id, a.adcode, a.started, CAST(ST_AsGeoJSON(a.geom) AS json) AS geometry,
            a.details ->> 'plate' AS plate,
            (SELECT company FROM vehicles WHERE id = a.vehicle_id) AS company
        """),
        {"id": alarm_id},
    ).one()
    started = alarm.started.astimezone(CHINA).strftime("%Y-%m-%d %H:%M")
    feature: dict[str, Any] = {
        "type": "Feature",
        "geometry": alarm.geometry,
        "properties": {
            "category_code": CASE_CATEGORY,
            "source": "vehicle",
            "description": (
                f"渣土车 {alarm.plate or '未知车牌'}（{alarm.company or '单位不详'}）自 {started} 起"
                f"在工地、消纳场以外停车，疑似偷倒。证据：车辆报警 {alarm.id} 的停车轨迹。"
            ),
        },
    }
    counties = (alarm.adcode,) if alarm.adcode else None
    ctx = editing.EditContext(Viewer(SYSTEM_ACTOR, Role.DISPATCHER, counties=counties), Limits())
    reported = casework.report(conn, feature, None, ctx)
    conn.execute(
        text("UPDATE alarms SET case_id = :case WHERE id = :id"),
        {"case": reported.id, "id": alarm_id},
    )
    return reported.id
