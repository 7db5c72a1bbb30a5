"""The catalogue of components (部件) and events (事件) as a county reads and edits it: the standard
classes and subclasses, the county's own copy of a standard subclass (limits, criteria,
department) and its local subclasses; exported and imported as CSV or XLSX with Chinese headings."""

from __future__ import annotations

import csv
import io
import json
import re
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Connection, text

from layers.cases.categories import ALIAS_SEPARATORS, KIND_LABELS, UNIT_LABELS, UNIT_WORDS
from layers.engine.filein import FileLimits, opened, text_encoding
from layers.engine.importing import RowError
from layers.errors import FeatureNotFound, InvalidFeature

# (column, Chinese heading); the English names are accepted on import too
COLUMNS = (
    ("code", "代码"),
    ("kind", "类型"),
    ("class_code", "大类代码"),
    ("class_name", "大类名称"),
    ("name", "小类名称"),
    ("time_limit", "处置时限"),
    ("urgent_limit", "紧急时限"),
    ("time_unit", "时限单位"),
    ("register_criteria", "立案标准"),
    ("close_criteria", "结案标准"),
    ("department", "责任部门"),
    ("aliases", "别名"),
    ("local", "本地扩展"),
    ("geometry", "几何类型"),
)
REQUIRED = ("code", "class_code", "name", "time_limit", "time_unit")
EDITABLE = ("time_limit", "urgent_limit", "time_unit", "register_criteria", "close_criteria")
KIND_WORDS = {**{v: k for k, v in KIND_LABELS.items()}, **{k: k for k in KIND_LABELS}}
# a component subclass's geometry: which component layer holds it (points, lines, areas)
GEOMETRY_LABELS = {"point": "点", "line": "线", "area": "面"}
GEOMETRY_WORDS = {
    **{v: k for k, v in GEOMETRY_LABELS.items()},
    **{k: k for k in GEOMETRY_LABELS},
    "点状": "point",
    "线状": "line",
    "面状": "area",
}
CODE = re.compile(r"[EC][0-9]{4}")
MAX_NAME = 100
MAX_TEXT = 500
MAX_LIMIT = 10_000

_Bad = Callable[[int, str, str, str, str], None]

_SUBCLASSES = """
    SELECT k.code, k.kind, k.major_code AS class_code, c.name AS class_name,
           k.minor_name AS name,
           coalesce(e.time_limit, k.time_limit) AS time_limit,
           CASE WHEN e.code IS NULL THEN k.urgent_limit ELSE e.urgent_limit END AS urgent_limit,
           coalesce(e.time_unit, k.time_unit) AS time_unit,
           coalesce(e.register_criteria, k.register_criteria) AS register_criteria,
           coalesce(e.close_criteria, k.close_criteria) AS close_criteria,
           coalesce(e.department, k.department) AS department,
           coalesce((SELECT array_agg(a.alias ORDER BY a.alias) FROM case_category_aliases AS a
                     WHERE a.category_code = k.code), '{}') AS aliases,
           k.local, k.adcode AS county, e.code IS NOT NULL AS edited, k.geometry
    FROM case_categories AS k
    JOIN case_category_classes AS c ON c.kind = k.kind AND c.code = k.major_code
    LEFT JOIN case_category_edits AS e ON e.code = k.code AND e.adcode = :county
    WHERE k.adcode IS NULL OR k.adcode = ANY(CAST(:counties AS text[]))
    ORDER BY k.kind DESC, k.code
"""


def catalogue(
    conn: Connection, county: str | None, counties: tuple[str, ...] | None
) -> dict[str, list[dict[str, Any]]]:
    """The classes and subclasses one county works with (its edits applied, its local rows), or
    without a county the standard rows and the local rows of `counties` (None: every county)."""
    classes = conn.execute(
        text("SELECT kind, code, name, local FROM case_category_classes ORDER BY kind DESC, code")
    ).mappings()
    if county is not None:
        visible: list[str] = [county]
    elif counties is None:
        visible = list(conn.execute(text("SELECT adcode FROM counties")).scalars())
    else:
        visible = list(counties)
    rows = conn.execute(text(_SUBCLASSES), {"county": county, "counties": visible}).mappings()
    return {
        "classes": [dict(r) for r in classes],
        "subclasses": [{**r, "aliases": list(r["aliases"])} for r in rows],
    }


def known_county(conn: Connection, adcode: str) -> None:
    """Refuse a county that is not stored."""
    if conn.execute(text("SELECT 1 FROM counties WHERE adcode = :a"), {"a": adcode}).first():
        return
    raise FeatureNotFound(
        f"No county {adcode} is stored.", f"没有县级行政区 {adcode}。", code="unknown_county"
    )


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


def export_rows(conn: Connection, county: str | None) -> list[list[str]]:
    """The catalogue a county works with as rows under Chinese headings."""
    rows: list[list[str]] = [[heading for _, heading in COLUMNS]]
    for r in catalogue(conn, county, (county,) if county else ())["subclasses"]:
        rows.append(
            [
                r["code"],
                KIND_LABELS[r["kind"]],
                r["class_code"],
                r["class_name"],
                r["name"],
                _cell(r["time_limit"]),
                _cell(r["urgent_limit"]),
                UNIT_LABELS[r["time_unit"]],
                r["register_criteria"],
                r["close_criteria"],
                r["department"],
                "、".join(r["aliases"]),
                "是" if r["local"] else "否",
                GEOMETRY_LABELS.get(r["geometry"] or "", ""),
            ]
        )
    return rows


def export_file(conn: Connection, county: str | None, xlsx: bool) -> bytes:
    """The catalogue as XLSX or as CSV with a byte-order mark (Excel reads both)."""
    rows = export_rows(conn, county)
    if xlsx:
        import pyogrio.raw  # GDAL loads slowly: only reading/writing files needs it

        columns = [np.array([r[i] for r in rows[1:]], dtype=object) for i in range(len(rows[0]))]
        with tempfile.TemporaryDirectory(prefix="citygrid-catalogue-") as tmp:
            path = Path(tmp) / "catalogue.xlsx"
            pyogrio.raw.write(
                path, None, columns, fields=rows[0], driver="XLSX", layer="管理部件和事件",
                geometry_type=None,
            )  # fmt: skip
            return path.read_bytes()
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def _refuse_columns(missing: list[str]) -> InvalidFeature:
    return InvalidFeature(
        f"The catalogue file lacks the column(s) {', '.join(missing)}.",
        f"目录文件缺少以下列：{'、'.join(missing)}。",
        code="catalogue_missing_columns",
    )


def read_table(data: bytes, xlsx: bool) -> tuple[list[dict[str, str]], str]:
    """The rows of a catalogue file by column name, and the file's encoding."""
    if xlsx:
        import pyogrio.raw  # GDAL loads slowly: only reading/writing files needs it

        try:
            with opened(data, "catalogue.xlsx", FileLimits()) as path:
                meta, _, _, data = pyogrio.raw.read(
                    path, read_geometry=False, HEADERS="FORCE", FIELD_TYPES="STRING"
                )
        except pyogrio.errors.DataSourceError as exc:
            raise InvalidFeature(
                "The catalogue file is not a readable XLSX workbook.",
                "目录文件不是可读取的 XLSX 工作簿。",
                code="catalogue_unreadable",
            ) from exc
        lines = [[str(c) for c in meta["fields"]]] + [
            [_cell(v) for v in values] for values in zip(*data, strict=True)
        ]
        encoding = "XLSX"
    else:
        encoding, _ = text_encoding(data, None, "目录文件")
        decoded = data.decode("utf-8-sig" if encoding == "UTF-8" else "gb18030")
        lines = list(csv.reader(io.StringIO(decoded)))
    if not lines:
        raise _refuse_columns([h for n, h in COLUMNS if n in REQUIRED])
    known = {heading: name for name, heading in COLUMNS} | {name: name for name, _ in COLUMNS}
    index: dict[str, int] = {}
    for i, raw in enumerate(lines[0]):
        name = known.get(raw.strip().lstrip("\ufeff")) or known.get(raw.strip().lower())
        if name is not None:
            index.setdefault(name, i)
    missing = [heading for name, heading in COLUMNS if name in REQUIRED and name not in index]
    if missing:
        raise _refuse_columns(missing)
    rows = []
    for line in lines[1:]:
        if any(cell.strip() for cell in line):
            rows.append(
                {name: (line[i].strip() if i < len(line) else "") for name, i in index.items()}
            )
    return rows, encoding


@dataclass
class CatalogueReport:
    """What an import of a county's catalogue found and did."""

    county: str
    rows: int
    encoding: str
    added: list[str] = field(default_factory=list)  # local subclasses added
    changed: list[str] = field(default_factory=list)  # local or edited standard subclasses
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)

    def document(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        return asdict(self)


class CatalogueRefused(InvalidFeature):
    """A catalogue file with bad rows: nothing was changed; the body lists them."""

    code = "catalogue_refused"

    def __init__(self, report: CatalogueReport) -> None:
        bad = len({e.row for e in report.errors})
        super().__init__(
            f"{bad} of {report.rows} rows of the catalogue file are bad; nothing was changed.",
            f"目录文件 {report.rows} 行中有 {bad} 行有问题，未做任何修改。",
            report=report.document(),
        )
        self.report = report


def _limit(raw: str, required: bool) -> int | None:
    """A time limit: a whole number from 1 to MAX_LIMIT (ValueError otherwise)."""
    if not raw and not required:
        return None
    value = int(float(raw)) if re.fullmatch(r"[0-9]+(\.0+)?", raw) else 0
    if not 1 <= value <= MAX_LIMIT:
        raise ValueError(raw)
    return value


def _limits_and_texts(
    cells: dict[str, str], bad: Callable[[str, str, str], None]
) -> tuple[dict[str, int | None], str | None, list[str]]:
    """The time limits, the unit and the aliases of a row, checked."""
    limits: dict[str, int | None] = {}
    for name, required in (("time_limit", True), ("urgent_limit", False)):
        try:
            limits[name] = _limit(cells.get(name, ""), required)
        except ValueError:
            limits[name] = None
            bad(name, "category_time_limit", f"时限应为 1 至 {MAX_LIMIT} 的整数")
    unit = UNIT_WORDS.get(cells["time_unit"].lower())
    if unit is None:
        bad("time_unit", "category_time_unit", "时限单位应为“工作时”或“工作日”")
    for name in ("register_criteria", "close_criteria", "department"):
        if len(cells.get(name, "")) > MAX_TEXT:
            bad(name, "category_text", f"不超过 {MAX_TEXT} 个字符")
    aliases = sorted(
        {a.strip() for a in ALIAS_SEPARATORS.split(cells.get("aliases", "")) if a.strip()}
    )
    if any(len(a) > MAX_NAME for a in aliases):
        bad("aliases", "category_alias", f"每个别名不超过 {MAX_NAME} 个字符")
    return limits, unit, aliases


def _checked(cells: dict[str, str], number: int, errors: list[RowError]) -> dict[str, Any]:
    """One row as it would be stored, its own problems added to `errors`."""

    def bad(name: str, code: str, message: str) -> None:
        errors.append(RowError(number, name, cells.get(name, "")[:60], code, message))

    code = cells["code"].upper()
    if not CODE.fullmatch(code):
        bad("code", "category_code_format", "代码应为 E（事件）或 C（部件）加 4 位数字，如 E0102")
    kind = "event" if code.startswith("E") else "component"
    if cells.get("kind") and KIND_WORDS.get(cells["kind"].lower()) != kind:
        bad("kind", "category_kind", "类型应与代码一致：E 开头为“事件”，C 开头为“部件”")
    if cells["class_code"].zfill(2) != code[1:3]:
        bad("class_code", "category_class_code", f"大类代码应为代码的第 2、3 位（{code[1:3]}）")
    if not 1 <= len(cells["name"]) <= MAX_NAME:
        bad("name", "category_name", f"小类名称须为 1 至 {MAX_NAME} 个字符")
    limits, unit, aliases = _limits_and_texts(cells, bad)
    raw_geometry = cells.get("geometry", "")
    geometry = GEOMETRY_WORDS.get(raw_geometry.lower()) if raw_geometry else None
    if raw_geometry and (geometry is None or kind == "event"):
        bad("geometry", "category_geometry", "几何类型仅部件可填，应为“点”“线”或“面”")
    return {
        "code": code,
        "kind": kind,
        "class_code": code[1:3],
        "class_name": cells.get("class_name", ""),
        "name": cells["name"],
        **limits,
        "time_unit": unit,
        "register_criteria": cells.get("register_criteria", ""),
        "close_criteria": cells.get("close_criteria", ""),
        "department": cells.get("department", ""),
        "aliases": aliases,
        "geometry": geometry,
    }


def _stored(conn: Connection) -> dict[str, dict[str, Any]]:
    rows = conn.execute(
        text("""
        SELECT k.code, k.kind, k.major_code, k.minor_name, k.time_limit, k.urgent_limit,
               k.time_unit, k.register_criteria, k.close_criteria, k.department, k.adcode,
               k.geometry
        FROM case_categories AS k
    """)
    ).mappings()
    return {r["code"]: dict(r) for r in rows}


def _cross_check(
    conn: Connection, county: str, rows: dict[int, dict[str, Any]], errors: list[RowError]
) -> None:
    """Standard codes keep their names and classes; local codes are free and in a known class;
    a code appears once; an alias names no other subclass."""
    stored = _stored(conn)
    classes = {
        (r.kind, r.code): r.name
        for r in conn.execute(text("SELECT kind, code, name FROM case_category_classes"))
    }
    names: dict[str, set[str]] = {}
    for code, r in stored.items():
        names.setdefault(r["minor_name"], set()).add(code)
    for alias, code in conn.execute(text("SELECT alias, category_code FROM case_category_aliases")):
        names.setdefault(alias, set()).add(code)
    seen: dict[str, int] = {}

    def bad(number: int, name: str, value: str, code: str, message: str) -> None:
        errors.append(RowError(number, name, value[:60], code, message))

    for number, row in rows.items():
        code = row["code"]
        if code in seen:
            bad(
                number,
                "code",
                code,
                "category_duplicate",
                f"代码 {code} 在第 {seen[code]} 行已出现",
            )
        seen.setdefault(code, number)
        _check_class(number, row, classes, bad)
        _check_code(number, row, stored.get(code), county, bad)
        _check_geometry(number, row, stored.get(code), bad)
        before = stored.get(code)
        for alias in row["aliases"] if before is None or before["adcode"] else ():
            others = sorted(names.get(alias, set()) - {code})
            if others:
                bad(number, "aliases", alias, "category_alias_taken",
                    f"别名“{alias}”已指向类别 {'、'.join(others)}")  # fmt: skip


def _check_class(
    number: int, row: dict[str, Any], classes: dict[tuple[str, str], str], bad: _Bad
) -> None:
    """The row's class exists and is named as stored."""
    class_name = classes.get((row["kind"], row["class_code"]))
    if class_name is None:
        bad(number, "class_code", row["class_code"], "category_class_unknown",
            f"没有{KIND_LABELS[row['kind']]}大类 {row['class_code']}")  # fmt: skip
    elif row["class_name"] and row["class_name"] != class_name:
        bad(number, "class_name", row["class_name"], "category_class_name",
            f"大类 {row['class_code']} 的名称是“{class_name}”")  # fmt: skip


def _check_code(
    number: int, row: dict[str, Any], before: dict[str, Any] | None, county: str, bad: _Bad
) -> None:
    """A standard code keeps its name; a local code is no other county's."""
    code = row["code"]
    if before is not None and before["adcode"] is None and row["name"] != before["minor_name"]:
        bad(number, "name", row["name"], "category_standard_changed",
            f"标准小类 {code} 的名称是“{before['minor_name']}”，不可修改；"
            "本地小类请使用未占用的代码")  # fmt: skip
    if before is not None and before["adcode"] not in (None, county):
        bad(number, "code", code, "category_code_taken",
            f"代码 {code} 已被其他县级行政区的扩展小类使用")  # fmt: skip


def _check_geometry(
    number: int, row: dict[str, Any], before: dict[str, Any] | None, bad: _Bad
) -> None:
    """A stored subclass keeps its geometry: its components are rows of that geometry's layer;
    a new component subclass without one is a point."""
    if before is None:
        if row["kind"] == "component" and row["geometry"] is None:
            row["geometry"] = "point"
        return
    if row["geometry"] is not None and row["geometry"] != before["geometry"]:
        label = GEOMETRY_LABELS.get(before["geometry"] or "", "")
        bad(number, "geometry", GEOMETRY_LABELS[row["geometry"]], "category_geometry_fixed",
            f"小类 {row['code']} 的几何类型是“{label}”，不可修改（其部件保存在对应图层中）")  # fmt: skip
    row["geometry"] = before["geometry"]


def _plan(
    stored: dict[str, dict[str, Any]],
    county: str,
    edits: dict[str, dict[str, Any]],
    row: dict[str, Any],
) -> str:
    """Whether a row adds, changes or leaves its subclass as it is."""
    before = stored.get(row["code"])
    if before is None:
        return "added"
    if before["adcode"] == county:
        same = all(before[k] == row[k] for k in EDITABLE) and before["minor_name"] == row["name"]
        return "unchanged" if same and before["department"] == row["department"] else "changed"
    current = edits.get(row["code"], before)
    same = all(current[k] == row[k] for k in (*EDITABLE, "department"))
    return "unchanged" if same else "changed"


def import_file(
    conn: Connection, county: str, data: bytes, xlsx: bool, actor: str, dry_run: bool = False
) -> CatalogueReport:
    """Check every row of a county's catalogue file; when all are good add its local subclasses,
    update them, and keep the county's edits of standard subclasses (all rows or none; audited)."""
    known_county(conn, county)
    cells, encoding = read_table(data, xlsx)
    report = CatalogueReport(county, len(cells), encoding)
    rows = {i + 2: _checked(c, i + 2, report.errors) for i, c in enumerate(cells)}
    _cross_check(conn, county, rows, report.errors)
    report.errors.sort(key=lambda e: (e.row, e.field))
    if report.errors:
        raise CatalogueRefused(report)
    stored = _stored(conn)
    edits = {
        r["code"]: dict(r)
        for r in conn.execute(
            text("SELECT * FROM case_category_edits WHERE adcode = :a"), {"a": county}
        ).mappings()
    }
    for row in rows.values():
        plan = _plan(stored, county, edits, row)
        if plan == "added":
            report.added.append(row["code"])
        elif plan == "changed":
            report.changed.append(row["code"])
        else:
            report.unchanged += 1
    if dry_run or not (report.added or report.changed):
        return report
    touched = {*report.added, *report.changed}
    for row in rows.values():
        if row["code"] in touched:
            _write(conn, county, stored.get(row["code"]), row)
    conn.execute(
        text("""
        INSERT INTO audit_log (actor, action, layer, after)
        VALUES (:actor, 'update', 'case_categories', CAST(:after AS jsonb))
    """),
        {
            "actor": actor,
            "after": json.dumps(
                {"county": county, "added": report.added, "changed": report.changed},
                ensure_ascii=False,
            ),
        },
    )
    return report


def _write(
    conn: Connection, county: str, before: dict[str, Any] | None, row: dict[str, Any]
) -> None:
    """Store one local subclass (with its aliases) or the county's edit of a standard one."""
    values = {**row, "county": county}
    if before is not None and before["adcode"] is None:
        conn.execute(
            text("""
            INSERT INTO case_category_edits (adcode, code, time_limit, urgent_limit, time_unit,
                register_criteria, close_criteria, department)
            VALUES (:county, :code, :time_limit, :urgent_limit, :time_unit, :register_criteria,
                :close_criteria, :department)
            ON CONFLICT (adcode, code) DO UPDATE SET time_limit = excluded.time_limit,
                urgent_limit = excluded.urgent_limit, time_unit = excluded.time_unit,
                register_criteria = excluded.register_criteria,
                close_criteria = excluded.close_criteria, department = excluded.department
        """),
            values,
        )
        return
    conn.execute(
        text("""
        INSERT INTO case_categories (code, kind, major_code, major_name, minor_name, time_limit,
            urgent_limit, time_unit, register_criteria, close_criteria, department, local, adcode,
            geometry)
        SELECT :code, c.kind, c.code, c.name, :name, :time_limit, :urgent_limit, :time_unit,
            :register_criteria, :close_criteria, :department, true, :county, :geometry
        FROM case_category_classes AS c WHERE c.kind = :kind AND c.code = :class_code
        ON CONFLICT (code) DO UPDATE SET minor_name = excluded.minor_name,
            time_limit = excluded.time_limit, urgent_limit = excluded.urgent_limit,
            time_unit = excluded.time_unit, register_criteria = excluded.register_criteria,
            close_criteria = excluded.close_criteria, department = excluded.department
    """),
        values,
    )
    conn.execute(
        text("DELETE FROM case_category_aliases WHERE category_code = :code"), {"code": row["code"]}
    )
    if row["aliases"]:
        conn.execute(
            text("""
            INSERT INTO case_category_aliases (alias, category_code)
            SELECT a, :code FROM unnest(CAST(:aliases AS text[])) AS a
        """),
            {"code": row["code"], "aliases": row["aliases"]},
        )
