"""Writing tracking data: terminals registering and authenticating, positions in day partitions,
each tracked terminal's or person's latest position kept in the same transaction."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Connection, text

from layers.tracking.jt808.messages import CHINA, Registration


@dataclass(frozen=True)
class Fix:
    """One position of a tracker (a terminal's or a person's row of `latest_positions`)."""

    tracker_id: int
    time: datetime  # aware
    lon: float
    lat: float
    speed: float = 0.0  # km/h
    heading: int = 0
    altitude: int = 0
    alarm: int = 0
    status: int = 0


def china_day(moment: datetime) -> date:
    """The China-time day of a moment: the partition holding it."""
    return moment.astimezone(CHINA).date()


# A terminal's vehicle: the current vehicle row naming its number, else one with the plate it
# registered with (no vehicle: an unregistered terminal, flagged when read).
_VEHICLE_OF = """(SELECT v.id FROM vehicles AS v
    WHERE v.terminal_phone = :phone OR (v.terminal_phone IS NULL AND v.plate = :plate)
    ORDER BY v.terminal_phone IS NULL, v.id LIMIT 1)"""


def register_terminal(conn: Connection, phone: str, reg: Registration, version: int | None) -> str:
    """Store (or renew) a terminal's registration and answer its new authentication code."""
    code = secrets.token_hex(8)
    conn.execute(
        text(f"""
        INSERT INTO terminals AS t (phone, auth_code, vehicle_id, plate, maker, model,
                                    terminal_ident, protocol)
        VALUES (:phone, :code, {_VEHICLE_OF}, :plate, :maker, :model, :ident, :protocol)
        ON CONFLICT (phone) DO UPDATE SET auth_code = EXCLUDED.auth_code,
            vehicle_id = EXCLUDED.vehicle_id, plate = EXCLUDED.plate, maker = EXCLUDED.maker,
            model = EXCLUDED.model, terminal_ident = EXCLUDED.terminal_ident,
            protocol = EXCLUDED.protocol, registered_at = now()
    """),
        {
            "phone": phone,
            "code": code,
            "plate": reg.plate or None,
            "maker": reg.maker,
            "model": reg.model,
            "ident": reg.terminal_id,
            "protocol": "2013" if version is None else "2019",
        },
    )
    return code


def authenticate(conn: Connection, phone: str, code: str) -> int | None:
    """The tracker of a terminal whose code matches the one it was issued, else None."""
    terminal = conn.execute(
        text(f"""
        UPDATE terminals SET authenticated_at = now(),
            vehicle_id = COALESCE({_VEHICLE_OF}, vehicle_id)
        WHERE phone = :phone AND auth_code = :code
        RETURNING id, vehicle_id
    """),
        {"phone": phone, "code": code, "plate": None},
    ).first()
    if terminal is None:
        return None
    return conn.execute(
        text("""
        INSERT INTO latest_positions AS l (terminal_id, owner_adcode)
        VALUES (:terminal, (SELECT adcode FROM vehicles WHERE id = :vehicle))
        ON CONFLICT (terminal_id) DO UPDATE SET owner_adcode = EXCLUDED.owner_adcode
        RETURNING id
    """),
        {"terminal": terminal.id, "vehicle": terminal.vehicle_id},
    ).scalar_one()


def person_tracker(conn: Connection, username: str, counties: Sequence[str] | None) -> int:
    """The tracker of a person reporting from a phone (made on first use)."""
    owner = counties[0] if counties is not None and len(counties) == 1 else None
    return conn.execute(
        text("""
        INSERT INTO latest_positions AS l (username, owner_adcode) VALUES (:user, :owner)
        ON CONFLICT (username) DO UPDATE SET owner_adcode = EXCLUDED.owner_adcode
        RETURNING id
    """),
        {"user": username, "owner": owner},
    ).scalar_one()


def ensure_partitions(conn: Connection, days: Iterable[date]) -> int:
    """Make the day partitions of `days` that do not exist yet; how many were made."""
    wanted = sorted(set(days))
    if not wanted:
        return 0
    made: int = conn.execute(
        text("SELECT citygrid_position_partitions(CAST(:days AS date[]))"), {"days": wanted}
    ).scalar_one()
    return made


def drop_partitions(conn: Connection, before: date) -> int:
    """Drop the day partitions of days before `before`; how many were dropped."""
    dropped: int = conn.execute(
        text("SELECT citygrid_drop_position_partitions(:before)"), {"before": before}
    ).scalar_one()
    return dropped


def maintain_partitions(
    conn: Connection, retention_days: int, ahead_days: int = 2, now: datetime | None = None
) -> tuple[int, int]:
    """Make today's and the next `ahead_days` partitions; drop those past the retention.
    Answers (made, dropped)."""
    today = china_day(now or datetime.now(UTC))
    made = ensure_partitions(conn, (today + timedelta(days=n) for n in range(ahead_days + 1)))
    return made, drop_partitions(conn, today - timedelta(days=retention_days - 1))


WRITE = text("""
WITH input AS (
    SELECT i.*, ST_SetSRID(ST_MakePoint(i.lon, i.lat), 4490) AS geom
    FROM unnest(CAST(:tracker AS bigint[]), CAST(:time AS timestamptz[]),
                CAST(:lon AS float8[]), CAST(:lat AS float8[]), CAST(:speed AS float8[]),
                CAST(:heading AS smallint[]), CAST(:altitude AS integer[]),
                CAST(:alarm AS bigint[]), CAST(:status AS bigint[]))
         AS i (tracker_id, time, lon, lat, speed, heading, altitude, alarm, status)
), placed AS (
    SELECT i.*, COALESCE(l.owner_adcode, (SELECT c.adcode FROM counties AS c
                                          WHERE ST_Intersects(c.boundary, i.geom) LIMIT 1)) AS adcode
    FROM input AS i JOIN latest_positions AS l ON l.id = i.tracker_id
), stored AS (
    INSERT INTO positions (tracker_id, time, adcode, geom, speed, heading, altitude, alarm, status)
    SELECT tracker_id, time, adcode, geom, speed, heading, altitude, alarm, status FROM placed
    RETURNING 1
), newest AS (
    SELECT DISTINCT ON (tracker_id) * FROM placed ORDER BY tracker_id, time DESC
), moved AS (
    UPDATE latest_positions AS l SET time = n.time, geom = n.geom, adcode = n.adcode,
        speed = n.speed, heading = n.heading, alarm = n.alarm, status = n.status
    FROM newest AS n WHERE l.id = n.tracker_id AND (l.time IS NULL OR n.time >= l.time)
    RETURNING 1
)
SELECT (SELECT count(*) FROM stored)
""")


def write_positions(conn: Connection, fixes: Sequence[Fix]) -> int:
    """Store `fixes` and move each tracker's latest position forward, in the caller's
    transaction (partitions of their days made when missing); how many rows were stored."""
    if not fixes:
        return 0
    ensure_partitions(conn, {china_day(f.time) for f in fixes})
    params = {
        "tracker": [f.tracker_id for f in fixes],
        "time": [f.time for f in fixes],
        "lon": [f.lon for f in fixes],
        "lat": [f.lat for f in fixes],
        "speed": [f.speed for f in fixes],
        "heading": [f.heading for f in fixes],
        "altitude": [f.altitude for f in fixes],
        "alarm": [f.alarm for f in fixes],
        "status": [f.status for f in fixes],
    }
    stored: int = conn.execute(WRITE, params).scalar_one()
    return stored
