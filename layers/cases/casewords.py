"""How former digital city-management systems write their cases: column headings, statuses,
sources, times and category names, each read into what the cases table stores."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import Connection, text

from layers.registry import CASE_STATUSES, CASES

# field → the headings a file may give it (the registry's Chinese label is accepted too)
HEADINGS: dict[str, tuple[str, ...]] = {
    "external_ref": ("案件编号", "案件号", "案卷编号", "任务号", "编号", "external_ref", "case_no"),
    "reported_at": ("上报时间", "发现时间", "受理时间", "reported_at"),
    "registered_at": ("立案时间", "registered_at"),
    "dispatched_at": ("派遣时间", "派遣日期", "dispatched_at"),
    "handled_at": ("处置时间", "处置完成时间", "handled_at"),
    "feedback_at": ("反馈时间", "处置反馈时间", "feedback_at"),
    "verified_at": ("核查时间", "verified_at"),
    "closed_at": ("结案时间", "办结时间", "closed_at"),
    "deadline": ("处置时限", "截止时间", "应结案时间", "deadline"),
    "category_code": ("类别代码", "小类代码", "category_code"),
    "minor": ("小类", "小类名称", "案件小类", "问题小类"),
    "category": ("类别", "案件类别", "问题类别", "问题类型", "category"),
    "major": ("大类", "大类名称", "案件大类", "问题大类"),
    "source": ("来源", "案件来源", "问题来源", "source"),
    "status": ("状态", "案件状态", "办理状态", "status"),
    "description": ("问题描述", "描述", "案件描述", "description"),
    "address": ("地址", "发生地址", "位置描述", "地点", "address"),
    "unit": ("处置单位", "责任单位", "主办单位", "unit"),
}
TEXT_LIMITS = {"external_ref": 100, "description": 2000, "address": 500, "unit": 200}

STATUS_WORDS = {
    **{c.label_zh: c.value for c in CASE_STATUSES},
    **{c.value: c.value for c in CASE_STATUSES},
    **{
        word: status
        for status, words in {
            "reported": ("已上报", "待受理", "待立案", "受理"),
            "registered": ("已立案", "待派遣"),
            "rejected": ("不立案", "不予受理"),
            "cancelled": ("已作废", "无效案件", "重复案件"),
            "dispatched": ("已派遣", "待处置", "处置中"),
            "handled": ("已处置", "待反馈"),
            "feedback": ("已反馈", "待核查"),
            "verified": ("已核查", "核查通过", "待结案"),
            "closed": ("已结案", "办结", "已办结"),
            "returned": ("已退回",),
            "rework": ("核查不通过", "返工中"),
            "parked": ("缓办", "已挂账"),
        }.items()
        for word in words
    },
}
SOURCE_WORDS = {
    **{c.label_zh: c.value for c in CASES.field("source").codes},
    **{c.value: c.value for c in CASES.field("source").codes},
    **{
        word: source
        for source, words in {
            "inspector": ("监督员", "信息采集员", "监督员发现"),
            "public": ("公众投诉", "市民举报", "群众举报", "公众上报"),
            "hotline": ("12345", "市民热线", "热线", "12319", "12319热线"),
            "video": ("视频", "视频发现", "智能视频"),
            "patrol": ("执法队员", "巡查"),
        }.items()
        for word in words
    },
}
_TIME = re.compile(
    r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?"
    r"(?:[\sT]+(\d{1,2})\s*[:：时]\s*(\d{1,2})(?:\s*[:：分]\s*(\d{1,2}(?:\.\d+)?))?)?\s*秒?"
)
_PARENS = str.maketrans({"（": "(", "）": ")", "／": "/", " ": ""})


def column_fields(columns: list[str], explicit: dict[str, str]) -> dict[str, int]:
    """Field → index of the source column holding it (explicit mapping first, then headings)."""
    wanted = {h.lower(): name for name, headings in HEADINGS.items() for h in headings}
    wanted |= {f.label_zh: f.name for f in CASES.fields if f.name in HEADINGS}
    out: dict[str, int] = {}
    for i, column in enumerate(columns):
        key = column.strip().lstrip("\ufeff")
        name = explicit.get(column) or wanted.get(key) or wanted.get(key.lower())
        if name is not None and name not in out:
            out[name] = i
    return out


def blank(value: Any) -> bool:
    """An empty cell (None, NaN, NaT or spaces)."""
    return (
        value is None
        or (isinstance(value, float) and math.isnan(value))
        or (isinstance(value, np.datetime64) and bool(np.isnat(value)))
        or (isinstance(value, str) and not value.strip())
    )


def cell_text(value: Any) -> str:
    """A cell as text (whole numbers without a decimal point)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def parse_time(value: Any, zone: ZoneInfo) -> datetime:
    """A time as old systems write it (2025-03-01 08:15:00, 2025/3/1 8:15, 2025年3月1日), in the
    county's time zone unless it names its own offset; ValueError when it is none."""
    if isinstance(value, np.datetime64):
        value = str(value)[:19]
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=zone)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=zone)
    raw = str(value).strip()
    found = _TIME.fullmatch(raw)
    if found is None:
        parsed = datetime.fromisoformat(raw)  # an offset such as +08:00
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)
    y, mo, d, h, mi, s = found.groups()
    return datetime(
        int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(float(s or 0)), tzinfo=zone
    )


def normal_name(name: str) -> str:
    """A category name with full-width brackets and spaces evened out."""
    return name.translate(_PARENS)


@dataclass(frozen=True)
class CategoryNames:
    """Every way a file may name a case category: code, name, major/minor, alias, bureau map."""

    names: dict[str, tuple[str, ...]]  # normalised name → codes
    majors: dict[str, str]  # code → major name

    def resolve(self, name: str, major: str | None) -> tuple[str | None, str]:
        """The code `name` stands for, or None and why (unknown or ambiguous)."""
        codes = self.names.get(normal_name(name), ())
        if len(codes) > 1 and major:
            codes = tuple(c for c in codes if self.majors[c] == major.strip())
        if len(codes) == 1:
            return codes[0], ""
        if codes:
            return None, "ambiguous"
        return None, "unknown"


def category_names(conn: Connection, bureau: dict[str, str]) -> CategoryNames:
    """The stored categories and aliases, plus the bureau's own names (name → code)."""
    names: dict[str, set[str]] = {}
    majors: dict[str, str] = {}

    def add(name: str, code: str) -> None:
        names.setdefault(normal_name(name), set()).add(code)

    for code, major, minor in conn.execute(
        text("SELECT code, major_name, minor_name FROM case_categories")
    ).all():
        majors[code] = major
        for name in (code, minor, f"{major}/{minor}", f"{major}-{minor}"):
            add(name, code)
    for alias, code in conn.execute(
        text("SELECT alias, category_code FROM case_category_aliases")
    ).all():
        add(alias, code)
    for name, code in bureau.items():  # a bureau's own word wins over ours
        names[normal_name(name)] = {code}
    return CategoryNames({k: tuple(sorted(v)) for k, v in names.items()}, majors)
