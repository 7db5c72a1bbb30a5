"""The case categories as a file a bureau edits: exported as CSV with Chinese headings (time limits,
aliases), imported back after every row is checked, all rows or none."""

from __future__ import annotations

import csv
import io
import json
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import Connection, text

from layers.engine.filein import text_encoding
from layers.engine.importing import RowError
from layers.errors import InvalidFeature

# (column, Chinese heading); the English names are accepted on import too
COLUMNS = (
    ("code", "代码"),
    ("kind", "类型"),
    ("major_code", "大类代码"),
    ("major_name", "大类名称"),
    ("minor_name", "小类名称"),
    ("time_limit", "处置时限"),
    ("time_unit", "时限单位"),
    ("aliases", "别名"),
)
REQUIRED = tuple(name for name, _ in COLUMNS if name != "aliases")
KIND_LABELS = {"event": "事件", "component": "部件"}
UNIT_LABELS = {"working_hours": "工作时", "working_days": "工作日"}
KIND_WORDS = {**{v: k for k, v in KIND_LABELS.items()}, **{k: k for k in KIND_LABELS}}
UNIT_WORDS = {
    **{v: k for k, v in UNIT_LABELS.items()},
    **{k: k for k in UNIT_LABELS},
    "工作小时": "working_hours",
    "小时": "working_hours",
    "天": "working_days",
}
ALIAS_SEPARATORS = re.compile(r"[、,，;；|]")
CODE = re.compile(r"[EC][0-9]{4}")
MAX_NAME = 100
MAX_LIMIT = 10_000


@dataclass
class CategoriesReport:
    """What an import of the categories found and did."""

    rows: int
    encoding: str
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: int = 0
    kept: list[str] = field(default_factory=list)  # stored categories the file does not list
    errors: list[RowError] = field(default_factory=list)

    def document(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        return asdict(self)


class CategoriesRefused(InvalidFeature):
    """A categories file with bad rows: nothing was changed; the body lists them."""

    code = "categories_refused"

    def __init__(self, report: CategoriesReport) -> None:
        bad = len({e.row for e in report.errors})
        super().__init__(
            f"{bad} of {report.rows} rows of the categories file are bad; nothing was changed.",
            f"类别文件 {report.rows} 行中有 {bad} 行有问题，未做任何修改。",
            report=report.document(),
        )
        self.report = report


def _stored(conn: Connection) -> dict[str, dict[str, Any]]:
    rows = conn.execute(
        text("""
        SELECT k.code, k.kind, k.major_code, k.major_name, k.minor_name, k.time_limit, k.time_unit,
               k.adcode,
               coalesce(array_agg(a.alias ORDER BY a.alias) FILTER (WHERE a.alias IS NOT NULL),
                        '{}') AS aliases
        FROM case_categories AS k LEFT JOIN case_category_aliases AS a ON a.category_code = k.code
        GROUP BY k.code ORDER BY k.code
    """)
    ).mappings()
    return {r["code"]: {**r, "aliases": list(r["aliases"])} for r in rows}


def export_csv(conn: Connection) -> str:
    """Every stored category as CSV with Chinese headings and a byte-order mark (Excel reads it)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([heading for _, heading in COLUMNS])
    for row in _stored(conn).values():
        if row["adcode"] is not None:
            continue  # a county's local subclass: `citygrid catalogue export --county`
        writer.writerow(
            [
                row["code"],
                KIND_LABELS[row["kind"]],
                row["major_code"],
                row["major_name"],
                row["minor_name"],
                row["time_limit"],
                UNIT_LABELS[row["time_unit"]],
                "、".join(row["aliases"]),
            ]
        )
    return "\ufeff" + out.getvalue()


def _header(names: list[str]) -> dict[str, int]:
    known = {heading: name for name, heading in COLUMNS} | {name: name for name, _ in COLUMNS}
    index = {}
    for i, raw in enumerate(names):
        name = known.get(raw.strip().lstrip("\ufeff")) or known.get(raw.strip().lower())
        if name is not None and name not in index:
            index[name] = i
    missing = [heading for name, heading in COLUMNS if name in REQUIRED and name not in index]
    if missing:
        raise InvalidFeature(
            f"The categories file lacks the column(s) {', '.join(missing)}.",
            f"类别文件缺少以下列：{'、'.join(missing)}。",
            code="categories_missing_columns",
        )
    return index


def _names(cells: dict[str, str], bad: Callable[[str, str, str], None]) -> tuple[int, list[str]]:
    """The names, the time limit and the aliases of a row, checked."""
    for name in ("major_name", "minor_name"):
        if not 1 <= len(cells[name]) <= MAX_NAME:
            bad(name, "category_name", f"名称须为 1 至 {MAX_NAME} 个字符")
    try:
        limit = int(cells["time_limit"])
        if not 1 <= limit <= MAX_LIMIT:
            raise ValueError(limit)
    except ValueError:
        limit = 0
        bad("time_limit", "category_time_limit", f"处置时限应为 1 至 {MAX_LIMIT} 的整数")
    aliases = sorted({a.strip() for a in ALIAS_SEPARATORS.split(cells["aliases"]) if a.strip()})
    if any(len(a) > MAX_NAME for a in aliases):
        bad("aliases", "category_alias", f"每个别名不超过 {MAX_NAME} 个字符")
    return limit, aliases


def _row(cells: dict[str, str], number: int, errors: list[RowError]) -> dict[str, Any]:
    """One row as it would be stored, its problems added to `errors`."""
    found: list[RowError] = []

    def bad(name: str, code: str, message: str) -> None:
        found.append(RowError(number, name, cells.get(name, "")[:60], code, message))

    code = cells["code"].upper()
    well_formed = CODE.fullmatch(code) is not None
    if not well_formed:
        bad("code", "category_code_format", "代码应为 E 或 C 加 4 位数字，如 E0102")
    kind = KIND_WORDS.get(cells["kind"].lower())
    if kind is None:
        bad("kind", "category_kind", "类型应为“事件”或“部件”")
    elif well_formed and (kind == "event") != code.startswith("E"):
        bad("kind", "category_kind", "事件类代码以 E 开头，部件类以 C 开头")
    if well_formed and cells["major_code"].zfill(2) != code[1:3]:
        bad("major_code", "category_major_code", f"大类代码应为代码的第 2、3 位（{code[1:3]}）")
    limit, aliases = _names(cells, bad)
    unit = UNIT_WORDS.get(cells["time_unit"].lower())
    if unit is None:
        bad("time_unit", "category_time_unit", "时限单位应为“工作时”或“工作日”")
    errors.extend(found)
    return {
        "code": code,
        "kind": kind,
        "major_code": code[1:3],
        "major_name": cells["major_name"],
        "minor_name": cells["minor_name"],
        "time_limit": limit,
        "time_unit": unit,
        "aliases": aliases,
    }


def _cross_check(
    rows: dict[int, dict[str, Any]], stored: dict[str, dict[str, Any]], errors: list[RowError]
) -> None:
    """Codes and aliases each name one category; an alias is no other category's name."""
    seen_codes: dict[str, int] = {}
    listed = {r["code"] for r in rows.values()}
    claims: dict[str, set[str]] = defaultdict(set)  # alias or name → the categories it names
    for r in [*(r for r in stored.values() if r["code"] not in listed), *rows.values()]:
        for name in (r["minor_name"], *r["aliases"]):
            claims[name].add(r["code"])
    for number, row in rows.items():
        if row["code"] in seen_codes:
            errors.append(
                RowError(
                    number,
                    "code",
                    row["code"],
                    "category_duplicate",
                    f"代码 {row['code']} 在第 {seen_codes[row['code']]} 行已出现",
                )
            )
        seen_codes.setdefault(row["code"], number)
        if stored.get(row["code"], {}).get("adcode") is not None:
            errors.append(
                RowError(
                    number,
                    "code",
                    row["code"],
                    "category_code_taken",
                    f"代码 {row['code']} 是县级行政区的扩展小类，请用 citygrid catalogue 修改",
                )
            )
        for alias in row["aliases"]:
            others = sorted(claims[alias] - {row["code"]})
            if others:
                errors.append(
                    RowError(
                        number,
                        "aliases",
                        alias,
                        "category_alias_taken",
                        f"别名“{alias}”也指向类别 {'、'.join(others)}（名称或别名）",
                    )
                )


def read_csv(data: bytes) -> tuple[list[dict[str, str]], str]:
    """The rows of a categories CSV (UTF-8 with or without BOM, or GBK) by column name."""
    encoding, _ = text_encoding(data, None, "类别文件")
    decoded = data.decode("utf-8-sig" if encoding == "UTF-8" else "gb18030")
    lines = list(csv.reader(io.StringIO(decoded)))
    if not lines:
        raise InvalidFeature(
            "The categories file is empty.", "类别文件为空。", code="categories_missing_columns"
        )
    index = _header(lines[0])
    rows = []
    for line in lines[1:]:
        if not any(cell.strip() for cell in line):
            continue
        cells = {name: (line[i].strip() if i < len(line) else "") for name, i in index.items()}
        rows.append(cells | {"aliases": cells.get("aliases", "")})
    return rows, encoding


def import_csv(
    conn: Connection, data: bytes, actor: str, dry_run: bool = False
) -> CategoriesReport:
    """Check every row of a categories file; when all are good add and update the categories it
    lists and replace their aliases (categories it does not list stay as they are); audited."""
    cells, encoding = read_csv(data)
    report = CategoriesReport(len(cells), encoding)
    rows = {i + 1: _row(c, i + 1, report.errors) for i, c in enumerate(cells)}
    stored = _stored(conn)
    _cross_check(rows, stored, report.errors)
    report.errors.sort(key=lambda e: (e.row, e.field))
    if report.errors:
        raise CategoriesRefused(report)
    for row in rows.values():
        before = stored.get(row["code"])
        if before is None:
            report.added.append(row["code"])
        elif {k: before[k] for k in row} != row:
            report.changed.append(row["code"])
        else:
            report.unchanged += 1
    listed = {r["code"] for r in rows.values()}
    report.kept = [code for code in stored if code not in listed]
    if dry_run or not (report.added or report.changed):
        return report
    _write(conn, [r for r in rows.values() if r["code"] in {*report.added, *report.changed}])
    conn.execute(
        text("""
        INSERT INTO audit_log (actor, action, layer, after)
        VALUES (:actor, 'update', 'case_categories', CAST(:after AS jsonb))
    """),
        {
            "actor": actor,
            "after": json.dumps(
                {"added": report.added, "changed": report.changed}, ensure_ascii=False
            ),
        },
    )
    return report


def _write(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Upsert the categories and set their aliases to those given."""
    for row in rows:
        conn.execute(
            text("""
            INSERT INTO case_category_classes (kind, code, name, local)
            VALUES (:kind, :major_code, :major_name, true) ON CONFLICT DO NOTHING
        """),
            row,
        )
        conn.execute(
            text("""
            INSERT INTO case_categories
                (code, kind, major_code, major_name, minor_name, time_limit, time_unit, geometry)
            VALUES (:code, :kind, :major_code, :major_name, :minor_name, :time_limit, :time_unit,
                CASE WHEN :kind = 'component' THEN 'point' END)
            ON CONFLICT (code) DO UPDATE SET kind = excluded.kind,
                major_code = excluded.major_code, major_name = excluded.major_name,
                minor_name = excluded.minor_name, time_limit = excluded.time_limit,
                time_unit = excluded.time_unit
        """),
            {k: v for k, v in row.items() if k != "aliases"},
        )
    codes = [r["code"] for r in rows]
    conn.execute(
        text("DELETE FROM case_category_aliases WHERE category_code = ANY(:codes)"),
        {"codes": codes},
    )
    pairs = [(a, r["code"]) for r in rows for a in r["aliases"]]
    if pairs:
        conn.execute(
            text("""
            INSERT INTO case_category_aliases (alias, category_code)
            SELECT * FROM unnest(CAST(:aliases AS text[]), CAST(:codes AS text[]))
        """),
            {"aliases": [a for a, _ in pairs], "codes": [c for _, c in pairs]},
        )
