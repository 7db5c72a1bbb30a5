"""Handling units (处置单位) of each county: its current grids' responsible units and those the
admin declares there.

A case is dispatched only to a unit of its own county on this list, so a mistyped or invented name
never becomes a unit that no account handles, and no county's cases reach another county's unit.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, text

from layers.errors import AccountError, InvalidFeature, StateConflict
from layers.places import counties as county_rows
from layers.registry import GRIDS
from layers.store.versions import is_current

MAX_NAME = 200

KNOWN = f"""
    SELECT g.adcode, g.responsible_unit AS name, 'grid' AS source FROM grids AS g
    WHERE {is_current(GRIDS, "g")} AND g.responsible_unit IS NOT NULL
    UNION
    SELECT u.adcode, u.name, 'declared' FROM units AS u
"""


@dataclass(frozen=True)
class Unit:
    """A unit of a county cases may be dispatched to, and where it comes from (`grid` or
    `declared`)."""

    adcode: str
    county: str
    name: str
    sources: tuple[str, ...]


def counties_of(conn: Connection, name: str) -> list[str]:
    """The counties in which cases may be dispatched to `name`."""
    return list(
        conn.execute(
            text(f"SELECT DISTINCT k.adcode FROM ({KNOWN}) AS k WHERE k.name = :name ORDER BY 1"),
            {"name": name},
        ).scalars()
    )


def is_known(conn: Connection, name: str, adcode: str) -> bool:
    """Whether cases of the county `adcode` may be dispatched to `name`."""
    return adcode in counties_of(conn, name)


def check_known(conn: Connection, name: str, adcode: str) -> None:
    """Refuse a unit that is neither a grid's responsible unit nor declared in the case's county."""
    found = counties_of(conn, name)
    if adcode in found:
        return
    if found:
        raise StateConflict(
            f"{name!r} is a handling unit of another county, not of {adcode}: dispatch a case "
            "only to a unit of its own county.",
            f"“{name}”不是本案件所在县级行政区（{adcode}）的处置单位：案件只能派遣给本县级行政区的"
            "处置单位。",
            code="unit_not_in_county",
        )
    raise InvalidFeature(
        f"{name!r} is not a known handling unit of {adcode}: use a grid's responsible unit or one "
        "the admin declared (citygrid units add, POST /units).",
        f"“{name}”不是县级行政区 {adcode} 已登记的处置单位：请选用网格责任单位，或由管理员先登记"
        "（citygrid units add 或 POST /units）。",
        code="unknown_unit",
    )


def list_units(conn: Connection, counties: tuple[str, ...] | None = None) -> list[Unit]:
    """The known units of `counties` (None: of every county), by county and name."""
    rows = conn.execute(
        text(f"""
        SELECT k.adcode, c.name AS county, k.name, array_agg(DISTINCT k.source ORDER BY k.source)
        FROM ({KNOWN}) AS k JOIN counties AS c ON c.adcode = k.adcode
        WHERE CAST(:counties AS text[]) IS NULL OR k.adcode = ANY(:counties)
        GROUP BY k.adcode, c.name, k.name ORDER BY k.adcode, k.name
    """),
        {"counties": list(counties) if counties is not None else None},
    ).all()
    return [Unit(adcode, county, name, tuple(sources)) for adcode, county, name, sources in rows]


def add(conn: Connection, name: str, adcode: str, actor: str) -> Unit:
    """Declare a unit of a stored county (audited); refused when the name is empty, too long or
    already declared there."""
    clean = name.strip()
    if not clean or len(clean) > MAX_NAME or not clean.isprintable():
        raise AccountError(
            f"A unit's name has 1 to {MAX_NAME} printable characters.",
            f"处置单位名称须为 1 至 {MAX_NAME} 个可打印字符。",
            code="bad_unit_name",
        )
    county_rows.get(conn, adcode)
    added = conn.execute(
        text("""
        INSERT INTO units (adcode, name, added_by) VALUES (:adcode, :name, :actor)
        ON CONFLICT (adcode, name) DO NOTHING RETURNING name
    """),
        {"adcode": adcode, "name": clean, "actor": actor},
    ).scalar()
    if added is None:
        raise StateConflict(
            f"The unit {clean!r} is already declared in {adcode}.",
            f"处置单位“{clean}”已在县级行政区 {adcode} 登记。",
            code="unit_exists",
        )
    conn.execute(
        text("""
        INSERT INTO audit_log (actor, action, layer, adcode, after)
        VALUES (:actor, 'create', 'units', CAST(:adcode AS text),
                jsonb_build_object('name', CAST(:name AS text), 'adcode', CAST(:adcode AS text)))
    """),
        {"actor": actor, "name": clean, "adcode": adcode},
    )
    return next(u for u in list_units(conn, (adcode,)) if u.name == clean)
