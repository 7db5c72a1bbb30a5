"""Fume readings as CSV files: exported by the database, imported from monitoring platforms."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, BinaryIO
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from layers.engine.access import Viewer
from layers.engine.filein import text_encoding
from layers.engine.importing import ImportRefused, ImportReport, RowError
from layers.engine.statcsv import table_csv
from layers.errors import BadQuery
from layers.fume import readings
from layers.store.bulk import copy_out
from layers.store.db import BUREAU_TIMEZONE

LAYER = "fume_readings"
# (name, Chinese label): the export's columns, in order; an import reads either spelling
COLUMNS = (
    ("device_id", "设备编号"),
    ("restaurant", "餐饮单位"),
    ("adcode", "县区代码"),
    ("time", "监测时间"),
    ("concentration", "油烟浓度(mg/m³)"),
    ("purifier_on", "净化器运行"),
    ("exceeded", "是否超标"),
)
IMPORTED = ("device_id", "time", "concentration", "purifier_on")  # the rest is the database's
ALIASES = {label: name for name, label in COLUMNS} | {"油烟浓度": "concentration"}
TRUE = {"是", "开", "true", "t", "yes", "y", "1", "on"}
FALSE = {"否", "关", "false", "f", "no", "n", "0", "off"}


def export(conn: Connection, query: readings.ReadingsQuery, out: BinaryIO) -> int:
    """Every reading `query` selects (its limit and offset aside), oldest first, as CSV with
    Chinese headers and a byte-order mark; how many bytes."""
    params: dict[str, Any] = {}
    where = " AND ".join(readings.conditions(query, params))
    select = f"""
        SELECT r.device_id, r.name, f.adcode,
               to_char(f.time AT TIME ZONE :bureau_zone, 'YYYY-MM-DD"T"HH24:MI:SS"+08:00"'),
               f.concentration,
               CASE WHEN f.purifier_on THEN '是' ELSE '否' END,
               CASE WHEN f.exceeded THEN '是' ELSE '否' END
        FROM fume_readings AS f JOIN restaurants AS r ON r.id = f.restaurant_id
        WHERE {where}
        ORDER BY f.time, r.device_id
    """
    head = table_csv(COLUMNS, []).encode()
    return out.write(head) + copy_out(conn, select, params, out, "FORMAT csv")


@dataclass(frozen=True)
class Parsed:
    """The readings of a file, the file's row of each, and what was wrong."""

    readings: list[readings.Reading]
    rows: list[int]
    report: ImportReport


def _header(names: list[str]) -> tuple[dict[str, int], list[str]]:
    """Which column holds each imported field, and the columns left unused."""
    where: dict[str, int] = {}
    unused: list[str] = []
    for i, raw in enumerate(names):
        name = ALIASES.get(raw.strip(), raw.strip())
        if name in IMPORTED and name not in where:
            where[name] = i
        else:
            unused.append(raw)
    missing = [name for name in IMPORTED if name not in where]
    if missing:
        labels = dict(COLUMNS)
        raise BadQuery(
            f"The file lacks the columns {', '.join(missing)}.",
            f"文件缺少列：{'、'.join(labels[m] for m in missing)}。",
            code="missing_columns",
        )
    return where, unused


def _time(value: str) -> datetime:
    """An ISO 8601 time; one without an offset is the bureau's (China) time."""
    moment = datetime.fromisoformat(value.strip().replace("/", "-"))
    return moment if moment.tzinfo else moment.replace(tzinfo=ZoneInfo(BUREAU_TIMEZONE))


def _switch(value: str) -> bool:
    word = value.strip().lower()
    if word in TRUE or word in FALSE:
        return word in TRUE
    raise ValueError(word)


def parse(data: bytes, now: datetime) -> Parsed:
    """Read a CSV file of readings; every row checked, each problem kept with its row."""
    encoding, notes = text_encoding(data, None, "CSV 文件")
    text = data.decode("gb18030" if encoding == "GBK" else "utf-8-sig")
    table = csv.reader(io.StringIO(text))
    try:
        return _parse(table, now, encoding, notes)
    except csv.Error as exc:
        raise BadQuery(
            f"The file is not readable as CSV (line {table.line_num}: {exc}).",
            f"文件不是可读的 CSV（第 {table.line_num} 行：{exc}）。",
            code="bad_csv",
        ) from exc


def _parse(table: Iterator[list[str]], now: datetime, encoding: str, notes: list[str]) -> Parsed:
    names = next(table, None)
    if names is None:
        raise BadQuery("The file is empty.", "文件为空。", code="empty_file")
    where, unused = _header(names)
    report = ImportReport(
        LAYER, 0, {names[i]: f for f, i in where.items()}, unused, encoding, "", notes
    )
    report.key = "device_id,time"
    found: list[readings.Reading] = []
    rows: list[int] = []
    for number, cells in enumerate(table, start=1):
        if not any(c.strip() for c in cells):
            continue  # spreadsheets leave blank lines at the end
        report.rows += 1
        reading = _reading(number, cells, where, now, report.errors)
        if reading is not None:
            found.append(reading)
            rows.append(number)
    return Parsed(found, rows, report)


def _reading(
    number: int, cells: list[str], where: dict[str, int], now: datetime, errors: list[RowError]
) -> readings.Reading | None:
    """One row as a reading, or None with its problems added to `errors`."""
    values = {name: cells[i] if i < len(cells) else "" for name, i in where.items()}
    before = len(errors)
    parsers: dict[str, Any] = {"time": _time, "concentration": float, "purifier_on": _switch}
    parsed: dict[str, Any] = {"device_id": values["device_id"].strip()}
    if not parsed["device_id"]:
        errors.append(RowError(number, "device_id", "", "required", "缺少设备编号"))
    for name, read in parsers.items():
        try:
            parsed[name] = read(values[name])
        except ValueError:
            errors.append(RowError(number, name, values[name][:60], "bad_value", _WRONG[name]))
    if len(errors) > before:
        return None
    reading = readings.Reading(
        parsed["device_id"], parsed["time"], parsed["concentration"], parsed["purifier_on"]
    )
    wrong = readings.problem(reading, now)
    if wrong is not None:
        code, _, zh = wrong
        name = "time" if code.startswith("time") else "concentration"
        errors.append(RowError(number, name, values[name][:60], code, zh))
        return None
    return reading


_WRONG = {
    "time": "监测时间应为 ISO 8601 格式，如 2026-11-30T08:00:00+08:00（不带时区按北京时间）",
    "concentration": "油烟浓度应为数字（mg/m³）",
    "purifier_on": "净化器运行应为 是/否",
}


def import_readings(
    conn: Connection, viewer: Viewer, parsed: Parsed, dry_run: bool = False
) -> ImportReport:
    """Store the file's readings in one transaction, or none when a row is bad (ImportRefused);
    a reading already stored for that device and time is kept as it was."""
    readings.require_platform(viewer)
    report = parsed.report
    devices = readings.restaurants_of(conn, viewer, [r.device for r in parsed.readings])
    for number, r in zip(parsed.rows, parsed.readings, strict=True):
        matches = len(devices.get(r.device, []))
        if matches != 1:
            code, _, zh = readings.device_problem(r.device, matches)
            report.errors.append(RowError(number, "device_id", r.device[:60], code, zh))
    if report.errors or not report.rows:
        report.errors.sort(key=lambda e: e.row)
        if not report.rows:
            raise BadQuery("The file has no readings.", "文件中没有监测数据。", code="empty_file")
        raise ImportRefused(report)
    stored = readings.store(conn, viewer, parsed.readings)
    report.imported = stored
    report.counts = {"new": stored, "changed": 0, "unchanged": report.rows - stored}
    report.dry_run = dry_run
    if dry_run:
        conn.rollback()
    else:
        conn.commit()
    return report
