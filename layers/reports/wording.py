"""Numbers as a bulletin prints them: counts, rates, changes against the previous period."""

from __future__ import annotations

from typing import Any

NONE = "—"


def count(value: Any) -> str:
    """A count, or — when unknown."""
    return NONE if value is None else str(int(value))


def rate(value: Any) -> str:
    """A rate (0–1) as a percentage with two decimals, or — when nothing was due."""
    return NONE if value is None else f"{100 * float(value):.2f}%"


def number(value: Any, digits: int = 2) -> str:
    """A plain number, or —."""
    return NONE if value is None else f"{float(value):.{digits}f}"


def change(now: Any, before: Any, is_rate: bool = False) -> str:
    """Now against before: a rate in percentage points, a count in per cent (— from nothing)."""
    if now is None or before is None:
        return NONE
    if is_rate:
        points = 100 * (float(now) - float(before))
        return f"{points:+.2f}个百分点"
    if float(before) == 0:
        return NONE
    return f"{100 * (float(now) - float(before)) / float(before):+.1f}%"


def trend_words(now: Any, before: Any) -> str:
    """环比上升 x% / 环比下降 x% / 与上月持平 / 上月为零."""
    if not before:
        return "上月为零"
    ratio = 100 * (float(now) - float(before)) / float(before)
    if abs(ratio) < 0.05:
        return "与上月持平"
    return f"环比{'上升' if ratio > 0 else '下降'}{abs(ratio):.1f}%"
