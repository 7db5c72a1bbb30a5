"""A bureau's own case history: a year of cases from its former digital city-management system,
imported into one county with their case numbers, statuses and stage times.

Every row is checked first (category by code, name or alias; source and status by label; times
in order; place inside the county); nothing is written unless all rows are good. Then the new
rows go in with one COPY, and set-based statements give each case the grid (and unit) valid at
its report time and record its stages in `case_events`. Rows whose case number the county already
holds are skipped, so importing the same file again changes nothing.
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import shapely
from pyproj import Transformer
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Connection, text

from layers.cases import workcalendar
from layers.cases.casewords import SOURCE_WORDS as SOURCES
from layers.cases.casewords import STATUS_WORDS as STATUSES
from layers.cases.casewords import (
    TEXT_LIMITS,
    CategoryNames,
    blank,
    category_names,
    cell_text,
    column_fields,
    parse_time,
)
from layers.cases.workflow import STAGE_TIMES as STAGES
from layers.cases.worktime import WorkCalendar
from layers.engine import access
from layers.engine.filein import SourceData, refuse, text_encoding
from layers.engine.importing import ImportRefused, ImportReport, RowError, _to_storage
from layers.errors import InvalidFeature
from layers.places import counties
from layers.registry import CASES, GRIDS, STORAGE_SRID, Role
from layers.store.bulk import Progress, copy_rows
from layers.store.tables import TABLES
from layers.store.versions import valid_on

REQUIRED = ("external_ref", "reported_at", "source", "status")
COLUMNS = (
    *REQUIRED, *STAGES[1:], "deadline", "category_code", "description", "address", "unit",
    "grid_code",
)  # fmt: skip
FUTURE_SLACK_S = 300


@dataclass(frozen=True)
class CaseFile:
    """What to import, into which county, read how."""

    source: SourceData
    adcode: str
    crs: str | None = None
    category_map: dict[str, str] | None = None
    explicit: dict[str, str] | None = None
    tolerance_m: float = 50.0


def read_category_map(conn: Connection, data: bytes) -> dict[str, str]:
    """A bureau's own category names: CSV rows of name,code (UTF-8 or GBK; a header optional)."""
    encoding, _ = text_encoding(data, None, "类别对照文件")
    decoded = data.decode("utf-8-sig" if encoding == "UTF-8" else "gb18030")
    pairs = [
        (row[0].strip(), row[1].strip().upper())
        for row in csv.reader(io.StringIO(decoded))
        if len(row) >= 2 and row[0].strip()
    ]
    known = set(conn.execute(text("SELECT code FROM case_categories")).scalars())
    if pairs and pairs[0][1] not in known and not pairs[0][1][1:].isdigit():
        pairs = pairs[1:]  # a header
    bad = [f"{name}→{code}" for name, code in pairs if code not in known]
    if bad:
        raise InvalidFeature(
            f"The category map names codes no category has: {', '.join(bad)}.",
            f"类别对照文件中的类别代码不存在：{'、'.join(bad)}。",
            code="unknown_category",
        )
    return dict(pairs)


def _refuse_missing(found: dict[str, int], source: SourceData) -> None:
    missing = [name for name in REQUIRED if name not in found]
    if not {"category_code", "minor", "category"} & set(found):
        missing.append("category")
    if missing:
        raise refuse(
            "import_missing_columns",
            f"The file has no column for {', '.join(missing)} (columns: {', '.join(source.columns)}).",
            f"文件缺少以下内容的列：{'、'.join(missing)}（文件中的列：{'、'.join(source.columns)}）。"
            "可用 --map 列名=字段 指定。",
        )


class _Rows:
    """The rows of a case file read one by one into what the cases table stores."""

    def __init__(self, file: CaseFile, names: CategoryNames, zone: ZoneInfo, now: datetime):
        self.source = file.source
        self.found = column_fields(file.source.columns, file.explicit or {})
        _refuse_missing(self.found, file.source)
        self.names, self.zone, self.now = names, zone, now
        self.tolerance = file.tolerance_m
        self.errors: list[RowError] = []
        self.unknown: dict[str, list[int]] = defaultdict(list)

    def raw(self, name: str, r: int) -> Any:
        i = self.found.get(name)
        return None if i is None else self.source.values[i][r]

    def bad(self, r: int, name: str, value: Any, code: str, message: str) -> None:
        self.errors.append(
            RowError(r + 1, name, "" if blank(value) else str(value)[:60], code, message)
        )

    def row(self, r: int) -> dict[str, Any]:
        out: dict[str, Any] = {name: None for name in COLUMNS}
        self._texts(r, out)
        self._times(r, out)
        out["category_code"] = self._category(r)
        for name, words, label in (
            ("source", SOURCES, "案件来源"),
            ("status", STATUSES, "案件状态"),
        ):
            value = self.raw(name, r)
            out[name] = None if blank(value) else words.get(cell_text(value))
            if out[name] is None:
                allowed = "、".join(w for w in words if not w.isascii())
                self.bad(
                    r,
                    name,
                    value,
                    "property_not_in_code_list",
                    f"{label}无法识别（可用：{allowed}）",
                )
        if out["status"] == "closed" and out["closed_at"] is None:
            self.bad(r, "closed_at", None, "missing_property", "状态为结案，但没有结案时间")
        return out

    def _texts(self, r: int, out: dict[str, Any]) -> None:
        for name, limit in TEXT_LIMITS.items():
            value = self.raw(name, r)
            if blank(value):
                if name == "external_ref":
                    self.bad(r, name, value, "missing_property", "案件编号为空")
                continue
            out[name] = cell_text(value)
            if len(out[name]) > limit or not out[name].isprintable():
                self.bad(
                    r, name, value, "property_out_of_range", f"超过 {limit} 个字符或含控制字符"
                )
                out[name] = None

    def _times(self, r: int, out: dict[str, Any]) -> None:
        previous: tuple[str, datetime] | None = None
        for name in (*STAGES, "deadline"):
            value = self.raw(name, r)
            if blank(value):
                if name == "reported_at":
                    self.bad(r, name, value, "missing_property", "上报时间为空")
                continue
            try:
                at = parse_time(value, self.zone)
            except (TypeError, ValueError):
                self.bad(r, name, value, "property_wrong_type", "不是有效的时间")
                continue
            out[name] = at
            if (at - self.now).total_seconds() > FUTURE_SLACK_S:
                self.bad(r, name, value, "time_in_future", "时间晚于当前时间")
            elif name != "deadline" and previous is not None and at < previous[1]:
                self.bad(r, name, value, "time_out_of_order", f"早于{_LABELS[previous[0]]}")
            if name != "deadline":
                previous = (name, at)

    def _category(self, r: int) -> str | None:
        for column in ("category_code", "minor", "category"):
            value = self.raw(column, r)
            if not blank(value):
                break
        else:
            self.bad(r, "category_code", None, "missing_property", "案件类别为空")
            return None
        major = self.raw("major", r)
        code, why = self.names.resolve(cell_text(value), None if blank(major) else cell_text(major))
        if code is None:
            word = "有多个同名类别，请在大类列注明" if why == "ambiguous" else "未知"
            self.unknown[cell_text(value)].append(r + 1)
            self.bad(
                r, "category_code", value, f"{why}_category",
                f"案件类别“{cell_text(value)}”{word}：请用类别代码、名称或别名，"
                "或用 --category-map 指定本局名称对应的类别代码",
            )  # fmt: skip
        return code


_LABELS = {
    "reported_at": "上报时间",
    "registered_at": "立案时间",
    "dispatched_at": "派遣时间",
    "handled_at": "处置时间",
    "feedback_at": "反馈时间",
    "verified_at": "核查时间",
    "closed_at": "结案时间",
}


def _outside(
    conn: Connection, county: counties.CountyRecord, geoms: list[BaseGeometry | None], rows: _Rows
) -> None:
    """Rows without a place, or farther outside the county than the tolerance, are refused."""
    boundary = shapely.from_wkb(
        conn.execute(
            text(
                "SELECT ST_AsBinary(ST_Transform(boundary, gk_srid)) FROM counties WHERE adcode = :a"
            ),
            {"a": county.adcode},
        ).scalar_one()
    )
    present = np.array([g is not None for g in geoms])
    for i in np.flatnonzero(~present):
        rows.bad(int(i), "geometry", None, "geometry_missing", "缺少经纬度")
    if not present.any():
        return
    points = np.asarray(geoms, dtype=object)[present]
    to_gk = Transformer.from_crs(4490, county.gk_srid, always_xy=True)
    x, y = to_gk.transform(shapely.get_x(points), shapely.get_y(points))
    projected = shapely.points(x, y)
    shapely.prepare(boundary)
    inside = shapely.dwithin(boundary, projected, rows.tolerance)
    for i, ok, point, g in zip(np.flatnonzero(present), inside, projected, points, strict=True):
        if not ok:
            metres = shapely.distance(boundary, point)
            rows.bad(
                int(i), "geometry", f"{g.x:.6f},{g.y:.6f}", "outside_county",
                f"位置（经度 {g.x:.6f}，纬度 {g.y:.6f}）在{county.name}（{county.adcode}）"
                f"边界外 {metres:,.0f} 米",
            )  # fmt: skip


def _deadlines(conn: Connection, rows: list[dict[str, Any]], calendar: WorkCalendar) -> int:
    """Deadlines from each case's dispatch and its category's limit, where the file gives none;
    returns how many cases have neither deadline nor dispatch time."""
    limits = {
        code: (limit, unit)
        for code, limit, unit in conn.execute(
            text("SELECT code, time_limit, time_unit FROM case_categories")
        ).all()
    }
    without = 0
    for row in rows:
        if row["deadline"] is None and row["dispatched_at"] is not None:
            row["deadline"] = calendar.add(row["dispatched_at"], *limits[row["category_code"]])
        without += row["deadline"] is None and row["status"] not in ("rejected", "cancelled")
    return without


def check(
    conn: Connection, file: CaseFile, viewer: access.Viewer
) -> tuple[ImportReport, list[dict[str, Any]]]:
    """Every row read and checked; the report (refused when a row is bad) and the rows."""
    access.require_role(viewer, Role.DISPATCHER)
    county = counties.get(conn, file.adcode)
    if not access.may_write_county(viewer, county.adcode):
        raise access.outside_counties()
    names = category_names(conn, file.category_map or {})
    zone = ZoneInfo(county.time_zone)
    now = datetime.now(zone)
    reader = _Rows(file, names, zone, now)
    geoms, crs_name = _to_storage(file.source, file.crs)
    source = file.source
    mapping = {source.columns[i]: name for name, i in reader.found.items()}
    unused = [c for c in source.columns if c not in mapping and c.strip() not in ("经度", "纬度")]
    report = ImportReport(CASES.id, len(source), mapping, unused, source.encoding, crs_name)
    report.notes = [*source.notes, f"县级行政区：{county.name}（{county.adcode}）"]
    report.key, report.errors = "external_ref", reader.errors
    rows = [reader.row(r) for r in range(len(source))]
    _outside(conn, county, geoms, reader)
    _duplicates(rows, reader)
    for name, numbers in reader.unknown.items():
        shown = "、".join(map(str, numbers[:20])) + ("…" if len(numbers) > 20 else "")
        report.notes.append(f"未知类别“{name}”：第 {shown} 行（共 {len(numbers)} 行）")
    report.errors.sort(key=lambda e: (e.row, e.field))
    if report.errors:
        raise ImportRefused(report)
    for row, geom in zip(rows, geoms, strict=True):
        row["geom"] = geom
    return report, rows


def _duplicates(rows: list[dict[str, Any]], reader: _Rows) -> None:
    first: dict[str, int] = {}
    for r, row in enumerate(rows):
        ref = row["external_ref"]
        if ref is None:
            continue
        if ref in first:
            reader.bad(r, "external_ref", ref, "duplicate_key", f"案件编号与第 {first[ref]} 行重复")
        first.setdefault(ref, r + 1)


def import_cases(
    conn: Connection,
    file: CaseFile,
    viewer: access.Viewer,
    dry_run: bool = False,
    progress: Progress | None = None,
    calendar: WorkCalendar | None = None,
) -> ImportReport:
    """Check every row; when all are good (and this is no dry run) add the cases the county does
    not hold yet, with their grids, units, deadlines and stage events; audited."""
    report, rows = check(conn, file, viewer)
    stored = set(
        conn.execute(
            text("""
            SELECT c.external_ref FROM unnest(CAST(:refs AS text[])) AS r (ref)
            JOIN cases AS c ON c.adcode = :a AND c.external_ref = r.ref
        """),
            {"a": file.adcode, "refs": [r["external_ref"] for r in rows]},
        ).scalars()
    )
    new = [r for r in rows if r["external_ref"] not in stored]
    report.counts = {"new": len(new), "changed": 0, "unchanged": len(stored)}
    if stored:
        report.notes.append(f"{len(stored)} 行的案件编号已导入过，已跳过（不更新）")
    if calendar is None:
        calendar = workcalendar.load(conn, file.adcode)
    without = _deadlines(conn, new, calendar)
    if without:
        report.notes.append(f"{without} 件案件既无处置时限也无派遣时间：不计入应结案数")
    report.dry_run = dry_run
    if dry_run or not new:
        return report
    _place(conn, counties.get(conn, file.adcode), new)
    stamped = [{**row, "adcode": file.adcode} for row in new]
    report.imported = copy_rows(conn, TABLES[CASES.id], stamped, progress)
    _events(conn, file.adcode, [r["external_ref"] for r in new], viewer.username)
    conn.execute(
        text("""
        INSERT INTO audit_log (actor, action, layer, adcode, after)
        VALUES (:actor, 'create', 'cases', :a, CAST(:after AS jsonb))
    """),
        {
            "actor": viewer.username,
            "a": file.adcode,
            "after": json.dumps(
                {"imported": report.imported, "skipped": len(stored), "mapping": report.mapping},
                ensure_ascii=False,
            ),
        },
    )
    return report


def _valid(alias: str) -> str:
    """Whether grid `alias` was valid on the case's report day."""
    return valid_on(GRIDS, alias, "p.day")


def _place(conn: Connection, county: counties.CountyRecord, rows: list[dict[str, Any]]) -> None:
    """Each case's section among the grids valid on its report day (in the county's time zone),
    and (unless the file named one) the nearest responsible unit up that section's family as it
    was then: one set-based query before the rows are written."""
    zone = ZoneInfo(county.time_zone)
    found = conn.execute(
        text(f"""
        SELECT p.i, g.code,
               coalesce(g.responsible_unit, c.responsible_unit, s.responsible_unit) AS unit
        FROM unnest(CAST(:i AS int[]), CAST(:x AS float8[]), CAST(:y AS float8[]),
                    CAST(:day AS date[])) AS p (i, x, y, day)
        CROSS JOIN LATERAL (
            SELECT g.code, g.parent_code, g.responsible_unit FROM grids AS g
            WHERE g.level = 'section' AND g.adcode = :a
              AND ST_Intersects(g.geom, ST_SetSRID(ST_MakePoint(p.x, p.y), {STORAGE_SRID}))
              AND {_valid("g")}
            ORDER BY g.code LIMIT 1
        ) AS g
        LEFT JOIN grids AS c ON c.code = g.parent_code AND {_valid("c")}
        LEFT JOIN grids AS s ON s.code = c.parent_code AND {_valid("s")}
    """),
        {
            "a": county.adcode,
            "i": list(range(len(rows))),
            "x": [r["geom"].x for r in rows],
            "y": [r["geom"].y for r in rows],
            "day": [r["reported_at"].astimezone(zone).date() for r in rows],
        },
    ).all()
    for i, code, unit in found:
        rows[i]["grid_code"] = code
        rows[i]["unit"] = rows[i]["unit"] or unit


def _events(conn: Connection, adcode: str, refs: list[str], actor: str) -> None:
    """The stages each new case went through, as the workflow records them."""
    conn.execute(
        text("""
        INSERT INTO case_events (adcode, case_id, at, action, from_status, to_status, actor, note)
        SELECT :a, e.case_id, e.at, e.action,
               coalesce(lag(e.to_status) OVER (PARTITION BY e.case_id ORDER BY e.ord), 'reported'),
               e.to_status, :actor, '导入自原系统，案件编号 ' || e.ref
        FROM (
            SELECT c.id AS case_id, c.external_ref AS ref, s.*
            FROM unnest(CAST(:refs AS text[])) AS r (ref)
            JOIN cases AS c ON c.adcode = :a AND c.external_ref = r.ref
            CROSS JOIN LATERAL (VALUES
                (1, 'register', 'registered', c.registered_at),
                (2, 'dispatch', 'dispatched', c.dispatched_at),
                (3, 'handle', 'handled', c.handled_at),
                (4, 'feedback', 'feedback', c.feedback_at),
                (5, 'pass', 'verified', c.verified_at),
                (6, CASE c.status WHEN 'rejected' THEN 'reject' WHEN 'cancelled' THEN 'cancel'
                                  ELSE 'close' END,
                    CASE WHEN c.status IN ('rejected', 'cancelled') THEN c.status ELSE 'closed' END,
                    CASE WHEN c.status IN ('closed', 'rejected', 'cancelled') THEN c.closed_at END)
            ) AS s (ord, action, to_status, at)
            WHERE s.at IS NOT NULL
        ) AS e
    """),
        {"a": adcode, "refs": refs, "actor": actor},
    )
