"""Positions posted over HTTP: an inspector's phone reports its own, a forwarding platform (an
admin's or dispatcher's account) reports vehicles' by terminal number."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, text

from layers.engine.access import Viewer, forbidden, may_write_county
from layers.errors import BadQuery
from layers.registry import Role
from layers.tracking.store import Fix, person_tracker, write_positions

PLATFORM_ROLES = (Role.ADMIN, Role.DISPATCHER)


@dataclass(frozen=True)
class Posted:
    """One posted position, checked for range and time already."""

    terminal: str | None
    time: datetime
    lon: float
    lat: float
    speed: float
    heading: int
    altitude: int


def _terminal_tracker(conn: Connection, viewer: Viewer, phone: str) -> int:
    """The tracker of a terminal a platform reports for (a terminal unknown so far is stored,
    flagged unregistered unless a vehicle names its number)."""
    row = conn.execute(
        text("""
        WITH known AS (
            INSERT INTO terminals (phone, auth_code, vehicle_id, protocol)
            VALUES (:phone, :code,
                    (SELECT id FROM vehicles WHERE terminal_phone = :phone ORDER BY id LIMIT 1),
                    'platform')
            ON CONFLICT (phone) DO UPDATE SET phone = EXCLUDED.phone
            RETURNING id, vehicle_id
        )
        SELECT k.id, k.vehicle_id, v.adcode FROM known AS k
        LEFT JOIN vehicles AS v ON v.id = k.vehicle_id
    """),
        {"phone": phone, "code": secrets.token_hex(8)},
    ).one()
    if row.vehicle_id is not None and not may_write_county(viewer, row.adcode):
        raise forbidden(
            f"The vehicle of terminal {phone} belongs to a county this account does not hold.",
            f"终端 {phone} 的车辆不属于本账号所辖县（区）。",
            code="outside_counties",
        )
    tracker: int = conn.execute(
        text("""
        INSERT INTO latest_positions AS l (terminal_id, owner_adcode) VALUES (:terminal, :owner)
        ON CONFLICT (terminal_id) DO UPDATE SET owner_adcode = EXCLUDED.owner_adcode
        RETURNING id
    """),
        {"terminal": row.id, "owner": row.adcode},
    ).scalar_one()
    return tracker


def fixes(conn: Connection, viewer: Viewer, posted: Sequence[Posted]) -> list[Fix]:
    """The posted positions as fixes of their trackers, refused as a whole when the account may
    not report one of them."""
    if viewer.role is Role.INSPECTOR:
        if any(p.terminal is not None for p in posted):
            raise forbidden(
                "An inspector reports their own position, not a terminal's.",
                "监督员只能上报本人位置，不能代终端上报。",
            )
        tracker = person_tracker(conn, viewer.username, viewer.counties)
        return [_fix(tracker, p) for p in posted]
    if viewer.role not in PLATFORM_ROLES:
        raise forbidden(
            "Only inspectors' phones and forwarding platforms (admins, dispatchers) report "
            "positions.",
            "只有监督员手机和转发平台（管理员、指挥中心）可以上报位置。",
        )
    missing = [n for n, p in enumerate(posted, start=1) if p.terminal is None]
    if missing:
        raise BadQuery(
            f"Positions {missing[:10]} name no terminal number.",
            f"第 {missing[:10]} 个位置未填写终端手机号（terminal）。",
            code="terminal_missing",
        )
    trackers: dict[str, int] = {}
    for phone in sorted({p.terminal for p in posted if p.terminal is not None}):
        trackers[phone] = _terminal_tracker(conn, viewer, phone)
    return [_fix(trackers[p.terminal], p) for p in posted if p.terminal is not None]


def _fix(tracker: int, p: Posted) -> Fix:
    return Fix(tracker, p.time, p.lon, p.lat, p.speed, p.heading, p.altitude)


def store(conn: Connection, found: Sequence[Fix]) -> int:
    """Store the fixes in the request's transaction; how many were stored."""
    return write_positions(conn, found)
