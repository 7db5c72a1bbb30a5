"""Working-time arithmetic for case deadlines: working hours and working days, skipping nights,
weekends and statutory holidays, and counting the weekend days made working days (调休)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

WORKING_HOURS = "working_hours"
WORKING_DAYS = "working_days"
DEFAULT_PERIODS = ((time(8, 30), time(12, 0)), (time(13, 30), time(17, 30)))


@dataclass(frozen=True)
class WorkCalendar:
    """Office periods of a working day; Monday to Friday unless `holidays` or `workdays` (调休
    上班) say otherwise. `known_years` are the years the day lists cover (others: Monday–Friday)."""

    periods: tuple[tuple[time, time], ...] = field(default=DEFAULT_PERIODS)
    holidays: frozenset[date] = frozenset()
    workdays: frozenset[date] = frozenset()
    known_years: frozenset[int] = frozenset()

    def is_working_day(self, day: date) -> bool:
        """A 调休 working day, or Monday to Friday when no holiday."""
        if day in self.workdays:
            return True
        return day.weekday() < 5 and day not in self.holidays

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


def parse_periods(value: str) -> tuple[tuple[time, time], ...]:
    """Office periods from text such as "08:30-12:00,13:30-17:30"; ValueError when malformed."""
    periods: list[tuple[time, time]] = []
    for part in value.replace("，", ",").split(","):
        begin, sep, end = part.strip().replace("–", "-").partition("-")
        if not sep:
            raise ValueError(f"not a period: {part!r}")
        lo, hi = time.fromisoformat(begin.strip()), time.fromisoformat(end.strip())
        if lo >= hi or (periods and lo < periods[-1][1]):
            raise ValueError(f"periods out of order: {value!r}")
        periods.append((lo, hi))
    if not periods:
        raise ValueError("no period")
    return tuple(periods)


def format_periods(periods: tuple[tuple[time, time], ...]) -> str:
    """Office periods as text, "08:30-12:00,13:30-17:30"."""
    return ",".join(f"{lo:%H:%M}-{hi:%H:%M}" for lo, hi in periods)
