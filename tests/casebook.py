"""Cases written straight into the tables, for tests whose figures are computed by hand: the
row, its report in the audit log and its events, at points of the sections of tests/counties.py."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import shapely
from sqlalchemy import Connection, text

from tests.counties import CountyRows

X = (-1125, -375, 375, 1125)  # the middle of sections S0–S3, metres east of the centre

Event = tuple[str, str, str, str, str]  # action, at, actor, from status, to status


def stamp(value: str) -> str:
    """A local time "MM-DD HH:MM" of 2026, or "YYYY-MM-DD HH:MM"."""
    return f"{value if value.count('-') == 2 else '2026-' + value}:00+08:00"


def store_case(
    conn: Connection,
    rows: CountyRows,
    section: int,
    columns: dict[str, Any],
    stamps: dict[str, str],
    reporter: str | None = None,
    events: Iterable[Event] = (),
) -> int:
    """One case of category E0101 in section `section`, with its columns and stamps, the
    reporter's `create` in the audit log and its events; its id."""
    lon, lat = rows.lonlat(X[section], -500)
    values = {"adcode": rows.adcode, **columns} | {n: stamp(at) for n, at in stamps.items()}
    names = list(values)
    case_id: int = conn.execute(
        text(
            f"INSERT INTO cases (geom, category_code, {', '.join(names)}) "
            f"VALUES (ST_GeomFromWKB(:wkb, 4490), 'E0101', "
            f"{', '.join(f':{n}' for n in names)}) RETURNING id"
        ),
        {**values, "wkb": shapely.to_wkb(shapely.Point(lon, lat))},
    ).scalar_one()
    if reporter:
        conn.execute(
            text(
                "INSERT INTO audit_log (at, actor, action, layer, feature_id, adcode) "
                "VALUES (:at, :actor, 'create', 'cases', :id, :adcode)"
            ),
            {"at": values["reported_at"], "actor": reporter, "id": case_id, "adcode": rows.adcode},
        )
    for action, at, actor, source, target in events:
        conn.execute(
            text(
                "INSERT INTO case_events (adcode, case_id, at, action, from_status, to_status, "
                "actor) VALUES (:adcode, :id, :at, :action, :source, :target, :actor)"
            ),
            {"adcode": rows.adcode, "id": case_id, "at": stamp(at), "action": action}
            | {"source": source}
            | {"target": target, "actor": actor},
        )
    return case_id
