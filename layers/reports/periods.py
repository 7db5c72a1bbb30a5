"""The period of a bulletin: a month (YYYY-MM) or a quarter (YYYY-Qn), parsed with clear errors."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from layers.errors import BadQuery

FIRST_YEAR, LAST_YEAR = 2000, 2100


@dataclass(frozen=True)
class Period:
    """Days from `start` to `end`, both included, with their Chinese name."""

    start: date
    end: date
    name: str  # 2023年5月, 2023年第二季度
    key: str  # 2023-05, 2023-Q2 (for file names)


def _month(year: int, month: int) -> Period:
    start = date(year, month, 1)
    following = date(year + month // 12, month % 12 + 1, 1)
    return Period(start, following - timedelta(days=1), f"{year}年{month}月", f"{year}-{month:02d}")


def month(raw: str) -> Period:
    """A calendar month from YYYY-MM."""
    found = re.fullmatch(r"(\d{4})-(\d{2})", raw.strip())
    if not found or not (1 <= int(found[2]) <= 12) or not _year_ok(int(found[1])):
        raise BadQuery(
            f"month must be YYYY-MM, a month of {FIRST_YEAR}–{LAST_YEAR} (got {raw!r}).",
            f"月份（month）必须写成 YYYY-MM，且在 {FIRST_YEAR}–{LAST_YEAR} 年之间（收到 {raw!r}）。",
            code="report_month",
        )
    return _month(int(found[1]), int(found[2]))


def previous(period: Period) -> Period:
    """The month before a month."""
    before = period.start - timedelta(days=1)
    return _month(before.year, before.month)


def months_back(period: Period, count: int) -> Period:
    """The `count` months ending with this one, as one period."""
    year, month_ = period.start.year, period.start.month - (count - 1)
    while month_ < 1:
        year, month_ = year - 1, month_ + 12
    first = _month(year, month_)
    return Period(first.start, period.end, f"{first.name}至{period.name}", first.key)


QUARTER_NAMES = "一二三四"


def quarter(raw: str) -> Period:
    """A calendar quarter from YYYY-Qn."""
    found = re.fullmatch(r"(\d{4})-[Qq]([1-4])", raw.strip())
    if not found or not _year_ok(int(found[1])):
        raise BadQuery(
            f"quarter must be YYYY-Qn with n from 1 to 4, in {FIRST_YEAR}–{LAST_YEAR} (got {raw!r}).",
            f"季度（quarter）必须写成 YYYY-Qn（n 为 1–4），且在 {FIRST_YEAR}–{LAST_YEAR} 年之间"
            f"（收到 {raw!r}）。",
            code="report_quarter",
        )
    year, n = int(found[1]), int(found[2])
    first, last = _month(year, 3 * n - 2), _month(year, 3 * n)
    return Period(first.start, last.end, f"{year}年第{QUARTER_NAMES[n - 1]}季度", f"{year}-Q{n}")


def _year_ok(year: int) -> bool:
    return FIRST_YEAR <= year <= LAST_YEAR


def day_zh(day: date) -> str:
    """A day as 2023年5月1日."""
    return f"{day.year}年{day.month}月{day.day}日"


def today(time_zone: str) -> date:
    """Today in a county's time zone."""
    return datetime.now(ZoneInfo(time_zone)).date()
