"""Handling units (处置单位): the current grids' responsible units and those the admin declares.

A case is dispatched only to a unit on this list, so a mistyped or invented name never becomes a
unit that no account handles.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, text

from layers.errors import AccountError, InvalidFeature, StateConflict

MAX_NAME = 200

KNOWN = """
    SELECT g.responsible_unit AS name, 'grid' AS source FROM grids AS g
    WHERE g.valid_to IS NULL AND g.responsible_unit IS NOT NULL
    UNION
    SELECT u.name, 'declared' FROM units AS u
"""


@dataclass(frozen=True)
class Unit:
    """A unit cases may be dispatched to, and where it comes from (`grid` or `declared`)."""

    name: str
    sources: tuple[str, ...]


def is_known(conn: Connection, name: str) -> bool:
    """Whether cases may be dispatched to `name`."""
    return bool(
        conn.execute(
            text(f"SELECT EXISTS (SELECT 1 FROM ({KNOWN}) AS k WHERE k.name = :name)"),
            {"name": name},
        ).scalar_one()
    )


def check_known(conn: Connection, name: str) -> None:
    """Refuse a unit that is neither a grid's responsible unit nor declared by the admin."""
    if not is_known(conn, name):
        raise InvalidFeature(
            f"{name!r} is not a known handling unit: use a grid's responsible unit or one the "
            "admin declared (citygrid units add, POST /units).",
            f"“{name}”不是已登记的处置单位：请选用网格责任单位，或由管理员先登记"
            "（citygrid units add 或 POST /units）。",
            code="unknown_unit",
        )


def list_units(conn: Connection) -> list[Unit]:
    """Every known unit, by name, with where it comes from."""
    rows = conn.execute(
        text(f"""
        SELECT k.name, array_agg(DISTINCT k.source ORDER BY k.source)
        FROM ({KNOWN}) AS k GROUP BY k.name ORDER BY k.name
    """)
    ).all()
    return [Unit(name, tuple(sources)) for name, sources in rows]


def add(conn: Connection, name: str, actor: str) -> Unit:
    """Declare a unit (audited); refused when the name is empty, too long or already declared."""
    clean = name.strip()
    if not clean or len(clean) > MAX_NAME or not clean.isprintable():
        raise AccountError(
            f"A unit's name has 1 to {MAX_NAME} printable characters.",
            f"处置单位名称须为 1 至 {MAX_NAME} 个可打印字符。",
            code="bad_unit_name",
        )
    added = conn.execute(
        text("""
        INSERT INTO units (name, added_by) VALUES (:name, :actor)
        ON CONFLICT (name) DO NOTHING RETURNING name
    """),
        {"name": clean, "actor": actor},
    ).scalar()
    if added is None:
        raise StateConflict(
            f"The unit {clean!r} is already declared.",
            f"处置单位“{clean}”已登记。",
            code="unit_exists",
        )
    conn.execute(
        text("""
        INSERT INTO audit_log (actor, action, layer, after)
        VALUES (:actor, 'create', 'units', jsonb_build_object('name', CAST(:name AS text)))
    """),
        {"actor": actor, "name": clean},
    )
    return next(u for u in list_units(conn) if u.name == clean)
