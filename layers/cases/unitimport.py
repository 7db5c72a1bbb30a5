"""Import a county's directory of units from a spreadsheet (XLSX or CSV with Chinese headings),
all or nothing, with a report per row.

A row whose name or credit code is already in the county's directory updates that unit (type,
credit code and contact, when given); any other row adds one.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from layers.cases import units
from layers.engine.filein import FileLimits, text_encoding, without_paths
from layers.engine.importing import RowError
from layers.errors import CitygridError, InvalidFeature
from layers.places import counties

HEADINGS = {
    "name": ("单位名称", "名称", "name"),
    "credit_code": ("统一社会信用代码", "信用代码", "credit_code"),
    "type": ("类型", "单位类型", "type"),
    "contact_person": ("联系人", "contact_person"),
    "contact_phone": ("联系电话", "电话", "contact_phone"),
}
LIMITS = FileLimits(max_bytes=20 * 1024 * 1024, max_features=100_000)


@dataclass
class UnitsReport:
    """What an import of units found and did."""

    adcode: str
    rows: int
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)

    def document(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        return {
            "county": self.adcode,
            "rows": self.rows,
            "added": self.added,
            "changed": self.changed,
            "unchanged": self.unchanged,
            "errors": [vars(e) for e in self.errors],
        }


class UnitsRefused(InvalidFeature):
    """A units file with bad rows: nothing was changed; the body lists them."""

    code = "units_refused"

    def __init__(self, report: UnitsReport) -> None:
        bad = len({e.row for e in report.errors})
        super().__init__(
            f"{bad} of {report.rows} rows of the units file are bad; nothing was changed.",
            f"单位文件 {report.rows} 行中有 {bad} 行有问题，未做任何修改。",
            report=report.document(),
        )
        self.report = report


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():  # a spreadsheet's number: a phone
        return str(int(value))
    return str(value).strip()


def _columns(names: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for index, name in enumerate(names):
        for key, headings in HEADINGS.items():
            if name.strip() in headings:
                found.setdefault(key, index)
    if "name" not in found:
        raise InvalidFeature(
            "The file has no 单位名称 column.",
            "文件中没有“单位名称”列。",
            code="units_file_no_name",
        )
    return found


def _table(path: Path) -> tuple[list[str], list[Any]]:
    """Column names and values of a spreadsheet without geometry, every cell read as text (a
    credit code or phone must not become a number)."""
    import pyogrio.raw  # GDAL loads slowly: only reading/writing files needs it

    suffix = path.suffix.lower()
    if suffix not in (".csv", ".xlsx"):
        raise InvalidFeature(
            f"A units file is an XLSX or CSV, not {suffix or 'a file without suffix'}.",
            f"单位文件应为 XLSX 或 CSV 格式，而不是 {suffix or '无扩展名的文件'}。",
            code="upload_unsupported_format",
        )
    if path.stat().st_size > LIMITS.max_bytes:
        raise InvalidFeature(
            "The units file is larger than 20 MB.", "单位文件超过 20 MB。", code="upload_too_large"
        )
    with tempfile.TemporaryDirectory(prefix="citygrid-units-") as tmp:
        options: dict[str, str] = {"FIELD_TYPES": "STRING"} if suffix == ".xlsx" else {}
        if suffix == ".csv":
            data = path.read_bytes()
            encoding, _ = text_encoding(data, None, "单位文件")
            if encoding != "UTF-8":  # GDAL's CSV driver reads UTF-8
                path = Path(tmp) / "utf8.csv"
                path.write_text(data.decode("gb18030"), encoding="utf-8")
        else:
            options["HEADERS"] = "FORCE"  # the first row names the columns
        try:
            meta, _, _, values = pyogrio.raw.read(
                str(path), read_geometry=False, max_features=LIMITS.max_features, **options
            )
        except Exception as exc:  # GDAL reports unreadable files with many exception types
            reason = without_paths(str(exc))
            raise InvalidFeature(
                f"The units file cannot be read ({reason}).",
                f"无法读取单位文件（{reason}）。",
                code="upload_unreadable",
            ) from None
    return [str(c) for c in meta["fields"]], list(values)


def read_rows(path: Path) -> list[dict[str, str]]:
    """The file's rows as {field: text}, by the Chinese (or English) headings."""
    columns, values = _table(path)
    found = _columns(columns)
    count = len(values[0]) if values else 0
    return [{key: _cell(values[i][n]) for key, i in found.items()} for n in range(count)]


def _entry(cells: dict[str, str], number: int, errors: list[RowError]) -> units.NewUnit | None:
    entry = units.NewUnit(
        cells.get("name", ""),
        cells.get("type") or "department",
        cells.get("credit_code") or None,
        cells.get("contact_person") or None,
        cells.get("contact_phone") or None,
    )
    try:
        return entry.cleaned()
    except CitygridError as exc:
        column = {
            "bad_unit_name": "name",
            "bad_credit_code": "credit_code",
            "bad_credit_code_check": "credit_code",
            "bad_unit_type": "type",
        }.get(exc.code, "contact_phone" if "电话" in exc.message_zh else "contact_person")
        errors.append(RowError(number, column, cells.get(column, ""), exc.code, exc.message_zh))
        return None


def _duplicates(entries: list[tuple[int, units.NewUnit]], errors: list[RowError]) -> None:
    seen: dict[tuple[str, str], int] = {}
    for number, entry in entries:
        for key, value in (("name", entry.name), ("credit_code", entry.credit_code)):
            if value is None:
                continue
            first = seen.setdefault((key, value), number)
            if first != number:
                errors.append(
                    RowError(
                        number,
                        key,
                        value,
                        "duplicate_in_file",
                        f"与第 {first} 行重复：同一单位在文件中只能出现一次。",
                    )
                )


def import_units(
    conn: Connection, path: Path, adcode: str, actor: str, dry_run: bool = False
) -> UnitsReport:
    """Add or update the county's units from the file; any bad row refuses the whole file."""
    counties.get(conn, adcode)
    rows = read_rows(path)
    report = UnitsReport(adcode, len(rows))
    entries: list[tuple[int, units.NewUnit]] = []
    for number, cells in enumerate(rows, start=1):
        entry = _entry(cells, number, report.errors)
        if entry is not None:
            entries.append((number, entry))
    _duplicates(entries, report.errors)
    plan: list[tuple[units.NewUnit, units.Unit | None, bool]] = []
    for number, entry in entries:
        by_name = units.find(conn, entry.name, adcode)
        by_code = units.find(conn, entry.credit_code, adcode) if entry.credit_code else None
        if by_name and by_code and by_name.id != by_code.id:
            report.errors.append(
                RowError(
                    number,
                    "credit_code",
                    entry.credit_code or "",
                    "credit_code_taken",
                    f"统一社会信用代码已属于本县的“{by_code.name}”，与单位名称“{entry.name}”不符。",
                )
            )
            continue
        plan.append((entry, by_name or by_code, bool(rows[number - 1].get("type"))))
    if report.errors:
        report.errors.sort(key=lambda e: (e.row, e.field))
        raise UnitsRefused(report)
    _write(conn, plan, report, adcode, actor, dry_run)
    return report


def _write(
    conn: Connection,
    plan: list[tuple[units.NewUnit, units.Unit | None, bool]],
    report: UnitsReport,
    adcode: str,
    actor: str,
    dry_run: bool,
) -> None:
    """Add the new units and update the changed ones, noting each in the report."""
    for entry, stored, typed in plan:
        if stored is None:
            report.added.append(entry.name)
            if not dry_run:
                units.add(conn, entry, adcode, actor)
            continue
        given = ("type",) if typed else ()  # an empty cell keeps what is stored
        changes = {
            k: getattr(entry, k)
            for k in (*given, "credit_code", "contact_person", "contact_phone")
            if getattr(entry, k) is not None
        }
        if all(getattr(stored, k) == v for k, v in changes.items()):
            report.unchanged += 1
            continue
        report.changed.append(stored.name)
        if not dry_run:
            units.update(conn, stored.id, changes, actor)
