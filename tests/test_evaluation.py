"""The evaluation on a hand-built set of cases equals the values worked out by hand.

Period: May 2026, the demo county's four sections S0–S3 (S0, S1 west; S2, S3 east), units U1
(启东测试中队) and U2 (二中队). Times are local, on the 2026-05 day given.
  1  S0 insp-1 reports 06 09:00; registered 09:10; disp-1 dispatches 09:30 to U1 (on time);
     handled 12:00, feedback 12:05, insp-1 passes 13:00 (on time), closed 13:10; due 06 14:00.
  2  S0 insp-1 reports 07 09:00; registered 09:05; disp-1 dispatches 11:00 to U1 (late);
     handled 15:00, feedback 15:10, insp-2 fails 20:00 (late: rework); handled again 08 10:00,
     feedback 10:10, insp-2 passes 10:30 (on time), closed 11:00; due 08 09:00 (late).
  3  S1 insp-2 reports 10 09:00 (a Sunday); registered 09:10; disp-2 dispatches 09:20 to U2 (on
     time), U2 returns it 10:00 (a wrong dispatch); disp-1 dispatches 12:00 to U1 (2 h after the
     return, but on a rest day: on time); extension granted; supervised 12 09:00; due 20 18:00,
     not handled.
  4  S2 hotline 12 08:00, verify due 12:00, insp-1 verifies 10:00; registered 10:30; disp-2
     dispatches 10:40 to U2; handled 13 09:00, feedback 09:10, insp-1 passes 15:00 (late),
     closed 15:30; due 14 10:00.
  5  S2 public 15 08:00, verify due 12:00, insp-2 verifies 14:00 (late), not found: cancelled.
  6  S3 insp-2 reports 16 09:00, cancelled 09:30 as invalid.
  8  S1 insp-1 reports 04-28; registered and dispatched by disp-1 04-28 to U2 (before the
     period); handled 02 09:00, closed 02 11:00; due 02 10:00 (handled on time, closed late).
  9  S3 insp-1 reports 30 09:00; registered 09:10; disp-1 dispatches 09:20 to U2; due 06-02.
  B  三元区 S0: insp-b reports 06 09:00; registered 09:10; disp-b dispatches 09:20; closed on time.
The demo rows of tests/counties.py lie in March, outside the period. insp-1 patrols S0 and S1,
insp-2 S2 and S3. Limits are working hours (08:30–12:00, 13:30–17:30; 2026-05-06/07 are working
days, 05-30 a Saturday): dispatch 1 h, check 4 h, register 1 h, close 1 h.

A second set, October 2025 (holidays 10-01 to 10-08; 09-30 and Saturday 10-11 are working days),
for the shift leaders (lead-1, lead-2), the desk operator (op-1) and working time:
  C1 S0 insp-1 reports 09-30 16:00; lead-1 registers 09-30 17:00; disp-1 dispatches 10-09 09:00
     (30 min before the holiday + 30 min after it: 1 h, on time); feedback 10-10 16:00; insp-1
     passes Saturday 10-11 09:30 (1 h 30 + 1 h, on time); lead-1 closes 10:00 (on time).
  C2 S1 insp-2 reports 10-09 09:00; lead-1 registers 11:00 (late); disp-2 dispatches 11:30 (on
     time); feedback 10-10 17:00; insp-1 passes Monday 10-13 12:00 (30 min + the working
     Saturday's 7 h 30 + 3 h 30: late, though on time were Saturday a rest day); lead-2 closes
     15:00 (1 h 30 after: late).
  C3 S2 insp-1 reports 10-09 14:00; lead-2 registers 14:10; lead-1 cancels it 14:30 (duplicate).
  C4 S3 hotline entered by op-1 10-10 09:00, verify due 11:00; insp-2 verifies 10:00; lead-2
     registers 10:20 (20 min after the verification: on time).
  C5 S3 hotline entered by op-1 10-10 10:00, verify due 12:00; insp-2 verifies 15:00 (late), not
     found: cancelled.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine
from typer.testing import CliRunner

from api.app import create_app
from api.cli import app as cli_app
from api.config_file import CONFIG_ENV
from api.settings import DatabaseSettings, EvaluationSettings
from layers.cases import evaluation, evalweights
from layers.cases.codes import seed_case_categories
from layers.engine.access import Viewer
from layers.errors import ConfigError
from layers.registry import Role
from layers.store import db
from tests.accounts import TEST_AUTH, bearer, ensure_account
from tests.casebook import store_case
from tests.counties import DEMO, SANYUAN, CountyRows, two_counties
from tests.databases import fresh_database

PERIOD = {"from": "2026-05-01", "to": "2026-05-31"}
OCTOBER = {"from": "2025-10-01", "to": "2025-10-31"}
U1, U2, UB = "启东测试中队", "二中队", "三元区测试中队"


@dataclass(frozen=True)
class Case:
    """A case row and its events (action, at, actor, from, to)."""

    section: int
    source: str
    status: str
    reporter: str | None
    stamps: dict[str, str]
    unit: str | None = None
    extensions: int = 0
    supervisions: int = 0
    events: tuple[tuple[str, str, str, str, str], ...] = ()
    self_handled: bool = False


CASES = (
    Case(
        0, "inspector", "closed", "insp-1",
        {"reported_at": "05-06 09:00", "registered_at": "05-06 09:10",
         "dispatched_at": "05-06 09:30", "handled_at": "05-06 12:00",
         "feedback_at": "05-06 12:05", "verified_at": "05-06 13:00",
         "closed_at": "05-06 13:10", "deadline": "05-06 14:00"},
        U1,
        events=(
            ("dispatch", "05-06 09:30", "disp-1", "registered", "dispatched"),
            ("feedback", "05-06 12:05", "h-1", "handled", "feedback"),
            ("pass", "05-06 13:00", "insp-1", "feedback", "verified"),
        ),
    ),
    Case(
        0, "inspector", "closed", "insp-1",
        {"reported_at": "05-07 09:00", "registered_at": "05-07 09:05",
         "dispatched_at": "05-07 11:00", "handled_at": "05-08 10:00",
         "feedback_at": "05-08 10:10", "verified_at": "05-08 10:30",
         "closed_at": "05-08 11:00", "deadline": "05-08 09:00"},
        U1,
        events=(
            ("dispatch", "05-07 11:00", "disp-1", "registered", "dispatched"),
            ("feedback", "05-07 15:10", "h-1", "handled", "feedback"),
            ("fail", "05-07 20:00", "insp-2", "feedback", "rework"),
            ("feedback", "05-08 10:10", "h-1", "handled", "feedback"),
            ("pass", "05-08 10:30", "insp-2", "feedback", "verified"),
        ),
    ),
    Case(
        1, "inspector", "dispatched", "insp-2",
        {"reported_at": "05-10 09:00", "registered_at": "05-10 09:10",
         "dispatched_at": "05-10 12:00", "deadline": "05-20 18:00"},
        U1, extensions=1, supervisions=1,
        events=(
            ("dispatch", "05-10 09:20", "disp-2", "registered", "dispatched"),
            ("return", "05-10 10:00", "h-2", "dispatched", "returned"),
            ("dispatch", "05-10 12:00", "disp-1", "returned", "dispatched"),
            ("approve_extension", "05-11 09:00", "disp-1", "dispatched", "dispatched"),
            ("supervise", "05-12 09:00", "leader", "dispatched", "dispatched"),
        ),
    ),
    Case(
        2, "hotline", "closed", "disp-2",
        {"reported_at": "05-12 08:00", "verify_deadline": "05-12 12:00",
         "confirmed_at": "05-12 10:00", "registered_at": "05-12 10:30",
         "dispatched_at": "05-12 10:40", "handled_at": "05-13 09:00",
         "feedback_at": "05-13 09:10", "verified_at": "05-13 15:00",
         "closed_at": "05-13 15:30", "deadline": "05-14 10:00"},
        U2,
        events=(
            ("verify", "05-12 10:00", "insp-1", "unverified", "reported"),
            ("dispatch", "05-12 10:40", "disp-2", "registered", "dispatched"),
            ("feedback", "05-13 09:10", "h-2", "handled", "feedback"),
            ("pass", "05-13 15:00", "insp-1", "feedback", "verified"),
        ),
    ),
    Case(
        2, "public", "cancelled", None,
        {"reported_at": "05-15 08:00", "verify_deadline": "05-15 12:00",
         "closed_at": "05-15 14:00"},
        events=(("verify", "05-15 14:00", "insp-2", "unverified", "cancelled"),),
    ),
    Case(
        3, "inspector", "cancelled", "insp-2",
        {"reported_at": "05-16 09:00", "closed_at": "05-16 09:30"},
        events=(("cancel", "05-16 09:30", "disp-1", "reported", "cancelled"),),
    ),
    Case(
        1, "inspector", "closed", "insp-1",
        {"reported_at": "04-28 09:00", "registered_at": "04-28 09:10",
         "dispatched_at": "04-28 10:00", "handled_at": "05-02 09:00",
         "closed_at": "05-02 11:00", "deadline": "05-02 10:00"},
        U2,
        events=(("dispatch", "04-28 10:00", "disp-1", "registered", "dispatched"),),
    ),
    Case(
        3, "inspector", "dispatched", "insp-1",
        {"reported_at": "05-30 09:00", "registered_at": "05-30 09:10",
         "dispatched_at": "05-30 09:20", "deadline": "06-02 09:20"},
        U2,
        events=(("dispatch", "05-30 09:20", "disp-1", "registered", "dispatched"),),
    ),
)  # fmt: skip
OCTOBER_CASES = (
    Case(
        0, "inspector", "closed", "insp-1",
        {"reported_at": "2025-09-30 16:00", "registered_at": "2025-09-30 17:00",
         "dispatched_at": "2025-10-09 09:00", "handled_at": "2025-10-09 10:00",
         "feedback_at": "2025-10-10 16:00", "verified_at": "2025-10-11 09:30",
         "closed_at": "2025-10-11 10:00", "deadline": "2025-10-13 17:30"},
        U1,
        events=(
            ("register", "2025-09-30 17:00", "lead-1", "reported", "registered"),
            ("dispatch", "2025-10-09 09:00", "disp-1", "registered", "dispatched"),
            ("feedback", "2025-10-10 16:00", "h-1", "handled", "feedback"),
            ("pass", "2025-10-11 09:30", "insp-1", "feedback", "verified"),
            ("close", "2025-10-11 10:00", "lead-1", "verified", "closed"),
        ),
    ),
    Case(
        1, "inspector", "closed", "insp-2",
        {"reported_at": "2025-10-09 09:00", "registered_at": "2025-10-09 11:00",
         "dispatched_at": "2025-10-09 11:30", "handled_at": "2025-10-10 16:50",
         "feedback_at": "2025-10-10 17:00", "verified_at": "2025-10-13 12:00",
         "closed_at": "2025-10-13 15:00", "deadline": "2025-10-10 17:30"},
        U1,
        events=(
            ("register", "2025-10-09 11:00", "lead-1", "reported", "registered"),
            ("dispatch", "2025-10-09 11:30", "disp-2", "registered", "dispatched"),
            ("feedback", "2025-10-10 17:00", "h-1", "handled", "feedback"),
            ("pass", "2025-10-13 12:00", "insp-1", "feedback", "verified"),
            ("close", "2025-10-13 15:00", "lead-2", "verified", "closed"),
        ),
    ),
    Case(
        2, "inspector", "cancelled", "insp-1",
        {"reported_at": "2025-10-09 14:00", "registered_at": "2025-10-09 14:10",
         "closed_at": "2025-10-09 14:30"},
        events=(
            ("register", "2025-10-09 14:10", "lead-2", "reported", "registered"),
            ("cancel", "2025-10-09 14:30", "lead-1", "registered", "cancelled"),
        ),
    ),
    Case(
        3, "hotline", "registered", "op-1",
        {"reported_at": "2025-10-10 09:00", "verify_deadline": "2025-10-10 11:00",
         "confirmed_at": "2025-10-10 10:00", "registered_at": "2025-10-10 10:20"},
        events=(
            ("verify", "2025-10-10 10:00", "insp-2", "unverified", "reported"),
            ("register", "2025-10-10 10:20", "lead-2", "reported", "registered"),
        ),
    ),
    Case(
        3, "hotline", "cancelled", "op-1",
        {"reported_at": "2025-10-10 10:00", "verify_deadline": "2025-10-10 12:00",
         "closed_at": "2025-10-10 15:00"},
        events=(("verify", "2025-10-10 15:00", "insp-2", "unverified", "cancelled"),),
    ),
)  # fmt: skip
# December 2025: insp-2 fixes one problem on the spot (自行处置) and reports another, cancelled
DECEMBER = {"from": "2025-12-01", "to": "2025-12-31"}
DECEMBER_CASES = (
    Case(
        2, "inspector", "closed", "insp-2",
        {"reported_at": "2025-12-01 09:00", "handled_at": "2025-12-01 09:30",
         "closed_at": "2025-12-01 09:30"},
        events=(("self_handle", "2025-12-01 09:30", "insp-2", "reported", "closed"),),
        self_handled=True,
    ),
    Case(
        3, "inspector", "cancelled", "insp-2",
        {"reported_at": "2025-12-02 09:00", "closed_at": "2025-12-02 10:00"},
        events=(("cancel", "2025-12-02 10:00", "lead-1", "reported", "cancelled"),),
    ),
)  # fmt: skip
SANYUAN_CASE = Case(
    0, "inspector", "closed", "insp-b",
    {"reported_at": "05-06 09:00", "registered_at": "05-06 09:10",
     "dispatched_at": "05-06 09:20", "handled_at": "05-06 10:00",
     "closed_at": "05-06 11:00", "deadline": "05-07 09:20"},
    UB,
    events=(("dispatch", "05-06 09:20", "disp-b", "registered", "dispatched"),),
)  # fmt: skip


def store(conn: Connection, rows: CountyRows, case: Case) -> None:
    """The case, its report in the audit log and its events, written straight into the tables."""
    columns = {
        "source": case.source,
        "status": case.status,
        "unit": case.unit,
        "extensions": case.extensions,
        "supervisions": case.supervisions,
        "self_handled": case.self_handled,
    }
    store_case(conn, rows, case.section, columns, case.stamps, case.reporter, case.events)


@dataclass(frozen=True)
class World:
    """The database with both counties and the hand-built cases."""

    url: str
    engine: Engine
    demo: CountyRows
    second: CountyRows


@pytest.fixture(scope="module")
def world(pg_server: Any) -> Iterator[World]:
    databases = fresh_database(pg_server, "evaluation")
    url = next(databases)
    engine = db.make_engine(pg_server.as_owner(url))
    with engine.begin() as conn:
        seed_case_categories(conn)
        demo, second = two_counties(conn)
        for case in (*CASES, *OCTOBER_CASES, *DECEMBER_CASES):
            store(conn, demo, case)
        store(conn, second, SANYUAN_CASE)
    s = demo.sections
    for name, grids in (("insp-1", (s[0], s[1])), ("insp-2", (s[2], s[3]))):
        ensure_account(engine, name, "inspector", grids=grids, counties=(DEMO,))
    for name, role, held in (
        ("leader-a", "leader", (DEMO,)),
        ("leader-city", "leader", (DEMO, SANYUAN)),
        ("dispatcher-b", "dispatcher", (SANYUAN,)),
        ("inspector-a", "inspector", (DEMO,)),
        ("handler-a", "handler", (DEMO,)),
    ):
        ensure_account(engine, name, role, unit=U1 if role == "handler" else None, counties=held)
    yield World(url, engine, demo, second)
    engine.dispose()
    next(databases, None)


@pytest.fixture(scope="module")
def client(world: World) -> Iterator[TestClient]:
    app = create_app(DatabaseSettings(database_url=world.url), auth_settings=TEST_AUTH)
    with TestClient(app) as c:
        c.headers.update(bearer("leader-city"))
        yield c


def table(client: TestClient, object_: str, **extra: str) -> dict[Any, dict[str, Any]]:
    answer = client.get("/stats/evaluation", params={**PERIOD, "object": object_, **extra})
    assert answer.status_code == 200, answer.text
    return {
        (r.get("post"), r["key"]) if object_ == "post" else r["key"]: r
        for r in answer.json()["rows"]
    }


def pick(row: dict[str, Any], *names: str) -> tuple[Any, ...]:
    return tuple(row[n] for n in names)


REGION = (
    "received", "registered", "registration_rate", "due", "closed", "closed_rate",
    "closed_on_time", "on_time_closed_rate", "score", "grade",
)  # fmt: skip


def test_regions_per_section(client: TestClient, world: World) -> None:
    rows = table(client, "region", level="section")
    s = world.demo.sections
    assert pick(rows[s[0]], *REGION) == (2, 2, 1.0, 2, 2, 1.0, 1, 0.5, 75.0, "B")
    # case 8 is due in May though reported in April; case 3 is due and open
    assert pick(rows[s[1]], *REGION) == (1, 1, 1.0, 2, 1, 0.5, 0, 0.0, 35.0, "E")
    # case 5 was cancelled on verification: received, never registered, never due
    assert pick(rows[s[2]], *REGION) == (2, 1, 0.5, 1, 1, 1.0, 1, 1.0, 90.0, "A")
    # nothing due: only the registration rate weighs
    assert pick(rows[s[3]], *REGION) == (2, 1, 0.5, 0, 0, None, 0, None, 50.0, "D")
    assert rows[world.second.sections[0]]["adcode"] == SANYUAN
    assert pick(rows[world.second.sections[0]], *REGION)[-2:] == (100.0, "A")


def test_regions_per_street(client: TestClient, world: World) -> None:
    row = table(client, "region")[world.demo.street]
    # 50 × 0.4 + 30 × 0.8 + 20 × 0.7143
    assert pick(row, *REGION) == (7, 5, 0.7143, 5, 4, 0.8, 2, 0.4, 58.29, "D")
    assert row["label"]


DEPARTMENT = (
    "due", "handled", "handled_rate", "handled_on_time", "on_time_handled_rate", "reworked",
    "rework_rate", "extended", "extension_rate", "supervised", "score", "grade",
)  # fmt: skip


def test_departments(client: TestClient) -> None:
    rows = table(client, "department")
    # 50 × 0.3333 + 30 × 0.6667 + 10 × (1 − 0.3333) + (10 − 0.5 × 1)
    assert pick(rows[U1], *DEPARTMENT) == (
        3, 2, 0.6667, 1, 0.3333, 1, 0.3333, 1, 0.3333, 1, 52.83, "D"
    )  # fmt: skip
    # case 3 was first sent to U2 but is U1's now; case 9 is not due in May
    assert pick(rows[U2], *DEPARTMENT) == (2, 2, 1.0, 2, 1.0, 0, 0.0, 0, 0.0, 0, 100.0, "A")
    assert rows[UB]["adcode"] == SANYUAN


POST = (
    "reports", "valid_reports", "valid_report_rate", "verifications", "verified_on_time",
    "on_time_verify_rate", "checks", "checked_on_time", "on_time_check_rate", "dispatches",
    "dispatched_on_time", "on_time_dispatch_rate", "accurate_dispatches",
    "accurate_dispatch_rate", "score", "grade",
)  # fmt: skip


def test_posts(client: TestClient) -> None:
    rows = table(client, "post")
    # 40 × 1 + 20 × (1 − 1/3) + 20 × 1 + 20 × 0.5; insp-2 reported case 3 in insp-1's S1
    assert pick(rows[("inspector", "insp-1")], *POST) == (
        3, 3, 1.0, 1, 1, 1.0, 2, 1, 0.5, 0, 0, None, 0, None, 83.33, "B"
    )  # fmt: skip
    assert pick(rows[("inspector", "insp-1")], *MISSED) == (3, 1, 0.3333)
    # the fail at 20:00 came 2 h 20 min of office time after feedback (wall clock: 4 h 50);
    # the pass 20 min after the new one. 40 × 0.5 + 20 × (1 − 1) + 20 × 0 + 20 × 1
    assert pick(rows[("inspector", "insp-2")], *POST) == (
        2, 1, 0.5, 1, 0, 0.0, 2, 2, 1.0, 0, 0, None, 0, None, 40.0, "D"
    )  # fmt: skip
    # cases 4 (the hotline's) and 9 (insp-1's) in S2 and S3, neither reported by insp-2
    assert pick(rows[("inspector", "insp-2")], *MISSED) == (2, 2, 1.0)
    # case 8's dispatch was in April; case 2's came 1 h 55 after registration (late); case 3's
    # second, 2 h after the return, and case 9's came on a Sunday and a Saturday, rest days
    # (no office time passed: on time)
    assert pick(rows[("dispatcher", "disp-1")], *POST) == (
        0, 0, None, 0, 0, None, 0, 0, None, 4, 3, 0.75, 4, 1.0, 87.5, "B"
    )  # fmt: skip
    # case 3's first dispatch was returned: not accurate
    assert pick(rows[("dispatcher", "disp-2")], *POST) == (
        0, 0, None, 0, 0, None, 0, 0, None, 2, 2, 1.0, 1, 0.5, 75.0, "B"
    )  # fmt: skip
    assert ("inspector", "disp-2") not in rows  # a hotline report taken at the desk
    assert pick(rows[("operator", "disp-2")], "reports", "valid_reports", "score") == (1, 1, 100.0)
    assert {k for k, r in rows.items() if r["adcode"] == SANYUAN} == {
        ("inspector", "insp-b"),
        ("dispatcher", "disp-b"),
    }


MISSED = ("area_registered", "missed_reports", "missed_report_rate")
SHIFT = (
    "registrations", "registered_on_time", "on_time_register_rate", "accurate_registrations",
    "accurate_register_rate", "closes", "closed_on_time", "on_time_close_rate", "score", "grade",
)  # fmt: skip


def test_shift_leaders_register_and_close_in_working_time(client: TestClient) -> None:
    rows = table(client, "post", **OCTOBER)
    # C1's registration was in September; C2's came 2 h after the report; C1 closed 30 min
    # after its check: 40 × 0 + 30 × 1 + 30 × 1
    assert pick(rows[("shift_leader", "lead-1")], *SHIFT) == (
        1, 0, 0.0, 1, 1.0, 1, 1, 1.0, 60.0, "C"
    )  # fmt: skip
    # C3 registered on time but cancelled as a duplicate; C4 20 min after its verification;
    # C2 closed 1 h 30 of office time after its check: 40 × 1 + 30 × 0.5 + 30 × 0
    assert pick(rows[("shift_leader", "lead-2")], *SHIFT) == (
        2, 2, 1.0, 1, 0.5, 1, 0, 0.0, 55.0, "D"
    )  # fmt: skip
    assert ("shift_leader", "disp-1") not in rows and ("dispatcher", "lead-1") not in rows


def test_desk_operators_count_their_valid_entries(client: TestClient) -> None:
    rows = table(client, "post", **OCTOBER)
    # C4 registered, C5 not found on site
    assert pick(rows[("operator", "op-1")], "post", "reports", "valid_reports") == (
        "operator", 2, 1
    )  # fmt: skip
    assert pick(rows[("operator", "op-1")], "valid_report_rate", "score", "grade") == (
        0.5, 50.0, "D"
    )  # fmt: skip
    assert ("inspector", "op-1") not in rows


def test_a_problem_fixed_on_the_spot_is_a_valid_report(client: TestClient) -> None:
    rows = table(client, "post", **DECEMBER)
    # the 自行处置 counts as valid though never registered; the cancelled report does not
    assert pick(rows[("inspector", "insp-2")], "reports", "valid_reports", "valid_report_rate") == (
        2, 1, 0.5
    )  # fmt: skip


def test_inspectors_across_the_holiday_and_the_working_saturday(client: TestClient) -> None:
    rows = table(client, "post", **OCTOBER)
    insp1, insp2 = rows[("inspector", "insp-1")], rows[("inspector", "insp-2")]
    # C3 registered then cancelled: not a valid report. C2 (insp-2's) registered in S1.
    # Checks: C1 on time over the holiday's end, C2 late over the working Saturday.
    # 40 × 0 + 20 × (1 − 1) + 20 × 0.5, out of 80 (nothing to verify)
    assert pick(insp1, *POST[:9], *MISSED, "score", "grade") == (
        1, 0, 0.0, 0, 0, None, 2, 1, 0.5, 1, 1, 1.0, 12.5, "E"
    )  # fmt: skip
    # C4 (op-1's, registered in S3) counts as missed; C3 is cancelled and does not.
    # 40 × 1 + 20 × 0 + 20 × 0.5, out of 80 (nothing to check)
    assert pick(insp2, *POST[:9], *MISSED, "score", "grade") == (
        1, 1, 1.0, 2, 1, 0.5, 0, 0, None, 1, 1, 1.0, 62.5, "C"
    )  # fmt: skip
    # C1: 30 min before the holiday and 30 min after it; wall clock: 9 days
    assert pick(rows[("dispatcher", "disp-1")], "dispatches", "dispatched_on_time") == (1, 1)
    assert pick(rows[("dispatcher", "disp-2")], "dispatches", "dispatched_on_time") == (1, 1)


def test_limits_are_settings_in_working_hours(world: World) -> None:
    query = evaluation.EvaluationQuery(
        "post",
        date(2025, 10, 1),
        date(2025, 10, 31),
        Viewer("leader-a", Role.LEADER, counties=(DEMO,)),
    )
    tight = evaluation.Limits(dispatch_hours=0.5, check_hours=12, close_hours=2)
    with world.engine.connect() as conn:
        found = {(r["post"], r["key"]): r for r in evaluation.rows(conn, query, limits=tight)}
    assert found[("dispatcher", "disp-1")]["dispatched_on_time"] == 0  # 1 h > 30 min
    assert found[("dispatcher", "disp-2")]["dispatched_on_time"] == 1  # 30 min
    assert found[("inspector", "insp-1")]["checked_on_time"] == 2  # 11 h 30 ≤ 12 h
    assert found[("shift_leader", "lead-2")]["closed_on_time"] == 1  # 1 h 30 ≤ 2 h


def test_a_leader_of_one_county_sees_only_its_rows(client: TestClient) -> None:
    for object_ in evaluation.OBJECTS:
        for account, county in (("leader-a", DEMO), ("dispatcher-b", SANYUAN)):
            answer = client.get(
                "/stats/evaluation",
                params={**PERIOD, "object": object_},
                headers=bearer(account),
            )
            assert answer.status_code == 200, answer.text
            found = {r["adcode"] for r in answer.json()["rows"]}
            assert found == {county}, (object_, account)


@pytest.mark.parametrize("account", ["inspector-a", "handler-a"])
def test_inspectors_and_handlers_may_not_read_the_evaluation(
    client: TestClient, account: str
) -> None:
    answer = client.get(
        "/stats/evaluation", params={**PERIOD, "object": "region"}, headers=bearer(account)
    )
    assert answer.status_code == 403 and answer.json()["code"] == "forbidden"


def test_csv_has_chinese_headers(client: TestClient, world: World) -> None:
    answer = client.get(
        "/stats/evaluation", params={**PERIOD, "object": "department", "format": "csv"}
    )
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    lines = answer.content.decode("utf-8-sig").splitlines()
    assert lines[0] == (
        "县级行政区,编码/名称,名称,应处置数,处置数,处置率,按期处置数,按期处置率,返工数,返工率,"
        "延期数,延期率,督办数,综合得分,等级"
    )
    assert f"{DEMO},{U2},{U2},2,2,1.0,2,1.0,0,0.0,0,0.0,0,100.0,A" in lines
    posts = client.get("/stats/evaluation", params={**PERIOD, "object": "post", "format": "csv"})
    assert ",监督员," in posts.content.decode("utf-8-sig")


def weights_text(region: str = "", county: str = "") -> str:
    """The packaged weights with the region's defaults replaced and a county's section added."""
    packaged = evalweights.data_file(evalweights.PACKAGED).read_text(encoding="utf-8")
    head, _, tail = packaged.partition("[default.region]")
    rest = tail[tail.index("[default.department]") :]
    return f"{head}[default.region]\n{region}\n{rest}\n{county}\n"


def test_weights_per_county_override_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "weights.toml"
    path.write_text(
        weights_text(
            "closed_rate = 50\non_time_closed_rate = 50",
            f'[county."{SANYUAN}".region]\nclosed_rate = 75\non_time_closed_rate = 25',
        ),
        encoding="utf-8",
    )
    weights = evaluation.load_weights(path)
    row = {"closed_rate": 1.0, "on_time_closed_rate": 0.0, "registration_rate": 0.0}
    assert evaluation.score(row, evaluation.weights_for(weights, DEMO, "region")) == 50.0
    assert evaluation.score(row, evaluation.weights_for(weights, SANYUAN, "region")) == 75.0
    assert [evaluation.grade(v) for v in (90, 89.99, 75, 60, 40, 39.9, None)] == [
        "A", "B", "B", "C", "D", "E", None
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("region", "county", "phrase"),
    [
        ("closed_rate = 50\non_time_closed_rate = 40", "", "sum to 90"),
        ("closed_rate = 50\nclosing_speed = 50", "", "closing_speed"),
        ("closed_rate = 100", f'[county."{SANYUAN}".region]\nregistration_rate = 20', "120"),
        ("closed_rate = 100", f'[county."{SANYUAN}".street]\nclosed_rate = 100', "street"),
        ("closed_rate = -100\non_time_closed_rate = 200", "", "0 or more"),
        ("closed_rate = [", "", "TOML"),
    ],
)
def test_an_invalid_weights_file_is_refused_naming_the_fault(
    tmp_path: Path, region: str, county: str, phrase: str
) -> None:
    path = tmp_path / "weights.toml"
    path.write_text(weights_text(region, county), encoding="utf-8")
    with pytest.raises(ConfigError) as refused:
        evalweights.load(path)
    assert refused.value.code == "evaluation_weights_invalid"
    assert phrase in refused.value.message_en and str(path) in refused.value.message_zh


def test_the_weights_file_is_a_setting_read_again_when_it_changes(
    world: World, tmp_path: Path
) -> None:
    path = tmp_path / "bureau.toml"
    path.write_text(weights_text("registration_rate = 100"), encoding="utf-8")
    app = create_app(
        DatabaseSettings(database_url=world.url),
        auth_settings=TEST_AUTH,
        evaluation=EvaluationSettings(evaluation_weights=path),
    )
    with TestClient(app) as own:
        own.headers.update(bearer("leader-a"))
        street = world.demo.street
        # 5 of the 7 received registered; the default weights give 58.29 (test above)
        assert pick(table(own, "region")[street], "score", "grade") == (71.43, "C")
        path.write_text(weights_text("closed_rate = 100"), encoding="utf-8")
        assert pick(table(own, "region")[street], "score", "grade") == (80.0, "B")
        path.write_text(weights_text("closed_rate = 100\nnot_a_rate = 1"), encoding="utf-8")
        answer = own.get("/stats/evaluation", params={**PERIOD, "object": "region"})
        assert answer.status_code == 503
        assert answer.json()["code"] == "evaluation_weights_invalid"
        assert "not_a_rate" in answer.json()["message"]
        path.unlink()
        gone = own.get("/stats/evaluation", params={**PERIOD, "object": "region"})
        assert gone.status_code == 503 and "cannot be read" in gone.json()["message_en"]
    assert EvaluationSettings().evaluation_weights is None  # the packaged file by default


def test_check_reports_an_invalid_weights_file_as_one_finding(world: World, tmp_path: Path) -> None:
    path = tmp_path / "bureau.toml"
    path.write_text(weights_text("closed_rate = 60"), encoding="utf-8")
    env = {CONFIG_ENV: None, "CITYGRID_DATABASE_URL": world.url}
    found = CliRunner().invoke(
        cli_app, ["check"], env=env | {"CITYGRID_EVALUATION_WEIGHTS": str(path)}
    )
    lines = [line for line in found.stdout.splitlines() if "考核权重" in line]
    assert len(lines) == 1 and lines[0].startswith("FAIL") and "sum to 60" in lines[0]
    assert found.exit_code == 1
    packaged = CliRunner().invoke(cli_app, ["check"], env=env)
    lines = [line for line in packaged.stdout.splitlines() if "考核权重" in line]
    assert len(lines) == 1 and lines[0].startswith("OK")


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({**PERIOD, "object": "city"}, "evaluation_object"),
        ({"from": "2026-05-31", "to": "2026-05-01", "object": "region"}, "period_reversed"),
        ({**PERIOD, "object": "region", "level": "district"}, None),
        ({**PERIOD, "object": "post", "format": "xlsx"}, None),
    ],
)
def test_bad_requests_are_refused(
    client: TestClient, params: dict[str, str], code: str | None
) -> None:
    answer = client.get("/stats/evaluation", params=params)
    assert answer.status_code == 400 and answer.json()["message"]
    if code:
        assert answer.json()["code"] == code


def test_a_period_up_to_the_last_day_of_the_calendar(client: TestClient) -> None:
    answer = client.get(
        "/stats/evaluation", params={"from": "2026-05-01", "to": "9999-12-31", "object": "post"}
    )
    assert answer.status_code == 200, answer.text
    rows = {r["key"]: r for r in answer.json()["rows"] if r["post"] == "inspector"}
    assert rows["insp-1"]["reports"] == 3
