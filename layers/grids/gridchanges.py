"""Grid changes, each one transaction: check the result, close the old grids, open the new ones.

Nothing is deleted: a change sets `valid_to` on the grids it replaces and inserts their successors
with `valid_from` on the same day. Open cases follow their location to the new grids. A change is
refused, with the topology report, when its result has a defect the family did not have before.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Connection, text

from gis import gridops
from gis.topology import CODE_LAYOUT, KINDS, CheckOptions, Report
from layers.engine import access
from layers.errors import ConcurrentChange, GridEditRefused, GridRuleBroken
from layers.grids.gridhistory import today
from layers.grids.grids import (
    CURRENT,
    IN_COUNTIES,
    Counties,
    Family,
    StoredGrid,
    check_family,
    load_family,
    not_found,
    report_document,
)
from layers.registry import CASE_FINAL_STATUSES, GRIDS
from layers.store.versions import is_current

OPEN_CASES = f"status NOT IN ({', '.join(repr(s) for s in CASE_FINAL_STATUSES)})"


@dataclass(frozen=True)
class NewGrid:
    """A grid to open: its geometry in metres, and what it inherits (code, name, people)."""

    geom: BaseGeometry
    code: str | None = None
    name: str | None = None
    model: StoredGrid | None = None


@dataclass(frozen=True)
class Change:
    """What a change did."""

    operation: str
    parent_code: str
    effective: date
    closed: list[str]
    created: list[str]
    reassigned_cases: int
    report: dict[str, Any]

    def document(self) -> dict[str, Any]:
        """The change as the API answers it."""
        return {
            "operation": self.operation,
            "parent_code": self.parent_code,
            "effective": self.effective.isoformat(),
            "closed": self.closed,
            "created": self.created,
            "reassigned_cases": self.reassigned_cases,
            "report": self.report,
        }


def refused(exc: gridops.EditRefused) -> GridEditRefused:
    """The domain error for a geometric refusal."""
    return GridEditRefused(
        exc.message_en[0].upper() + exc.message_en[1:] + ".", exc.message_zh + "。", code=exc.code
    )


def _worse(before: Report, after: Report, tolerance_m2: float) -> bool:
    old, new = before.counts(), after.counts()
    return any(
        new[kind] > old[kind] or after.area(kind) > before.area(kind) + tolerance_m2
        for kind in KINDS
    )


def next_codes(conn: Connection, family: Family, n: int) -> list[str]:
    """Fresh codes in the family, never reused from history, in the order asked."""
    shared, own, zeros = CODE_LAYOUT[family.child_level]
    prefix = family.parent_code[:shared]
    used = conn.execute(
        text(
            "SELECT max(CAST(substr(code, :start, :own) AS integer)) FROM grids "
            "WHERE level = :level AND code LIKE :prefix"
        ),
        {"start": shared + 1, "own": own, "level": family.child_level, "prefix": prefix + "%"},
    ).scalar()
    first = (used or 0) + 1
    if first + n - 1 >= 10**own:
        raise GridEditRefused(
            f"{family.parent_code} has no {n} free {own}-digit grid numbers left.",
            f"{family.parent_code} 下已没有 {n} 个可用的 {own} 位网格序号。",
            code="grid_codes_exhausted",
        )
    return [f"{prefix}{seq:0{own}d}{'0' * zeros}" for seq in range(first, first + n)]


def _default_name(family: Family, code: str) -> str:
    shared, own, _ = CODE_LAYOUT[family.child_level]
    number = int(code[shared : shared + own])
    suffix = {"street": "街道", "community": "社区", "section": "网格"}[family.child_level]
    return f"{family.parent_name}第{number}{suffix}"


def _refuse_parents(conn: Connection, closing: list[StoredGrid]) -> None:
    if not closing:
        return
    row = conn.execute(
        text(
            "SELECT parent_code, count(*) FROM grids WHERE parent_code = ANY(:codes) "
            f"AND {CURRENT} GROUP BY parent_code LIMIT 1"
        ),
        {"codes": [g.code for g in closing]},
    ).first()
    if row is not None:
        raise GridEditRefused(
            f"Grid {row[0]} has {row[1]} child grids: change those first, or regenerate them.",
            f"网格 {row[0]} 下有 {row[1]} 个下级网格：请先调整下级网格或重新生成。",
            code="grid_has_children",
        )


def _insert(
    conn: Connection, family: Family, grid: NewGrid, code: str, effective: date
) -> dict[str, Any]:
    model = grid.model
    row = conn.execute(
        text("""
        WITH t AS (
            INSERT INTO grids (adcode, geom, level, code, name, parent_code, responsible_person,
                               responsible_unit, phone, valid_from)
            VALUES (:adcode,
                    ST_Multi(ST_CollectionExtract(ST_MakeValid(
                        ST_Transform(ST_SetSRID(ST_GeomFromWKB(:wkb), :epsg), 4490)), 3)),
                    :level, :code, :name, :parent, :person, :unit, :phone, :effective)
            RETURNING *
        ) SELECT to_jsonb(t) - 'geom' FROM t
    """),
        {
            "adcode": family.adcode,
            "wkb": shapely.to_wkb(grid.geom),
            "epsg": family.epsg,
            "level": family.child_level,
            "code": code,
            "name": grid.name or _default_name(family, code),
            "parent": None if family.parent_level == "county" else family.parent_code,
            "person": model.responsible_person if model else None,
            "unit": model.responsible_unit if model else None,
            "phone": model.phone if model else None,
            "effective": effective,
        },
    ).scalar_one()
    return dict(row)


def _audit(
    conn: Connection, actor: str, action: str, fid: int, adcode: str, before: Any, after: Any
) -> None:
    conn.execute(
        text("""
        INSERT INTO audit_log (actor, action, layer, feature_id, adcode, before, after)
        VALUES (:actor, :action, 'grids', :fid, :adcode, CAST(:before AS jsonb), CAST(:after AS jsonb))
    """),
        {
            "actor": actor,
            "action": action,
            "fid": fid,
            "adcode": adcode,
            "before": None
            if before is None
            else json.dumps(before, ensure_ascii=False, default=str),
            "after": None if after is None else json.dumps(after, ensure_ascii=False, default=str),
        },
    )


def _reassign_cases(conn: Connection, closed: list[str]) -> int:
    result = conn.execute(
        text(f"""
        UPDATE cases AS c SET grid_code = (
            SELECT g.code FROM grids AS g
            WHERE g.level = 'section' AND {is_current(GRIDS, "g")} AND g.adcode = c.adcode
              AND ST_Intersects(g.geom, c.geom)
            ORDER BY g.code LIMIT 1
        ) WHERE c.grid_code = ANY(:codes) AND c.{OPEN_CASES}
    """),
        {"codes": closed},
    )
    return result.rowcount


def _carry_inspectors(conn: Connection, links: list[tuple[str, str]]) -> None:
    for old, new in links:
        if old != new:
            conn.execute(
                text("""
                INSERT INTO grid_inspectors (grid_code, name, phone, username)
                SELECT :new, name, phone, username FROM grid_inspectors WHERE grid_code = :old
                ON CONFLICT DO NOTHING
            """),
                {"old": old, "new": new},
            )


def commit(
    conn: Connection,
    family: Family,
    operation: str,
    closing: list[StoredGrid],
    opening: list[NewGrid],
    actor: str,
    options: CheckOptions,
) -> Change:
    """Check the family as it would be, then close `closing` and open `opening` today."""
    effective = today(conn)
    _lock_closing(conn, closing)
    _refuse_parents(conn, closing)
    for grid in closing:
        if grid.valid_from > effective:
            raise GridEditRefused(
                f"Grid {grid.code} only takes effect on {grid.valid_from}.",
                f"网格 {grid.code} 自 {grid.valid_from} 起才生效。",
                code="grid_not_yet_valid",
            )
    closing_ids = {g.id for g in closing}
    kept = [c for c in family.children if c.id not in closing_ids]
    fresh = iter(next_codes(conn, family, sum(1 for n in opening if n.code is None)))
    codes = [n.code or next(fresh) for n in opening]
    geoms = [c.geom for c in kept] + [n.geom for n in opening]
    before = check_family(
        family, [c.geom for c in family.children], [c.code for c in family.children], options
    )
    after = check_family(family, geoms, [c.code for c in kept] + codes, options)
    if _worse(before, after, options.min_area_m2):
        raise GridRuleBroken(
            "The change would leave the grids with gaps, overlaps or other defects; nothing was changed.",
            "此修改会造成网格空隙、重叠或其他问题，未做任何修改。",
            report=report_document([(after, family.epsg)]),
        )
    for grid in closing:
        before_row = conn.execute(
            text(f"UPDATE grids SET valid_to = :d WHERE id = :id AND {CURRENT} RETURNING id"),
            {"d": effective, "id": grid.id},
        ).first()
        if before_row is None:
            raise not_found(grid.code)
        _audit(
            conn,
            actor,
            "update",
            grid.id,
            grid.adcode,
            {"code": grid.code, "valid_to": None},
            {"code": grid.code, "valid_to": effective, "operation": operation},
        )
    created = []
    for new, code in zip(opening, codes, strict=True):
        row = _insert(conn, family, new, code, effective)
        _audit(
            conn, actor, "create", row["id"], family.adcode, None, row | {"operation": operation}
        )
        created.append(code)
    _carry_inspectors(
        conn, [(n.model.code, c) for n, c in zip(opening, codes, strict=True) if n.model]
    )
    _verify_stored(conn, family, before, options)
    closed = [g.code for g in closing]
    moved = _reassign_cases(conn, closed)
    return Change(
        operation,
        family.parent_code,
        effective,
        closed,
        created,
        moved,
        report_document([(after, family.epsg)]),
    )


def _verify_stored(conn: Connection, family: Family, before: Report, options: CheckOptions) -> None:
    """Check the family again as stored: the round trip through CGCS2000 must not break it."""
    stored = load_family(conn, family.parent_code)
    report = check_family(
        stored, [c.geom for c in stored.children], [c.code for c in stored.children], options
    )
    if _worse(before, report, options.min_area_m2):
        raise GridRuleBroken(
            "Stored in CGCS2000, the change would leave defects; nothing was changed.",
            "修改结果转换为 CGCS2000 存储后会产生问题，未做任何修改。",
            report=report_document([(report, stored.epsg)]),
        )


def changed(codes: list[str]) -> ConcurrentChange:
    """The error for a change that another change of the same grids overtook."""
    joined = ", ".join(codes)
    return ConcurrentChange(
        f"Grid {joined} was changed by someone else meanwhile; nothing was changed: reload and try again.",
        f"网格 {'、'.join(codes)} 刚被他人修改，本次未做任何修改：请刷新后重试。",
        code="grid_changed",
        grids=codes,
    )


def _seen(conn: Connection, codes: list[str], counties: Counties) -> dict[str, tuple[int, str]]:
    """The current row and parent of each code (of `counties`), as the change found them
    before any lock."""
    rows = conn.execute(
        text(
            "SELECT code, id, coalesce(parent_code, adcode || '000000000') FROM grids "
            f"WHERE code = ANY(:codes) AND {CURRENT} AND {IN_COUNTIES}"
        ),
        {"codes": codes, "counties": None if counties is None else list(counties)},
    ).all()
    return {r[0]: (r[1], r[2]) for r in rows}


def _grids_and_family(
    conn: Connection, codes: list[str], counties: Counties
) -> tuple[list[StoredGrid], Family]:
    """The current grids of `codes` and their family, locked; 409 when another change came first."""
    seen = _seen(conn, codes, counties)
    for code in codes:
        if code not in seen:
            raise not_found(code)
    parent = seen[codes[0]][1]
    strangers = [c for c in codes if seen[c][1] != parent]
    if strangers:
        raise GridEditRefused(
            f"Grids {', '.join(strangers)} do not belong to the same parent as {codes[0]}.",
            f"网格 {', '.join(strangers)} 与 {codes[0]} 不属于同一上级网格，不能合并。",
            code="merge_different_parents",
        )
    family = load_family(conn, parent, lock=True, counties=counties)
    by_id = {c.id: c for c in family.children}
    lost = [c for c in codes if seen[c][0] not in by_id]
    if lost:
        raise changed(lost)
    return [by_id[seen[c][0]] for c in codes], family


def _lock_closing(conn: Connection, closing: list[StoredGrid]) -> None:
    """Lock the rows a change closes, in id order, and make sure they are all still current."""
    if not closing:
        return
    locked = set(
        conn.execute(
            text(f"SELECT id FROM grids WHERE id = ANY(:ids) AND {CURRENT} ORDER BY id FOR UPDATE"),
            {"ids": [g.id for g in closing]},
        ).scalars()
    )
    lost = [g.code for g in closing if g.id not in locked]
    if lost:
        raise changed(lost)


def _geometric(step: Callable[[], Any]) -> Any:
    try:
        return step()
    except gridops.EditRefused as exc:
        raise refused(exc) from None


def split(
    conn: Connection,
    code: str,
    line_m: Callable[[int], BaseGeometry],
    actor: str,
    options: CheckOptions,
    counties: Counties = None,
) -> Change:
    """Cut a grid (of `counties`) in two or more along a line; every piece gets a new code."""
    [grid], family = _grids_and_family(conn, [code], counties)
    pieces = _geometric(lambda: gridops.split(grid.geom, line_m(family.epsg)))
    opening = [NewGrid(p, model=grid) for p in pieces]
    return commit(conn, family, "split", [grid], opening, actor, options)


def merge(
    conn: Connection,
    codes: list[str],
    actor: str,
    options: CheckOptions,
    counties: Counties = None,
) -> Change:
    """Join adjacent grids of one parent (of `counties`) into one grid with a new code."""
    if len(set(codes)) < 2:
        raise refused(
            gridops.EditRefused(
                "merge_needs_two", "select at least two grids to merge", "至少选择两个网格才能合并"
            )
        )
    grids, family = _grids_and_family(conn, list(dict.fromkeys(codes)), counties)
    first = grids[0]
    merged = _geometric(lambda: gridops.merge([g.geom for g in grids]))
    return commit(conn, family, "merge", grids, [NewGrid(merged, model=first)], actor, options)


def redraw(
    conn: Connection,
    code: str,
    drawn_m: Callable[[int], BaseGeometry],
    snap_m: float,
    actor: str,
    options: CheckOptions,
    counties: Counties = None,
) -> Change:
    """Give a grid (of `counties`) a new boundary; neighbours sharing the moved edges follow."""
    [grid], family = _grids_and_family(conn, [code], counties)
    siblings = [c for c in family.children if c.id != grid.id]
    new, adjusted = _geometric(
        lambda: gridops.redraw(
            grid.geom, drawn_m(family.epsg), [s.geom for s in siblings], family.parent, snap_m
        )
    )
    changed = [
        (s, geom) for s, geom in zip(siblings, adjusted, strict=True) if not geom.equals(s.geom)
    ]
    closing = [grid] + [s for s, _ in changed]
    opening = [NewGrid(new, grid.code, grid.name, grid)] + [
        NewGrid(geom, s.code, s.name, s) for s, geom in changed
    ]
    return commit(conn, family, "redraw", closing, opening, actor, options)


def generate(
    conn: Connection,
    parent_code: str,
    plan: gridops.UnitPlan,
    actor: str,
    options: CheckOptions,
    counties: Counties = None,
) -> Change:
    """Replace a parent's children by regular unit cells numbered west→east, north→south."""
    family = load_family(conn, parent_code, lock=True, counties=counties)
    cells = _geometric(lambda: gridops.unit_cells(family.parent, plan))
    opening = [NewGrid(c) for c in cells]
    return commit(conn, family, "generate", family.children, opening, actor, options)


def replace_children(
    conn: Connection,
    parent_code: str,
    drawn: Callable[[int], list[tuple[BaseGeometry, str | None, str | None]]],
    actor: str,
    options: CheckOptions,
    counties: Counties = None,
) -> Change:
    """Replace a parent's whole set of children by uploaded ones (geometry, code, name)."""
    family = load_family(conn, parent_code, lock=True, counties=counties)
    opening = [NewGrid(geom, code, name) for geom, code, name in drawn(family.epsg)]
    if not opening:
        raise GridEditRefused(
            "The upload holds no grid.", "上传的文件中没有网格。", code="upload_empty"
        )
    return commit(conn, family, "replace", family.children, opening, actor, options)


def split_target(conn: Connection, line_lonlat: BaseGeometry, counties: Counties = None) -> str:
    """The one current leaf grid (of `counties`) a drawn line cuts through (lon/lat line), or a
    refusal."""
    rows = conn.execute(
        text(f"""
        SELECT g.code FROM grids AS g
        WHERE {is_current(GRIDS, "g")} AND {IN_COUNTIES.replace("adcode", "g.adcode")}
          AND ST_Intersects(g.geom, ST_SetSRID(ST_GeomFromWKB(:wkb), 4490))
          AND NOT EXISTS (SELECT 1 FROM grids AS k WHERE k.parent_code = g.code AND {is_current(GRIDS, "k")})
          AND ST_NumGeometries(ST_Split(g.geom, ST_SetSRID(ST_GeomFromWKB(:wkb), 4490)))
              > ST_NumGeometries(g.geom)
        ORDER BY g.code
    """),
        {
            "wkb": shapely.to_wkb(line_lonlat),
            "counties": None if counties is None else list(counties),
        },
    ).all()
    if len(rows) != 1:
        found = (
            "no grid" if not rows else f"{len(rows)} grids ({', '.join(r[0] for r in rows[:5])})"
        )
        raise GridEditRefused(
            f"The line must cut across exactly one grid; it cuts {found}.",
            f"拆分线必须完整穿过且只穿过一个网格；当前穿过了{'0 个网格' if not rows else f' {len(rows)} 个网格'}。",
            code="split_target_ambiguous",
        )
    return str(rows[0][0])


PARENT_LEVEL = {"street": None, "community": "street", "section": "community"}


def add(
    conn: Connection,
    drawn_lonlat: BaseGeometry,
    level: str,
    name: str | None,
    to_zone: Callable[[int], BaseGeometry],
    actor: str,
    options: CheckOptions,
    counties: Counties = None,
) -> Change:
    """A new grid drawn by hand, in the parent under it; refused when it overlaps or spills, or
    lies in a county not among `counties`."""
    parent_level = PARENT_LEVEL.get(level)
    if parent_level is None:
        raise GridEditRefused(
            f"New grids can be drawn at the community or section level, not {level!r}.",
            f"只能在社区或片区层级绘制新网格，不能是 {level!r}。",
            code="add_level",
        )
    found = conn.execute(
        text(f"""
        SELECT code, adcode FROM grids WHERE level = :level AND {CURRENT}
          AND ST_Intersects(geom, ST_PointOnSurface(ST_SetSRID(ST_GeomFromWKB(:wkb), 4490)))
        ORDER BY code LIMIT 1
    """),
        {"level": parent_level, "wkb": shapely.to_wkb(drawn_lonlat)},
    ).first()
    parent = None if found is None else found[0]
    if found is not None and counties is not None and found[1] not in counties:
        raise access.outside_counties()
    if parent is None:
        raise GridEditRefused(
            "The drawn grid does not lie in any grid of the level above.",
            "绘制的网格不在任何上级网格内。",
            code="add_outside_parents",
        )
    family = load_family(conn, str(parent), lock=True, counties=counties)
    return commit(
        conn, family, "add", [], [NewGrid(to_zone(family.epsg), name=name)], actor, options
    )
