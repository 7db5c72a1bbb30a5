"""The bureau's working calendar: deadlines across 2023's statutory holidays and 调休 working days
(expected values counted by hand on the State Council's 2023 notice), a county's own days, unknown
years, the calendar commands, and dispatch through the API."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from click.testing import Result
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from api.app import create_app
from api.cli import app as cli_app
from api.cli_ops import calendar_finding
from api.settings import DatabaseSettings
from layers.cases import workcalendar
from layers.cases.worktime import WorkCalendar
from layers.store import db
from tests.accounts import TEST_AUTH, bearer
from tests.world import EAST_UNIT, World, point

TZ = ZoneInfo("Asia/Shanghai")
COUNTY = "320681"


def at(y: int, m: int, d: int, hour: int, minute: int = 0) -> datetime:
    return datetime(y, m, d, hour, minute, tzinfo=TZ)


@pytest.fixture(scope="module")
def owner(world: World) -> Iterator[Engine]:
    """The world's database as its owner, and the CLI pointed at it."""
    mp = pytest.MonkeyPatch()
    mp.setenv("CITYGRID_DATABASE_URL", world.url)
    engine = db.make_engine(world.url)
    try:
        yield engine
    finally:
        engine.dispose()
        mp.undo()


@pytest.fixture(scope="module")
def default(owner: Engine) -> WorkCalendar:
    """The deployment's calendar as seeded by the migration."""
    with owner.connect() as conn:
        return workcalendar.load(conn, None)


def calendar_cli(*args: str) -> Result:
    return CliRunner().invoke(cli_app, ["calendar", *args], catch_exceptions=False)


def days_stored(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                text("SELECT adcode, day, kind, name, source FROM calendar_days ORDER BY id")
            )
        ]


@pytest.mark.parametrize(
    ("start", "amount", "unit", "deadline", "weekdays_only"),
    [
        # 中秋国庆 2023: 9-29 … 10-06 off, Sat 10-07 and Sun 10-08 worked
        (at(2023, 9, 28, 16), 3, "working_days", at(2023, 10, 9, 17, 30), at(2023, 10, 3, 17, 30)),
        (at(2023, 9, 28, 16), 1, "working_days", at(2023, 10, 7, 17, 30), at(2023, 9, 29, 17, 30)),
        # 1.5 h on Thursday, then 2.5 h on the 调休 Saturday
        (at(2023, 9, 28, 16), 4, "working_hours", at(2023, 10, 7, 11), at(2023, 9, 29, 11)),
        # 劳动节 2023: 4-29 … 5-03 off, Sun 4-23 and Sat 5-06 worked
        (at(2023, 4, 28, 16), 4, "working_hours", at(2023, 5, 4, 11), at(2023, 5, 1, 11)),
        (at(2023, 4, 22, 10), 2, "working_days", at(2023, 4, 24, 17, 30), at(2023, 4, 25, 17, 30)),
        (at(2023, 5, 5, 10), 1, "working_days", at(2023, 5, 6, 17, 30), at(2023, 5, 8, 17, 30)),
        # 春节 2023: 1-21 … 1-27 off, Sat 1-28 and Sun 1-29 worked
        (at(2023, 1, 20, 10), 2, "working_days", at(2023, 1, 29, 17, 30), at(2023, 1, 24, 17, 30)),
        # 3.5 h on Friday 1-20, 3.5 h on the morning of 1-28, 1 h after lunch
        (at(2023, 1, 20, 14), 8, "working_hours", at(2023, 1, 28, 14, 30), at(2023, 1, 23, 14, 30)),
        # 端午 2023: 6-22 … 6-24 off, Sun 6-25 worked
        (at(2023, 6, 21, 17), 1, "working_hours", at(2023, 6, 25, 9), at(2023, 6, 22, 9)),
    ],
)
def test_deadlines_across_2023_holidays_and_working_weekends(
    default: WorkCalendar,
    start: datetime,
    amount: int,
    unit: str,
    deadline: datetime,
    weekdays_only: datetime,
) -> None:
    assert default.add(start, amount, unit) == deadline
    assert WorkCalendar().add(start, amount, unit) == weekdays_only  # what it was before


def test_a_year_outside_the_data_counts_monday_to_friday(owner: Engine) -> None:
    with owner.connect() as conn:
        calendar = workcalendar.load(conn, None)
        unknown = workcalendar.unknown_years(conn, range(2022, 2031))
    assert {2022, 2023, 2026} <= calendar.known_years and 2030 not in calendar.known_years
    assert unknown == [2027, 2028, 2029, 2030]
    # 2030-10-01 is a Tuesday: no holiday is known, so it is a working day
    assert calendar.add(at(2030, 9, 30, 10), 1, "working_days") == at(2030, 10, 1, 17, 30)
    assert calendar.add(at(2030, 10, 4, 16), 4, "working_hours") == at(2030, 10, 7, 11)
    shown = calendar_cli("show", "--year", "2030")
    assert shown.exit_code == 0 and "2030 年未知" in shown.output


def test_check_warns_of_an_unknown_year(owner: Engine) -> None:
    with owner.connect() as conn:
        known = calendar_finding(conn, date(2026, 6, 1))
        unknown = calendar_finding(conn, date(2027, 6, 1))
    assert known.level == "OK" and "2026" in known.zh
    assert unknown.level == "WARN" and "没有 2027 年的节假日" in unknown.zh


def test_show_lists_2023_in_chinese(owner: Engine) -> None:
    shown = calendar_cli("show", "--year", "2023")
    assert shown.exit_code == 0, shown.output
    out = shown.output
    assert "2023-10-07" in out and "上班" in out and "国庆节" in out and "春节" in out
    assert "2023-01-28" in out and "周六" in out and "放假" in out
    assert "08:30-12:00，13:30-17:30" in out and "chinese-calendar 1.11.0" in out
    assert "2024-" not in out


def test_a_county_imports_its_own_days_over_the_default(
    owner: Engine, default: WorkCalendar, tmp_path: Path
) -> None:
    cache = workcalendar.Calendars()
    with owner.connect() as conn:
        before = cache.get(conn, COUNTY)
    assert before.add(at(2023, 9, 28, 16), 3, "working_days") == at(2023, 10, 9, 17, 30)
    own = tmp_path / "本县2023.csv"
    # the county works the National Day Saturday off (its own notice); Sunday stays worked
    own.write_text("日期,类型,名称\n2023-10-07,放假,国庆节（本县）\n", encoding="utf-8")
    imported = calendar_cli("import", str(own), "--county", COUNTY)
    assert imported.exit_code == 0, imported.output
    with owner.connect() as conn:
        after = cache.get(conn, COUNTY)  # the cache noticed the change
        deployment = workcalendar.load(conn, None)
    assert after.add(at(2023, 9, 28, 16), 3, "working_days") == at(2023, 10, 10, 17, 30)
    assert after.add(at(2023, 9, 28, 16), 1, "working_days") == at(2023, 10, 8, 17, 30)
    assert deployment == default  # the deployment's calendar is untouched
    shown = calendar_cli("show", "--year", "2023", "--county", COUNTY)
    assert "国庆节（本县）" in shown.output and "本县" in shown.output
    exported = calendar_cli("export", "--county", COUNTY, "--year", "2023")
    assert "2023-10-07,放假,国庆节（本县）\n2023-10-08,上班,国庆节\n" in exported.output
    # importing the year again replaces the county's rows of that year
    own.write_text("日期,类型,名称\n2023-10-08,放假,国庆节（本县）\n", encoding="utf-8")
    assert calendar_cli("import", str(own), "--county", COUNTY).exit_code == 0
    with owner.connect() as conn:
        again = cache.get(conn, COUNTY)
        owns = conn.execute(
            text("SELECT day FROM calendar_days WHERE adcode = :a"), {"a": COUNTY}
        ).scalars()
        assert list(owns) == [date(2023, 10, 8)]
    assert again.add(at(2023, 9, 28, 16), 1, "working_days") == at(2023, 10, 7, 17, 30)
    with owner.begin() as conn:
        conn.execute(text("DELETE FROM calendar_days WHERE adcode = :a"), {"a": COUNTY})


def test_import_refuses_bad_rows_and_changes_nothing(owner: Engine, tmp_path: Path) -> None:
    before = days_stored(owner)
    bad = tmp_path / "2027.csv"
    bad.write_text(
        "日期,类型,名称\n"
        "2027-01-01,放假,元旦\n"
        "2027-02-30,放假,春节\n"
        "2027-02-07,休息,春节\n"
        "2027-02-08,上班,春节\n"
        "2027-01-01,放假,元旦\n"
        "2027-10-01,放假,\n",
        encoding="utf-8",
    )
    refused = calendar_cli("import", str(bad))
    assert refused.exit_code == 1 and "Traceback" not in refused.output
    assert "5 处错误" in refused.output and "nothing was imported" in refused.output
    with owner.begin() as conn, pytest.raises(workcalendar.CalendarRefused) as caught:
        workcalendar.import_days(conn, bad.read_text(encoding="utf-8"), "test", None)
    assert [(e.row, e.code) for e in caught.value.errors] == [
        (2, "bad_date"),
        (3, "bad_kind"),
        (4, "workday_on_weekday"),
        (5, "duplicate_day"),
        (6, "missing_name"),
    ]
    assert caught.value.errors[3].message == "与第 1 行日期重复"
    headless = tmp_path / "headless.csv"
    headless.write_text("date,kind\n2027-01-01,放假\n", encoding="utf-8")
    refused = calendar_cli("import", str(headless))
    assert refused.exit_code == 1 and "日期,类型,名称" in refused.output
    unknown = calendar_cli("import", str(headless), "--county", "999999")
    assert unknown.exit_code == 1 and "999999" in unknown.output
    assert days_stored(owner) == before


def test_county_office_hours(owner: Engine) -> None:
    assert calendar_cli("hours", "--county", COUNTY, "8 to 5").exit_code == 1
    assert calendar_cli("hours", "--county", COUNTY, "08:00-12:00,14:00-18:00").exit_code == 0
    with owner.connect() as conn:
        summer = workcalendar.load(conn, COUNTY)
    # Friday 2023-06-02 17:00: one hour left that day, three the next Monday from 08:00
    assert summer.add(at(2023, 6, 2, 17), 4, "working_hours") == at(2023, 6, 5, 11)
    assert (
        "08:00-12:00，14:00-18:00"
        in calendar_cli("show", "--year", "2023", "--county", COUNTY).output
    )
    with owner.begin() as conn:
        conn.execute(text("DELETE FROM county_working_hours"))


def test_dispatch_through_the_api_counts_the_countys_calendar(world: World, owner: Engine) -> None:
    """The county declares the next ten days holidays: a 4-hour case dispatched now falls due
    after them."""
    today = datetime.now(TZ).date()
    off = [today + timedelta(days=n) for n in range(10)]
    api = create_app(DatabaseSettings(database_url=world.url), auth_settings=TEST_AUTH)
    with TestClient(api) as client:
        feature = {
            "type": "Feature",
            "geometry": point(1, 60),
            "properties": {"category_code": "E0101", "description": "私搭乱建"},
        }
        made = client.post(
            "/cases", data={"feature": json.dumps(feature)}, headers=bearer("inspector")
        )
        assert made.status_code == 201, made.text
        case_id = made.json()["id"]
        assert (
            client.post(
                f"/cases/{case_id}/transitions",
                json={"action": "register"},
                headers=bearer("dispatcher"),
            ).status_code
            == 200
        )
        with owner.begin() as conn:
            conn.execute(
                text("""
                INSERT INTO calendar_days (adcode, day, kind, name, source)
                SELECT :a, d, 'holiday', '测试假期', 'test' FROM unnest(CAST(:days AS date[])) AS d
            """),
                {"a": COUNTY, "days": off},
            )
            version = conn.execute(
                text("SELECT version FROM layer_versions WHERE layer = 'calendar_days'")
            ).scalar_one()
        watcher = api.state.layer_versions
        for _ in range(100):  # the notification reaches the listener thread
            if (watcher.current("calendar_days") or 0) >= version:
                break
            time.sleep(0.05)
        answer = client.post(
            f"/cases/{case_id}/transitions",
            json={"action": "dispatch", "unit": EAST_UNIT},
            headers=bearer("dispatcher"),
        )
        assert answer.status_code == 200, answer.text
    with owner.begin() as conn:
        row = conn.execute(
            text("SELECT dispatched_at, deadline FROM cases WHERE id = :id"), {"id": case_id}
        ).one()
        conn.execute(text("DELETE FROM calendar_days WHERE adcode = :a"), {"a": COUNTY})
    due = row.deadline.astimezone(TZ)
    first_free = next(
        d for d in (off[-1] + timedelta(days=n) for n in range(1, 10)) if d.weekday() < 5
    )
    # nothing counts today (a holiday): 3.5 h in the morning, half an hour after lunch
    assert due == datetime(first_free.year, first_free.month, first_free.day, 14, tzinfo=TZ)
    assert due > WorkCalendar().add(row.dispatched_at, 4, "working_hours")
