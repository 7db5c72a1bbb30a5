"""Field values: one parser from every source (query string, JSON body, file cell, CQL literal).

A value is turned into the type its registry field stores and checked against the declaration
(type, required, bounds, code list, pattern). Every refusal is an `InvalidValue` with the same
machine code whichever way the value came; the source decides only which raw forms are read
(a query string is text, JSON and CQL values are typed, a spreadsheet cell may be a float for an
integer or a datetime for a date, and may give a code by its label).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from layers.errors import InvalidValue
from layers.registry import Field, FieldType, Layer

TRUE_WORDS = frozenset({"true", "1", "yes", "y", "是", "有", "t"})
FALSE_WORDS = frozenset({"false", "0", "no", "n", "否", "无", "f"})
TYPE_ZH = {
    FieldType.TEXT: "文本",
    FieldType.INTEGER: "整数",
    FieldType.REAL: "数值",
    FieldType.DATE: "日期",
    FieldType.TIMESTAMP: "时间",
    FieldType.BOOLEAN: "布尔值",
}


@dataclass(frozen=True)
class Source:
    """Where values come from, which decides the raw forms read (not the checks made)."""

    name: str
    typed: bool  # values keep their JSON or CQL type: "12" is not an integer
    lenient: bool  # a file's cells: numbers as text, whole floats, word booleans, code labels
    needs_zone: bool  # a time without its zone is refused
    compares: bool = False  # a filter's literal, set beside a column: 2.5 may meet an integer
    zone: str | None = None  # the zone of a time given without one (None: left naive)
    where_en: str = ""  # what the message says the value was
    where_zh: str = ""

    def reading(self, zone: str) -> Source:
        """The same source, reading a time without a zone as one in `zone`."""
        return replace(self, zone=zone)


QUERY = Source(
    "query",
    typed=False,
    lenient=False,
    needs_zone=False,
    where_en="query parameter ",
    where_zh="查询参数",
)
JSON = Source("json", typed=True, lenient=False, needs_zone=True)
FILE = Source("file", typed=False, lenient=True, needs_zone=False)
CQL = Source(
    "cql",
    typed=True,
    lenient=False,
    needs_zone=False,
    compares=True,
    where_en="Invalid filter: ",
    where_zh="过滤条件无效：",
)


def parent_field(layer: Layer) -> Field:
    """The link of a child row to its parent, checked as a required reference to a row id."""
    assert layer.parent is not None and layer.parent_key is not None
    return Field(
        layer.parent_key,
        FieldType.INTEGER,
        "上级编号",
        "Parent id",
        required=True,
        references=f"{layer.parent}.id",
    )


def blank(value: Any) -> bool:
    """Whether a value stands for no value: None, NaN, NaT, or text of only spaces."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return True
    if isinstance(value, str):
        return not value.strip()
    return _is_datetime64(value) and str(value) == "NaT"


def parse(f: Field, raw: Any, source: Source) -> Any:
    """`raw` as field `f` stores it, checked against the declaration; None for no value."""
    if raw is None or (source.lenient and blank(raw)):
        if f.required:
            raise missing(f, source)
        return None
    try:
        value = _READERS[f.type](raw, source)
    except (TypeError, ValueError, OverflowError, KeyError):
        value = None
    if value is None:
        raise _wrong_type(f, raw, source)
    _check_bounds(f, raw, value, source)
    if f.codes:
        value = _coded(f, raw, value, source)
    if f.pattern and not re.fullmatch(f.pattern, value):
        raise _refusal(
            "property_bad_format",
            f,
            source,
            f"{raw!r} does not have the required format ({f.pattern})",
            f"{raw!r} 格式不正确（应符合 {f.pattern}）",
        )
    return value


def missing(f: Field, source: Source = JSON) -> InvalidValue:
    """The refusal of a required field given no value."""
    return _refusal("missing_property", f, source, "is required", "为必填项，不能为空")


def _refusal(code: str, f: Field, source: Source, en: str, zh: str, **details: Any) -> InvalidValue:
    return InvalidValue(
        f"{source.where_en}{f.name}: {en}",
        f"{source.where_zh}{f.label_zh}（{f.name}）：{zh}",
        code=code,
        field=f.name,
        **details,
    )


def _wrong_type(f: Field, raw: Any, source: Source) -> InvalidValue:
    zone = f.type is FieldType.TIMESTAMP and source.needs_zone
    return _refusal(
        "property_wrong_type",
        f,
        source,
        f"{raw!r} is not a valid {f.type.value}" + (" with its time zone" if zone else ""),
        f"{raw!r} 不是有效的{TYPE_ZH[f.type]}" + ("（需带时区，如 +08:00）" if zone else ""),
    )


def _check_bounds(f: Field, raw: Any, value: Any, source: Source) -> None:
    low, high = f.bounds
    if (low is not None and not value >= low) or (high is not None and not value <= high):
        raise _refusal(
            "property_out_of_range",
            f,
            source,
            f"{raw!r} is outside {low} to {high}",
            f"{raw!r} 超出允许范围 {low} 至 {high}",
            minimum=low,
            maximum=high,
        )


def _coded(f: Field, raw: Any, value: str, source: Source) -> str:
    """The stored code for `value`; a file may give it by its Chinese or English label."""
    if value in f.code_values:
        return value
    if source.lenient:
        for c in f.codes:
            if value.lower() in (c.value.lower(), c.label_en.lower()) or value == c.label_zh:
                return c.value
    raise _refusal(
        "property_not_in_code_list",
        f,
        source,
        f"{raw!r} is not one of {', '.join(f.code_values)}",
        f"{raw!r} 不在代码表中（{'、'.join(c.label_zh for c in f.codes)}）",
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_datetime64(value: Any) -> bool:
    return type(value).__name__ == "datetime64"  # numpy's, as files read by GDAL give them


def _text(raw: Any, source: Source) -> str | None:
    if isinstance(raw, str):
        return raw.strip() if source.lenient else raw
    if not source.lenient:
        return None
    # a spreadsheet number in a text column (a phone number, a code): all its digits, no ".0"
    return format(raw, ".15g") if isinstance(raw, float) else str(raw)


def _integer(raw: Any, source: Source) -> int | float | None:
    if source.lenient:  # a spreadsheet stores every number as a float: 12.0 is 12
        number = float(raw)
        return int(number) if number.is_integer() else None
    if source.compares:
        return raw if _is_number(raw) else None
    if source.typed:
        return raw if isinstance(raw, int) and not isinstance(raw, bool) else None
    return int(raw)


def _real(raw: Any, source: Source) -> float | None:
    if source.typed:
        return float(raw) if _is_number(raw) else None
    return None if isinstance(raw, bool) else float(raw)


def _date(raw: Any, source: Source) -> date | None:
    if isinstance(raw, datetime):
        return raw.date()
    if isinstance(raw, date):
        return raw
    if _is_datetime64(raw):
        return datetime.fromisoformat(str(raw)[:19]).date()
    if source.typed and not isinstance(raw, str):
        return None
    return date.fromisoformat(str(raw).strip().replace("/", "-")[:10] if source.lenient else raw)


def _timestamp(raw: Any, source: Source) -> datetime | None:
    if isinstance(raw, datetime):
        parsed = raw
    elif _is_datetime64(raw):
        parsed = datetime.fromisoformat(str(raw)[:19])
    elif source.typed and not isinstance(raw, str | date):
        return None
    else:
        parsed = datetime.fromisoformat(str(raw).strip() if source.lenient else str(raw))
    if parsed.tzinfo is None:
        if source.needs_zone:
            return None
        if source.zone is not None:
            return parsed.replace(tzinfo=ZoneInfo(source.zone))
    return parsed


def _boolean(raw: Any, source: Source) -> bool | None:
    if isinstance(raw, bool):
        return raw
    if source.typed:
        return None
    word = str(raw).strip().lower() if source.lenient else str(raw).lower()
    if word in (TRUE_WORDS if source.lenient else {"true"}):
        return True
    if word in (FALSE_WORDS if source.lenient else {"false"}):
        return False
    return None


_READERS: dict[FieldType, Callable[[Any, Source], Any]] = {
    FieldType.TEXT: _text,
    FieldType.INTEGER: _integer,
    FieldType.REAL: _real,
    FieldType.DATE: _date,
    FieldType.TIMESTAMP: _timestamp,
    FieldType.BOOLEAN: _boolean,
}
