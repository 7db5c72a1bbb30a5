"""Working-time arithmetic for case deadlines: working hours and working days, weekends skipped."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

WORKING_HOURS = "working_hours"
WORKING_DAYS = "working_days"


@dataclass(frozen=True)
class WorkCalendar:
    """Office periods of a working day (Monday to Friday); public holidays are not modelled."""

    periods: tuple[tuple[time, time], ...] = field(
        default=((time(8, 30), time(12, 0)), (time(13, 30), time(17, 30)))
    )

    def is_working_day(self, day: date) -> bool:
        """Monday to Friday."""
        return day.weekday() < 5

    def next_working_day(self, day: date) -> date:
        """The first working day after `day`."""
        day += timedelta(days=1)
        while not self.is_working_day(day):
            day += timedelta(days=1)
        return day

    def add(self, start: datetime, amount: int, unit: str) -> datetime:
        """The deadline `amount` working hours or working days after `start`."""
        if unit == WORKING_HOURS:
            return self.add_hours(start, timedelta(hours=amount))
        if unit == WORKING_DAYS:
            return self.add_days(start, amount)
        raise ValueError(f"unknown time unit {unit!r}")

    def add_hours(self, start: datetime, amount: timedelta) -> datetime:
        """Count `amount` of office time forward from `start`."""
        remaining = amount
        day = start.date()
        cursor = start
        while True:
            if self.is_working_day(day):
                for begin, end in self.periods:
                    lo = max(cursor, datetime.combine(day, begin, start.tzinfo))
                    hi = datetime.combine(day, end, start.tzinfo)
                    if lo >= hi:
                        continue
                    if hi - lo >= remaining:
                        return lo + remaining
                    remaining -= hi - lo
            day = self.next_working_day(day)
            cursor = datetime.combine(day, time(0), start.tzinfo)

    def add_days(self, start: datetime, amount: int) -> datetime:
        """The close of office on the `amount`-th working day after the day of `start`."""
        day = start.date()
        for _ in range(amount):
            day = self.next_working_day(day)
        return datetime.combine(day, self.periods[-1][1], start.tzinfo)
