"""The case workflow: every legal move works for its role and only for it; every other move is
refused with the reason and changes nothing; times, deadlines, events and the audit follow."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from api.app import create_app
from api.settings import DatabaseSettings
from layers.cases import workcalendar
from layers.cases.workflow import MAIN_LINE, MOVES
from layers.cases.worktime import WorkCalendar
from layers.registry import CASE_STATUSES
from tests.accounts import ROLES, TEST_AUTH, bearer
from tests.world import EAST_UNIT, World, point, snapshot

COUNTY = "320681"  # the demo county every test database stores
STATUSES = [c.value for c in CASE_STATUSES]


@pytest.fixture(scope="module")
def client(world: World) -> Iterator[TestClient]:
    app = create_app(DatabaseSettings(database_url=world.url), auth_settings=TEST_AUTH)
    with TestClient(app) as c:
        yield c


def report(client: TestClient, role: str = "inspector", **properties: Any) -> int:
    feature = {
        "type": "Feature",
        "geometry": point(1, 60),
        "properties": {"category_code": "E0101", "description": "私搭乱建"} | properties,
    }
    answer = client.post("/cases", data={"feature": json.dumps(feature)}, headers=bearer(role))
    assert answer.status_code == 201, answer.text
    return int(answer.json()["id"])


def move(client: TestClient, case_id: int, action: str, role: str, **body: Any) -> Any:
    return client.post(
        f"/cases/{case_id}/transitions", json={"action": action, **body}, headers=bearer(role)
    )


def case_row(world: World, case_id: int) -> Any:
    with world.engine.connect() as conn:
        return conn.execute(text("SELECT * FROM cases WHERE id = :id"), {"id": case_id}).one()


def calendar(world: World) -> WorkCalendar:
    """The county's working calendar as stored."""
    with world.engine.connect() as conn:
        return workcalendar.load(conn, COUNTY)


def put_in(world: World, case_id: int, status: str) -> None:
    """Put a case straight into a state (the unit's case, inside the inspector's area)."""
    with world.engine.begin() as conn:
        conn.execute(
            text("UPDATE cases SET status = :s, unit = :u WHERE id = :id"),
            {"s": status, "u": EAST_UNIT, "id": case_id},
        )


def test_a_case_goes_the_whole_way_with_its_times_deadline_and_events(
    client: TestClient, world: World
) -> None:
    case_id = report(client)
    reported = case_row(world, case_id)
    assert reported.status == "reported" and reported.unit == "测试单位"  # its grid's unit
    steps = [
        ("register", "dispatcher", {}, "registered", "registered_at"),
        ("dispatch", "dispatcher", {"unit": EAST_UNIT}, "dispatched", "dispatched_at"),
        ("handle", "handler", {"note": "已拆除"}, "handled", "handled_at"),
        ("feedback", "handler", {}, "feedback", "feedback_at"),
        ("pass", "inspector", {}, "verified", "verified_at"),
        ("close", "dispatcher", {}, "closed", "closed_at"),
    ]
    for action, role, body, status, stamp in steps:
        answer = move(client, case_id, action, role, **body)
        assert answer.status_code == 200, (action, answer.text)
        assert answer.json()["status"] == status
        row = case_row(world, case_id)
        assert row.status == status and getattr(row, stamp) is not None
        assert getattr(row, stamp).microsecond == 0
    row = case_row(world, case_id)
    assert row.unit == EAST_UNIT
    assert row.deadline == calendar(world).add(row.dispatched_at, 4, "working_hours")  # E0101: 4 h
    history = client.get(f"/cases/{case_id}/transitions", headers=bearer("leader")).json()
    assert [e["action"] for e in history["events"]] == [s[0] for s in steps]
    assert [e["actor"] for e in history["events"]] == [s[1] for s in steps]
    assert history["events"][2]["note"] == "已拆除" and history["next"] == []
    with world.engine.connect() as conn:
        audited = (
            conn.execute(
                text(
                    "SELECT after ->> 'transition' FROM audit_log WHERE layer = 'cases' "
                    "AND feature_id = :id AND after ? 'transition' ORDER BY id"
                ),
                {"id": case_id},
            )
            .scalars()
            .all()
        )
    assert audited == [s[0] for s in steps]


def test_side_paths_return_rework_park_and_reject(client: TestClient, world: World) -> None:
    case_id = report(client, "dispatcher", source="hotline")
    assert case_row(world, case_id).source == "hotline"
    assert case_row(world, case_id).status == "unverified"  # a caller's report is verified first
    for action, role, status in [
        ("verify", "inspector", "reported"),
        ("register", "dispatcher", "registered"),
        ("dispatch", "dispatcher", "dispatched"),
    ]:
        assert (
            move(
                client,
                case_id,
                action,
                role,
                unit=EAST_UNIT if action == "dispatch" else None,
                verified=True if action == "verify" else None,
            ).json()["status"]
            == status
        )
    assert (
        move(client, case_id, "return", "handler", note="不属本单位").json()["status"] == "returned"
    )
    assert (
        move(client, case_id, "dispatch", "dispatcher", unit=EAST_UNIT).json()["status"]
        == "dispatched"
    )
    assert move(client, case_id, "park", "dispatcher").json()["status"] == "parked"
    assert move(client, case_id, "resume", "dispatcher").json()["status"] == "dispatched"
    assert move(client, case_id, "handle", "handler").json()["status"] == "handled"
    assert move(client, case_id, "feedback", "handler").json()["status"] == "feedback"
    assert (
        move(client, case_id, "fail", "inspector", note="未整改到位").json()["status"] == "rework"
    )
    assert move(client, case_id, "handle", "handler").json()["status"] == "handled"
    rejected = report(client)
    assert move(client, rejected, "reject", "dispatcher").json()["status"] == "rejected"
    assert case_row(world, rejected).closed_at is not None


# the main line's moves need no data; the steps that carry data are tested in test_steps.py
LEGAL = [
    (m.action, source, m.role.value)
    for m in MOVES.values()
    if m.action in MAIN_LINE
    for source in m.sources
]


@pytest.mark.parametrize(("action", "source", "role"), LEGAL)
def test_each_legal_move_works_for_its_role_and_no_other(
    client: TestClient, world: World, action: str, source: str, role: str
) -> None:
    case_id = report(client)
    for other in ROLES:
        if other in (role, "admin"):
            continue
        put_in(world, case_id, source)
        before = snapshot(world.engine)
        refused = move(
            client, case_id, action, other, **({"unit": EAST_UNIT} if action == "dispatch" else {})
        )
        assert refused.status_code == 403, (other, refused.text)
        assert "须由" in refused.json()["message"]
        assert snapshot(world.engine) == before
    for allowed in (role, "admin"):
        put_in(world, case_id, source)
        answer = move(client, case_id, action, allowed)
        assert answer.status_code == 200, (allowed, answer.text)
        assert answer.json()["status"] == MOVES[action].target


ILLEGAL = [
    (action, status)
    for action, m in MOVES.items()
    for status in STATUSES
    if status not in m.sources
]


@pytest.mark.parametrize(("action", "status"), ILLEGAL)
def test_each_illegal_move_is_refused_with_what_is_possible(
    client: TestClient, world: World, action: str, status: str
) -> None:
    case_id = report(client)
    put_in(world, case_id, status)
    before = snapshot(world.engine)
    answer = move(client, case_id, action, MOVES[action].role.value)
    assert answer.status_code == 409 and answer.json()["code"] == "illegal_transition"
    message = answer.json()["message"]
    assert "案件当前为" in message and "当前可办理" in message and MOVES[action].label in message
    assert snapshot(world.engine) == before


def test_bad_requests_are_refused(client: TestClient, world: World) -> None:
    case_id = report(client)
    with world.engine.begin() as conn:
        conn.execute(
            # no unit, and no grid to route it by
            text(
                "UPDATE cases SET status = 'registered', unit = NULL, grid_code = NULL "
                "WHERE id = :id"
            ),
            {"id": case_id},
        )
    before = snapshot(world.engine)
    no_unit = move(client, case_id, "dispatch", "dispatcher")
    assert no_unit.status_code == 400 and no_unit.json()["code"] == "missing_unit"
    unknown = move(client, case_id, "teleport", "dispatcher")
    assert unknown.status_code == 400 and unknown.json()["code"] == "unknown_action"
    stray_unit = move(client, case_id, "register", "admin", unit="某单位")
    assert stray_unit.status_code in (400, 409)
    extra = client.post(
        f"/cases/{case_id}/transitions",
        json={"action": "dispatch", "priority": "high"},
        headers=bearer("dispatcher"),
    )
    assert extra.status_code == 400
    assert move(client, 10**9, "register", "dispatcher").status_code == 404
    assert snapshot(world.engine) == before


def test_a_handling_unit_sees_and_moves_only_its_own_cases(
    client: TestClient, world: World
) -> None:
    mine, theirs = report(client), report(client)
    put_in(world, mine, "dispatched")
    with world.engine.begin() as conn:
        conn.execute(
            text("UPDATE cases SET status = 'dispatched', unit = '别的单位' WHERE id = :id"),
            {"id": theirs},
        )
    visible = {
        f["id"]
        for f in client.get(
            "/collections/cases/items?limit=1000", headers=bearer("handler")
        ).json()["features"]
    }
    assert mine in visible and theirs not in visible
    assert move(client, theirs, "handle", "handler").status_code == 404
    assert move(client, mine, "handle", "handler").status_code == 200
    nexts = client.get(f"/cases/{mine}/transitions", headers=bearer("handler")).json()["next"]
    assert [n["action"] for n in nexts] == ["feedback"]


def test_dispatch_counts_working_time(client: TestClient, world: World) -> None:
    case_id = report(client, category_code="E0102")  # 暴露垃圾
    put_in(world, case_id, "registered")
    answer = move(client, case_id, "dispatch", "dispatcher").json()
    row = case_row(world, case_id)
    with world.engine.connect() as conn:
        limit, unit = conn.execute(
            text("SELECT time_limit, time_unit FROM case_categories WHERE code = 'E0102'")
        ).one()
    assert row.deadline == calendar(world).add(row.dispatched_at, limit, unit)
    assert datetime.fromisoformat(answer["deadline"]) == row.deadline
    assert row.deadline > row.dispatched_at


def _traces(world: World) -> tuple[Any, ...]:
    """The layers, the case events and the audit log: what a refused move must leave as it was."""
    with world.engine.connect() as conn:
        events, audits, declared = conn.execute(
            text(
                "SELECT (SELECT count(*) FROM case_events), (SELECT count(*) FROM audit_log), "
                "(SELECT count(*) FROM units)"
            )
        ).one()
    return snapshot(world.engine), events, audits, declared


@pytest.mark.parametrize("unit", ["不存在的单位<script>", "测试单位 ", "", "东片城管中队二"])
def test_dispatch_only_to_a_known_unit(client: TestClient, world: World, unit: str) -> None:
    case_id = report(client)
    assert move(client, case_id, "register", "dispatcher").status_code == 200
    before = _traces(world)
    answer = move(client, case_id, "dispatch", "dispatcher", unit=unit)
    assert answer.status_code == 400, answer.text
    body = answer.json()
    assert body["code"] == "unknown_unit" and "处置单位" in body["message"]
    assert "handling unit" in body["message_en"]
    assert _traces(world) == before and case_row(world, case_id).status == "registered"
    # the grid's responsible unit and a declared one are known
    for known in ("测试单位", EAST_UNIT):
        assert move(client, case_id, "dispatch", "dispatcher", unit=known).status_code == 200
        assert case_row(world, case_id).unit == known
        put_in(world, case_id, "registered")


def test_units_are_listed_and_declared_by_the_admin_only(client: TestClient, world: World) -> None:
    listed = client.get("/units", headers=bearer("dispatcher"))
    assert listed.status_code == 200
    sources = {u["name"]: u["sources"] for u in listed.json()}
    assert sources["测试单位"] == ["grid"] and sources[EAST_UNIT] == ["declared"]
    assert {(u["adcode"], u["county"]) for u in listed.json()} == {(COUNTY, "启东市")}
    new = "新设城管中队"
    before = _traces(world)
    for role in ("dispatcher", "planner", "leader", "inspector", "handler"):
        refused = client.post("/units", json={"name": new, "adcode": COUNTY}, headers=bearer(role))
        assert refused.status_code == 403 and refused.json()["code"] == "forbidden"
    for body, code in (
        ({"name": "   ", "adcode": COUNTY}, "bad_unit_name"),
        ({"name": "x" * 201, "adcode": COUNTY}, "invalid_request"),
        ({"name": new}, "invalid_request"),
        ({"name": new, "adcode": "32068"}, "invalid_request"),
    ):
        refused = client.post("/units", json=body, headers=bearer("admin"))
        assert refused.status_code == 400 and refused.json()["code"] == code, refused.text
    unknown = client.post("/units", json={"name": new, "adcode": "999999"}, headers=bearer("admin"))
    assert unknown.status_code == 404 and unknown.json()["code"] == "unknown_county"
    assert _traces(world) == before
    added = client.post(
        "/units", json={"name": f" {new} ", "adcode": COUNTY}, headers=bearer("admin")
    )
    assert added.status_code == 201
    shown = added.json()
    assert {k: shown[k] for k in ("name", "adcode", "county", "sources", "type", "active")} == {
        "name": new,
        "adcode": COUNTY,
        "county": "启东市",
        "sources": ["declared"],
        "type": "department",
        "active": True,
    }
    again = client.post("/units", json={"name": new, "adcode": COUNTY}, headers=bearer("admin"))
    assert again.status_code == 409 and again.json()["code"] == "unit_exists"
    case_id = report(client)
    assert move(client, case_id, "register", "dispatcher").status_code == 200
    assert move(client, case_id, "dispatch", "dispatcher", unit=new).status_code == 200
    assert case_row(world, case_id).unit == new
    with world.engine.connect() as conn:
        actor = conn.execute(
            text("SELECT actor FROM audit_log WHERE layer = 'units' ORDER BY id DESC LIMIT 1")
        ).scalar_one()
    assert actor == "admin"


def test_the_deadline_follows_the_countys_own_limit_for_a_subclass(
    client: TestClient, world: World
) -> None:
    case_id = report(client, "dispatcher", source="patrol")  # an enforcement patrol: no 核实
    with world.engine.begin() as conn:
        adcode = conn.execute(
            text("SELECT adcode FROM cases WHERE id = :id"), {"id": case_id}
        ).scalar_one()
        conn.execute(
            text("""
            INSERT INTO case_category_edits (adcode, code, time_limit, time_unit,
                register_criteria, close_criteria, department)
            VALUES (:a, 'E0101', 2, 'working_days', '', '', '')
        """),
            {"a": adcode},
        )
    try:
        move(client, case_id, "register", "dispatcher")
        answer = move(client, case_id, "dispatch", "dispatcher", unit=EAST_UNIT)
        assert answer.status_code == 200, answer.text
        row = case_row(world, case_id)
        assert row.deadline == calendar(world).add(row.dispatched_at, 2, "working_days")
    finally:
        with world.engine.begin() as conn:
            conn.execute(text("DELETE FROM case_category_edits WHERE code = 'E0101'"))
