"""Which positions are accepted: on the earth, not from the future, not older than the retention."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from layers.errors import InvalidValue
from layers.tracking.store import Fix


@dataclass(frozen=True)
class Limits:
    """How far ahead of the server's clock and how far back a position may be."""

    retention_days: int
    future_s: float = 300.0


def problem(fix: Fix, now: datetime, limits: Limits) -> InvalidValue | None:
    """Why a position is refused, or None when it is accepted."""
    if not (-180 <= fix.lon <= 180 and -90 <= fix.lat <= 90) or (fix.lon == 0 and fix.lat == 0):
        return InvalidValue(
            f"Coordinates ({fix.lon}, {fix.lat}) are not a position on the earth.",
            f"坐标 ({fix.lon}, {fix.lat}) 不是有效位置。",
            code="invalid_coordinates",
        )
    if fix.time > now + timedelta(seconds=limits.future_s):
        return InvalidValue(
            f"The time {fix.time.isoformat()} is in the future.",
            f"定位时间 {fix.time.isoformat()} 晚于当前时间。",
            code="time_in_future",
        )
    if fix.time < now - timedelta(days=limits.retention_days):
        return InvalidValue(
            f"The time {fix.time.isoformat()} is older than the {limits.retention_days} days "
            "positions are kept.",
            f"定位时间 {fix.time.isoformat()} 早于位置保存期限（{limits.retention_days} 天）。",
            code="time_too_old",
        )
    return None
