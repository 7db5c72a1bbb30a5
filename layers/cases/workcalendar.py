"""The bureau's working calendar as data: statutory holidays and 调休 working days per county (or
for the whole deployment, adcode NULL) and each county's office hours, read into a `WorkCalendar`.

A county's own days override the deployment's; a day in neither follows the weekday rule. Years
with no listed day are unknown: they fall back to Monday–Friday and are reported as unknown.
Calendars are cached per process and re-read when the tables' versions (layer_versions) move.
"""

from __future__ import annotations

import csv
import io
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, time
from typing import Any

from sqlalchemy import Connection, text

from layers.cases.worktime import DEFAULT_PERIODS, WorkCalendar, format_periods, parse_periods
from layers.engine.importing import RowError
from layers.errors import InvalidValue
from layers.places import counties

TABLES = ("calendar_days", "county_working_hours")
KIND_LABELS = {"holiday": "放假", "workday": "上班"}
KINDS = {label: kind for kind, label in KIND_LABELS.items()}
HEADINGS = ("日期", "类型", "名称")
Periods = tuple[tuple[time, time], ...]


class CalendarRefused(InvalidValue):
    """A calendar file refused for its rows; nothing was changed."""

    def __init__(self, errors: list[RowError]) -> None:
        super().__init__(
            f"The calendar file has {len(errors)} bad row(s); nothing was imported.",
            f"日历文件有 {len(errors)} 处错误，未导入任何内容。",
            code="bad_calendar_rows",
            errors=[vars(e) for e in errors],
        )
        self.errors = errors


@dataclass(frozen=True)
class CalendarDay:
    """One listed day: a holiday or a weekend working day, and where it came from."""

    day: date
    kind: str
    name: str
    source: str
    adcode: str | None


def _days(conn: Connection, adcode: str | None) -> dict[date, CalendarDay]:
    """The listed days in effect for a county (its own over the deployment's)."""
    rows = conn.execute(
        text("""
        SELECT DISTINCT ON (day) day, kind, name, source, adcode FROM calendar_days
        WHERE adcode IS NULL OR adcode = :a
        ORDER BY day, adcode NULLS LAST
    """),
        {"a": adcode},
    ).all()
    return {r.day: CalendarDay(r.day, r.kind, r.name, r.source, r.adcode) for r in rows}


def county_periods(conn: Connection, adcode: str | None, default: Periods) -> Periods:
    """A county's office hours, or the deployment's default."""
    stored = conn.execute(
        text("SELECT periods FROM county_working_hours WHERE adcode = :a"), {"a": adcode}
    ).scalar_one_or_none()
    return parse_periods(stored) if stored else default


def load(conn: Connection, adcode: str | None, default: Periods = DEFAULT_PERIODS) -> WorkCalendar:
    """The working calendar of a county (None: the deployment's), read from the database."""
    days = _days(conn, adcode).values()
    return WorkCalendar(
        periods=county_periods(conn, adcode, default),
        holidays=frozenset(d.day for d in days if d.kind == "holiday"),
        workdays=frozenset(d.day for d in days if d.kind == "workday"),
        known_years=frozenset(d.day.year for d in days),
    )


class Calendars:
    """Per-process cache of county calendars, refreshed when the calendar tables change."""

    def __init__(
        self,
        default: Periods = DEFAULT_PERIODS,
        versions: Callable[[str], int | None] | None = None,
    ) -> None:
        self.default = default
        self._versions = versions
        self._cached: dict[str | None, tuple[tuple[int, ...], WorkCalendar]] = {}
        self._lock = threading.Lock()

    def _current(self, conn: Connection) -> tuple[int, ...]:
        known = [self._versions(t) for t in TABLES] if self._versions else [None]
        if all(v is not None for v in known):
            return tuple(v for v in known if v is not None)
        result = conn.execute(
            text("SELECT layer, version FROM layer_versions WHERE layer = ANY(:t)"),
            {"t": list(TABLES)},
        )
        rows = {str(layer): int(version) for layer, version in result}
        return tuple(int(rows.get(t, 0)) for t in TABLES)

    def get(self, conn: Connection, adcode: str | None) -> WorkCalendar:
        """The county's calendar, from memory unless the calendar tables changed."""
        version = self._current(conn)
        with self._lock:
            hit = self._cached.get(adcode)
        if hit is not None and hit[0] == version:
            return hit[1]
        calendar = load(conn, adcode, self.default)
        with self._lock:
            self._cached[adcode] = (version, calendar)
        return calendar


def listed(conn: Connection, year: int, adcode: str | None) -> list[CalendarDay]:
    """The holidays and 调休 working days of a year for a county (or the deployment), by day."""
    return [d for d in _days(conn, adcode).values() if d.day.year == year]


def unknown_years(conn: Connection, years: range) -> list[int]:
    """The years of `years` the deployment's calendar lists no day for (Monday–Friday assumed)."""
    known = set(
        conn.execute(
            text("SELECT DISTINCT extract(year FROM day)::int FROM calendar_days")
        ).scalars()
    )
    return [y for y in years if y not in known]


def _parse(content: str) -> tuple[list[dict[str, Any]], list[RowError]]:
    """Rows of a calendar CSV (日期, 类型, 名称) and the problems found, numbered as data rows."""
    reader = csv.reader(io.StringIO(content.lstrip("\ufeff")))
    head = [h.strip() for h in next(reader, [])]
    if [h for h in HEADINGS if h not in head]:
        return [], [RowError(0, "表头", ",".join(head), "bad_header", "表头应为：日期,类型,名称")]
    col = {h: head.index(h) for h in HEADINGS}
    rows: list[dict[str, Any]] = []
    errors: list[RowError] = []
    seen: dict[date, int] = {}
    for n, raw in enumerate(reader, start=1):
        if not any(c.strip() for c in raw):
            continue
        cell = {h: (raw[i].strip() if i < len(raw) else "") for h, i in col.items()}
        try:
            day = date.fromisoformat(cell["日期"].replace("/", "-"))
        except ValueError:
            errors.append(RowError(n, "日期", cell["日期"], "bad_date", "日期应为 YYYY-MM-DD"))
            continue
        kind = KINDS.get(cell["类型"])
        if kind is None:
            errors.append(RowError(n, "类型", cell["类型"], "bad_kind", "类型应为“放假”或“上班”"))
        elif kind == "workday" and day.weekday() < 5:
            errors.append(
                RowError(n, "类型", cell["类型"], "workday_on_weekday", "调休上班日应为周六或周日")
            )
        if not cell["名称"]:
            errors.append(RowError(n, "名称", "", "missing_name", "请填写名称，如“国庆节”"))
        if day in seen:
            errors.append(
                RowError(n, "日期", str(day), "duplicate_day", f"与第 {seen[day]} 行日期重复")
            )
        seen.setdefault(day, n)
        rows.append({"day": day, "kind": kind, "name": cell["名称"]})
    if not rows and not errors:
        errors.append(RowError(0, "日期", "", "empty_file", "文件中没有日期"))
    return rows, errors


def import_days(conn: Connection, content: str, source: str, adcode: str | None) -> list[int]:
    """Replace the listed days of each year in the file for a county (or the deployment);
    all or nothing. Returns the years replaced."""
    if adcode is not None:
        counties.get(conn, adcode)
    rows, errors = _parse(content)
    if errors:
        raise CalendarRefused(errors)
    years = sorted({r["day"].year for r in rows})
    conn.execute(
        text("""
        DELETE FROM calendar_days WHERE adcode IS NOT DISTINCT FROM :a
        AND extract(year FROM day)::int = ANY(:y)
    """),
        {"a": adcode, "y": years},
    )
    conn.execute(
        text("""
        INSERT INTO calendar_days (adcode, day, kind, name, source)
        VALUES (:a, :day, :kind, :name, :source)
    """),
        [r | {"a": adcode, "source": source} for r in rows],
    )
    return years


def export_days(conn: Connection, adcode: str | None, year: int | None = None) -> str:
    """The listed days in effect (a county's own over the deployment's) as a calendar CSV."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADINGS)
    for d in _days(conn, adcode).values():
        if year is None or d.day.year == year:
            writer.writerow((d.day.isoformat(), KIND_LABELS[d.kind], d.name))
    return out.getvalue()


def set_hours(conn: Connection, adcode: str, periods: str) -> Periods:
    """Set a county's office hours ("08:30-12:00,13:30-17:30")."""
    counties.get(conn, adcode)
    try:
        parsed = parse_periods(periods)
    except ValueError:
        raise InvalidValue(
            f"Office hours {periods!r} are not periods like 08:30-12:00,13:30-17:30.",
            f"上班时段“{periods}”格式不对，应如 08:30-12:00,13:30-17:30。",
            code="bad_working_hours",
        ) from None
    conn.execute(
        text("""
        INSERT INTO county_working_hours (adcode, periods) VALUES (:a, :p)
        ON CONFLICT (adcode) DO UPDATE SET periods = EXCLUDED.periods, changed_at = now()
    """),
        {"a": adcode, "p": format_periods(parsed)},
    )
    return parsed
