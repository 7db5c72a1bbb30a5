"""A county's routing rules (派遣规则): cases of a subclass in an area (a grid of any level, or the
whole county) go to a unit of the directory. Admins of the county keep them; dispatchers and
leaders read them; every read and write is limited to the viewer's counties in SQL.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, text

from layers.cases import codes, units
from layers.engine import access
from layers.engine.access import Viewer
from layers.engine.filein import text_encoding
from layers.engine.importing import RowError
from layers.errors import CitygridError, FeatureNotFound, InvalidFeature, StateConflict
from layers.places import counties
from layers.registry import GRIDS, Role
from layers.store.versions import is_current

READERS = (Role.DISPATCHER, Role.LEADER)  # and admins
COLUMNS = """r.id, r.adcode, r.subclass_code, k.minor_name AS subclass_name, r.area_code,
    r.area_level, r.unit, r.note, r.created_by, r.created_at"""


@dataclass(frozen=True)
class NewRule:
    """A rule to add: the subclass (code, name or alias), the area (None: the county), the unit."""

    subclass: str
    area_code: str | None
    unit: str
    note: str | None = None


def _public(row: Any) -> dict[str, Any]:
    out = dict(row._mapping)
    out["created_at"] = out["created_at"].isoformat()
    return out


def list_rules(conn: Connection, viewer: Viewer, county: str | None = None) -> list[dict[str, Any]]:
    """The rules of the viewer's counties (of one, if asked), most general first."""
    access.require_role(viewer, *READERS)
    where, bound = access.county_condition(viewer, "r.adcode")
    rows = conn.execute(
        text(f"""
        SELECT {COLUMNS} FROM routing_rules AS r
        JOIN case_categories AS k ON k.code = r.subclass_code
        WHERE {where} AND (CAST(:county AS text) IS NULL OR r.adcode = :county)
        ORDER BY r.adcode, r.subclass_code, r.area_code NULLS FIRST
    """),
        dict(bound) | {"county": county},
    )
    return [_public(r) for r in rows]


def _subclass(conn: Connection, given: str, adcode: str) -> str:
    code = codes.resolve_category(conn, given)
    found = conn.execute(
        text("SELECT 1 FROM case_categories WHERE code = :c AND (adcode IS NULL OR adcode = :a)"),
        {"c": code, "a": adcode},
    ).first()
    if found is None:
        raise InvalidFeature(
            f"{given!r} is not a subclass of the catalogue.",
            f"“{given}”不是案件目录中的小类。",
            code="unknown_subclass",
            field="subclass",
        )
    return code


def _area_level(conn: Connection, area_code: str, adcode: str) -> str:
    level: str | None = conn.execute(
        text(f"""
        SELECT g.level FROM grids AS g
        WHERE g.code = :code AND g.adcode = :adcode AND {is_current(GRIDS, "g")} LIMIT 1
    """),
        {"code": area_code, "adcode": adcode},
    ).scalar()
    if level is None:
        raise InvalidFeature(
            f"{area_code!r} is not a current grid of county {adcode}.",
            f"“{area_code}”不是县级行政区 {adcode} 的现行网格编码。",
            code="unknown_area",
            field="area_code",
        )
    return level


def add(conn: Connection, viewer: Viewer, adcode: str, rule: NewRule) -> dict[str, Any]:
    """Add a rule to a county the admin holds (refused: unknown subclass, area or unit, or a
    rule for the same subclass and area already there)."""
    access.require_role(viewer)
    if not access.may_write_county(viewer, adcode):
        raise access.outside_counties()
    subclass = _subclass(conn, rule.subclass, adcode)
    level = _area_level(conn, rule.area_code, adcode) if rule.area_code else None
    unit = units.require(conn, rule.unit, adcode).name
    taken = conn.execute(
        text("""
        SELECT 1 FROM routing_rules WHERE adcode = :a AND subclass_code = :s
          AND area_code IS NOT DISTINCT FROM :area
    """),
        {"a": adcode, "s": subclass, "area": rule.area_code},
    ).first()
    if taken is not None:
        raise StateConflict(
            "A rule for this subclass and area exists already: delete it first.",
            "该小类在该区域已有派遣规则：请先删除原规则。",
            code="rule_exists",
        )
    new_id = conn.execute(
        text("""
        INSERT INTO routing_rules (adcode, subclass_code, area_code, area_level, unit, note,
                                   created_by)
        VALUES (:a, :s, :area, :level, :unit, :note, :by) RETURNING id
    """),
        {
            "a": adcode,
            "s": subclass,
            "area": rule.area_code,
            "level": level,
            "unit": unit,
            "note": rule.note,
            "by": viewer.username,
        },
    ).scalar_one()
    created = _one(conn, new_id, viewer)
    _audit(conn, viewer, "create", new_id, adcode, None, created)
    return created


def _one(conn: Connection, rule_id: int, viewer: Viewer) -> dict[str, Any]:
    where, bound = access.county_condition(viewer, "r.adcode")
    row = conn.execute(
        text(f"""
        SELECT {COLUMNS} FROM routing_rules AS r
        JOIN case_categories AS k ON k.code = r.subclass_code
        WHERE r.id = :id AND {where}
    """),
        dict(bound) | {"id": rule_id},
    ).first()
    if row is None:  # another county's rule looks absent
        raise FeatureNotFound(
            f"There is no routing rule {rule_id}.",
            f"没有编号为 {rule_id} 的派遣规则。",
            code="rule_not_found",
        )
    return _public(row)


def delete(conn: Connection, viewer: Viewer, rule_id: int) -> None:
    """Delete a rule of a county the admin holds."""
    access.require_role(viewer)
    before = _one(conn, rule_id, viewer)
    conn.execute(text("DELETE FROM routing_rules WHERE id = :id"), {"id": rule_id})
    _audit(conn, viewer, "delete", rule_id, before["adcode"], before, None)


def _audit(
    conn: Connection,
    viewer: Viewer,
    action: str,
    rule_id: int,
    adcode: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    conn.execute(
        text("""
        INSERT INTO audit_log (actor, action, layer, feature_id, adcode, before, after)
        VALUES (:actor, :action, 'routing_rules', :id, :adcode,
                CAST(:before AS jsonb), CAST(:after AS jsonb))
    """),
        {
            "actor": viewer.username,
            "action": action,
            "id": rule_id,
            "adcode": adcode,
            "before": json.dumps(before, ensure_ascii=False) if before else None,
            "after": json.dumps(after, ensure_ascii=False) if after else None,
        },
    )


# A routing table file: UTF-8 CSV (with BOM, so spreadsheets read the Chinese) with these headings.
FILE_HEADINGS = {
    "subclass": ("小类", "小类代码", "小类名称", "subclass"),
    "area_code": ("区域网格编码", "网格编码", "area_code"),
    "unit": ("处置单位", "unit"),
    "note": ("说明", "备注", "note"),
}
FILE_COLUMNS = {"subclass": "subclass", "area_code": "area_code"}  # a refusal's field → column
MAX_FILE_BYTES = 5 * 1024 * 1024


@dataclass
class RulesReport:
    """What an import of a routing table found and did."""

    adcode: str
    rows: int
    replaced: int = 0
    errors: list[RowError] = field(default_factory=list)


class RulesRefused(InvalidFeature):
    """A routing table with bad rows: nothing was changed; the report lists them."""

    code = "routing_rules_refused"

    def __init__(self, report: RulesReport) -> None:
        bad = len({e.row for e in report.errors})
        super().__init__(
            f"{bad} of {report.rows} rows of the routing table are bad; nothing was changed.",
            f"派遣规则文件 {report.rows} 行中有 {bad} 行有问题，未做任何修改。",
        )
        self.report = report


def _file_rows(path: Path) -> list[dict[str, str]]:
    data = path.read_bytes()
    if len(data) > MAX_FILE_BYTES:
        raise InvalidFeature(
            "The routing table is larger than 5 MB.",
            "派遣规则文件超过 5 MB。",
            code="upload_too_large",
        )
    encoding, _ = text_encoding(data, None, "派遣规则文件")
    raw = data.decode("utf-8-sig" if encoding == "UTF-8" else "gb18030")
    reader = csv.reader(io.StringIO(raw))
    headings = [h.strip() for h in next(reader, [])]
    columns = {
        key: headings.index(name)
        for key, names in FILE_HEADINGS.items()
        for name in names
        if name in headings
    }
    if "subclass" not in columns or "unit" not in columns:
        raise InvalidFeature(
            "The routing table needs the columns 小类 and 处置单位 (and 区域网格编码).",
            "派遣规则文件须有“小类”“处置单位”列（以及“区域网格编码”列）。",
            code="routing_file_columns",
        )
    return [
        {k: (cells[i].strip() if i < len(cells) else "") for k, i in columns.items()}
        for cells in reader
        if any(c.strip() for c in cells)
    ]


def _checked_row(
    conn: Connection, cells: dict[str, str], adcode: str
) -> tuple[str, str | None, str | None, str]:
    subclass = _subclass(conn, cells["subclass"], adcode)
    area = cells.get("area_code") or None
    if area is not None and not (len(area) == 15 and area.isdigit()):
        raise InvalidFeature(
            f"{area!r} is not a 15-digit grid code.",
            f"“{area}”不是 15 位网格编码。",
            code="unknown_area",
            field="area_code",
        )
    level = _area_level(conn, area, adcode) if area else None
    return subclass, area, level, units.require(conn, cells["unit"], adcode).name


def import_rules(conn: Connection, path: Path, adcode: str, actor: str) -> RulesReport:
    """Replace a county's routing rules with a routing table's, all or nothing."""
    counties.require_known(conn, [adcode])
    rows = _file_rows(path)
    report = RulesReport(adcode, len(rows))
    checked: list[tuple[str, str | None, str | None, str, str | None]] = []
    seen: set[tuple[str, str | None]] = set()
    for number, cells in enumerate(rows, start=1):
        try:
            subclass, area, level, unit = _checked_row(conn, cells, adcode)
        except CitygridError as problem:
            column = FILE_COLUMNS.get(str(problem.details.get("field")), "unit")
            heading = FILE_HEADINGS[column][0]
            report.errors.append(
                RowError(number, heading, cells.get(column, ""), problem.code, problem.message_zh)
            )
            continue
        if (subclass, area) in seen:
            report.errors.append(
                RowError(number, "小类", cells["subclass"], "rule_exists", "同一小类和区域重复")
            )
        seen.add((subclass, area))
        checked.append((subclass, area, level, unit, cells.get("note") or None))
    if report.errors:
        raise RulesRefused(report)
    report.replaced = conn.execute(
        text("DELETE FROM routing_rules WHERE adcode = :a"), {"a": adcode}
    ).rowcount
    for subclass, area, level, unit, note in checked:
        conn.execute(
            text("""
            INSERT INTO routing_rules (adcode, subclass_code, area_code, area_level, unit, note,
                                       created_by)
            VALUES (:a, :s, :area, :level, :unit, :note, :by)
        """),
            {"a": adcode, "s": subclass, "area": area, "level": level, "unit": unit}
            | {"note": note, "by": actor},
        )
    return report


def export_rules(conn: Connection, adcode: str) -> str:
    """A county's routing rules as a routing table (CSV text; write it with a BOM)."""
    counties.require_known(conn, [adcode])
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["小类", "小类名称", "区域网格编码", "处置单位", "说明"])
    for rule in list_rules(conn, Viewer("export", Role.ADMIN), adcode):
        writer.writerow(
            [
                rule["subclass_code"],
                rule["subclass_name"],
                rule["area_code"] or "",
                rule["unit"],
                rule["note"] or "",
            ]
        )
    return out.getvalue()
