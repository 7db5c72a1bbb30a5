"""Deadlines in working hours and working days skip nights, lunch and weekends."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from layers.cases.worktime import WorkCalendar

TZ = ZoneInfo("Asia/Shanghai")
CAL = WorkCalendar()


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """A time in January 2023 (the 6th is a Friday)."""
    return datetime(2023, 1, day, hour, minute, tzinfo=TZ)


@pytest.mark.parametrize(
    ("start", "amount", "unit", "deadline"),
    [
        (at(2, 9), 2, "working_hours", at(2, 11)),
        (at(2, 11), 2, "working_hours", at(2, 14, 30)),  # lunch 12:00-13:30 skipped
        (at(6, 16), 4, "working_hours", at(9, 11)),  # Friday 16:00 + 4 h -> Monday 11:00
        (at(7, 10), 2, "working_hours", at(9, 10, 30)),  # reported on Saturday
        (at(2, 20), 1, "working_hours", at(3, 9, 30)),  # after hours
        (at(6, 10), 1, "working_days", at(9, 17, 30)),  # Friday + 1 working day -> Monday
        (at(5, 10), 3, "working_days", at(10, 17, 30)),  # Thursday + 3 -> Tuesday
        (at(8, 10), 1, "working_days", at(9, 17, 30)),  # Sunday + 1 -> Monday
    ],
)
def test_deadlines(start: datetime, amount: int, unit: str, deadline: datetime) -> None:
    assert CAL.add(start, amount, unit) == deadline


def test_unknown_unit_is_refused() -> None:
    with pytest.raises(ValueError):
        CAL.add(at(2, 9), 1, "fortnights")
