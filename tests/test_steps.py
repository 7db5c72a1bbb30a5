"""The workflow steps the standard counts beyond the main line: 核实, 作废 and 合并, 延期, 督办, 回访
and 自行处置. Each works from its states for its roles only, takes the data it needs (a reason, days,
a case, a result, a photo), is stamped, in the case's events and audited, and refused otherwise
with nothing changed; two counties, every role."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.app import create_app
from api.settings import DatabaseSettings
from gis.validate import Limits
from layers.cases import workcalendar, workflow
from layers.cases.codes import seed_case_categories
from layers.cases.steps import StepData
from layers.engine.access import Viewer
from layers.engine.editing import EditContext
from layers.errors import StateConflict
from layers.registry import Role
from layers.store import db
from tests.accounts import TEST_AUTH, bearer
from tests.counties import (
    DEMO,
    GRID_UNITS,
    SANYUAN,
    SCOPED_NAMES,
    CountyRows,
    ensure_scoped_accounts,
    readable,
    scoped_account,
    two_counties,
)
from tests.databases import fresh_database
from tests.support import JPEG

CHINA = ZoneInfo("Asia/Shanghai")
WEST = -1200  # metres from the county's centre: inside its inspectors' patrol area
EAST = 1200  # outside it


@dataclass(frozen=True)
class Steps:
    """The database and the two counties' rows."""

    engine: Engine
    url: str
    rows: dict[str, CountyRows]


@pytest.fixture(scope="module")
def steps(pg_server: Any) -> Iterator[Steps]:
    databases = fresh_database(pg_server, "steps")
    url = next(databases)
    engine = db.make_engine(pg_server.as_owner(url))
    with engine.begin() as conn:
        seed_case_categories(conn)
        demo, second = two_counties(conn)
    rows = {DEMO: demo, SANYUAN: second}
    ensure_scoped_accounts(engine, rows)
    yield Steps(engine, url, rows)
    engine.dispose()
    next(databases, None)


@pytest.fixture(scope="module")
def client(steps: Steps) -> Iterator[TestClient]:
    app = create_app(DatabaseSettings(database_url=steps.url), auth_settings=TEST_AUTH)
    with TestClient(app) as c:
        yield c


def _point(steps: Steps, adcode: str, x: float) -> dict[str, Any]:
    lon, lat = steps.rows[adcode].lonlat(x, 0)
    return {"type": "Point", "coordinates": [lon, lat]}


def desk(
    client: TestClient, steps: Steps, source: str = "hotline", adcode: str = DEMO, x: float = WEST
) -> int:
    """A report taken at the desk (JSON, no photo)."""
    feature = {
        "type": "Feature",
        "geometry": _point(steps, adcode, x),
        "properties": {"category_code": "E0101", "description": "市民来电", "source": source},
    }
    user = "dispatcher-a" if adcode == DEMO else "dispatcher-b"
    answer = client.post("/cases", json=feature, headers=bearer(user))
    assert answer.status_code == 201, answer.text
    return int(answer.json()["id"])


def field(client: TestClient, steps: Steps, user: str = "inspector-a", photo: bool = True) -> int:
    """A report by an inspector on the spot, with its photo."""
    feature = {
        "type": "Feature",
        "geometry": _point(steps, DEMO, WEST),
        "properties": {"category_code": "E0101", "description": "乱堆物堆料"},
    }
    files = {"photo": ("前.jpg", io.BytesIO(JPEG), "image/jpeg")} if photo else None
    answer = client.post(
        "/cases",
        data={"feature": json.dumps(feature, ensure_ascii=False)},
        files=files,
        headers=bearer(user),
    )
    assert answer.status_code == 201, answer.text
    return int(answer.json()["id"])


def move(client: TestClient, case_id: int, action: str, user: str, **body: Any) -> Any:
    return client.post(
        f"/cases/{case_id}/transitions", json={"action": action, **body}, headers=bearer(user)
    )


def row(steps: Steps, case_id: int) -> Any:
    with steps.engine.connect() as conn:
        return conn.execute(text("SELECT * FROM cases WHERE id = :id"), {"id": case_id}).one()


def put(steps: Steps, case_id: int, **values: Any) -> None:
    """Set a case's columns straight (to start a step from a given state)."""
    sets = ", ".join(f"{name} = :{name}" for name in values)
    with steps.engine.begin() as conn:
        conn.execute(text(f"UPDATE cases SET {sets} WHERE id = :id"), values | {"id": case_id})


def state(steps: Steps) -> tuple[Any, ...]:
    """Cases, their events, photos and the audit log: what a refused step leaves as it was."""
    with steps.engine.connect() as conn:
        return tuple(
            conn.execute(text(q)).scalar_one()
            for q in (
                "SELECT md5(string_agg(to_jsonb(t)::text, '' ORDER BY id)) FROM cases AS t",
                "SELECT count(*) FROM case_events",
                "SELECT count(*) FROM case_photos",
                "SELECT count(*) FROM audit_log",
            )
        )


def events(client: TestClient, case_id: int) -> list[dict[str, Any]]:
    answer = client.get(f"/cases/{case_id}/transitions", headers=bearer("admin"))
    found: list[dict[str, Any]] = answer.json()["events"]
    return found


def refused(
    client: TestClient,
    steps: Steps,
    case_id: int,
    action: str,
    user: str,
    status: int,
    code: str,
    **body: Any,
) -> None:
    """The step is refused with the status and code, a message in Chinese, and nothing changed."""
    before = state(steps)
    answer = move(client, case_id, action, user, **body)
    assert answer.status_code == status, (action, user, answer.text)
    assert answer.json()["code"] == code, answer.text
    assert answer.json()["message"]
    assert state(steps) == before


def audited(steps: Steps, case_id: int) -> list[str]:
    with steps.engine.connect() as conn:
        return list(
            conn.execute(
                text(
                    "SELECT after ->> 'transition' FROM audit_log WHERE layer = 'cases' "
                    "AND feature_id = :id AND after ? 'transition' ORDER BY id"
                ),
                {"id": case_id},
            ).scalars()
        )


def test_a_callers_report_is_verified_on_site_before_it_is_registered(
    client: TestClient, steps: Steps
) -> None:
    case_id = desk(client, steps)
    reported = row(steps, case_id)
    assert reported.status == "unverified"
    with steps.engine.connect() as conn:
        calendar = workcalendar.load(conn, DEMO)
    assert reported.verify_deadline == calendar.add_hours(
        reported.reported_at.astimezone(CHINA), timedelta(hours=2)
    )
    refused(client, steps, case_id, "register", "dispatcher-a", 409, "illegal_transition")
    for user in ("dispatcher-a", "leader-a", "handler-a", "planner-a"):
        refused(client, steps, case_id, "verify", user, 403, "forbidden", verified=True)
    refused(
        client, steps, case_id, "verify", "inspector-b", 404, "feature_not_found", verified=True
    )
    refused(client, steps, case_id, "verify", "inspector-a", 400, "missing_property")
    answer = move(client, case_id, "verify", "inspector-a", verified=True, note="现场属实")
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "reported" and answer.json()["detail"] == {"verified": True}
    assert row(steps, case_id).confirmed_at is not None
    refused(client, steps, case_id, "register", "dispatcher-a", 400, "data_not_allowed", days=2)
    assert move(client, case_id, "register", "dispatcher-a").json()["status"] == "registered"
    assert [e["action"] for e in events(client, case_id)] == ["verify", "register"]
    assert audited(steps, case_id) == ["verify", "register"]

    missing = desk(client, steps, source="video")
    refused(client, steps, missing, "verify", "inspector-a", 400, "reason_required", verified=False)
    answer = move(client, missing, "verify", "inspector-a", verified=False, note="现场未发现")
    assert answer.json()["status"] == "cancelled"
    gone = row(steps, missing)
    assert gone.status == "cancelled" and gone.closed_at == gone.confirmed_at

    own = field(client, steps)  # an inspector's own report needs no verification
    assert row(steps, own).status == "reported" and row(steps, own).verify_deadline is None
    refused(client, steps, own, "verify", "inspector-a", 409, "illegal_transition", verified=True)
    patrolled = desk(client, steps, source="patrol")  # nor an enforcement patrol's
    assert row(steps, patrolled).status == "reported"


def test_the_patrol_list_shows_reports_awaiting_verification_to_every_role(
    client: TestClient, steps: Steps
) -> None:
    for adcode in (DEMO, SANYUAN):
        for x in (WEST, EAST):
            desk(client, steps, "public", adcode, x)
    for user in SCOPED_NAMES:
        account = scoped_account(user, steps.rows)
        role = account.role
        answer = client.get("/patrol/cases", headers=bearer(user))
        assert answer.status_code == 200, answer.text
        waiting = {f["id"] for f in answer.json()["features"] if f["properties"]["awaiting_verify"]}
        with steps.engine.connect() as conn:
            expected = readable(conn, account, "cases", "t.status = 'unverified'")
        assert waiting == expected, (user, waiting, expected)
        if role == "inspector":
            assert expected and all(
                f["properties"]["verify_deadline"]
                for f in answer.json()["features"]
                if f["properties"]["awaiting_verify"]
            )


def test_a_registered_case_is_cancelled_before_it_is_dispatched(
    client: TestClient, steps: Steps
) -> None:
    case_id = desk(client, steps)
    put(steps, case_id, status="reported")
    assert move(client, case_id, "register", "dispatcher-a").json()["status"] == "registered"
    refused(client, steps, case_id, "cancel", "dispatcher-a", 400, "reason_required")
    answer = move(client, case_id, "cancel", "dispatcher-a", note="与已立案案件重复")
    assert answer.status_code == 200 and answer.json()["from"] == "registered"
    assert row(steps, case_id).status == "cancelled"
    sent = desk(client, steps)
    put(steps, sent, status="dispatched")
    refused(client, steps, sent, "cancel", "dispatcher-a", 409, "illegal_transition", note="重复")


def test_a_report_is_cancelled_with_its_reason_or_merged_into_its_original(
    client: TestClient, steps: Steps
) -> None:
    case_id = desk(client, steps)
    for user in ("inspector-a", "handler-a", "leader-a"):
        refused(client, steps, case_id, "cancel", user, 403, "forbidden", note="重复")
    refused(client, steps, case_id, "cancel", "dispatcher-a", 400, "reason_required")
    refused(client, steps, case_id, "cancel", "dispatcher-a", 400, "reason_required", note=" ")
    answer = move(client, case_id, "cancel", "dispatcher-a", note="无效举报")
    assert answer.status_code == 200 and answer.json()["status"] == "cancelled"
    assert row(steps, case_id).closed_at is not None
    assert events(client, case_id)[-1]["note"] == "无效举报"
    refused(client, steps, case_id, "cancel", "dispatcher-a", 409, "illegal_transition", note="再")

    original, duplicate = desk(client, steps), desk(client, steps)
    elsewhere = desk(client, steps, adcode=SANYUAN)
    refused(client, steps, duplicate, "merge", "dispatcher-a", 400, "missing_property")
    for into, user, status, code in [
        (elsewhere, "dispatcher-a", 400, "merge_target_not_found"),  # not readable to them
        (elsewhere, "dispatcher-city", 400, "merge_other_county"),
        (elsewhere, "admin", 400, "merge_other_county"),
        (10**9, "dispatcher-a", 400, "merge_target_not_found"),
        (duplicate, "dispatcher-a", 409, "merge_target_invalid"),
        (case_id, "dispatcher-a", 409, "merge_target_invalid"),  # cancelled itself
        (original, "handler-a", 403, "forbidden"),
    ]:
        refused(client, steps, duplicate, "merge", user, status, code, into=into)
    answer = move(client, duplicate, "merge", "dispatcher-a", into=original, note="同一地点重复")
    assert answer.status_code == 200, answer.text
    merged = row(steps, duplicate)
    assert (merged.status, merged.merged_into) == ("cancelled", original)
    noted = events(client, original)[-1]
    assert noted["action"] == "merged_from" and noted["detail"] == {"case": duplicate}
    assert noted["from_status"] == noted["to_status"] == "unverified"
    registered = desk(client, steps, source="patrol")
    move(client, registered, "register", "dispatcher-a")
    refused(client, steps, registered, "merge", "dispatcher-a", 409, "illegal_transition", into=1)


def test_two_cases_merged_into_each_other_at_once_leave_one_standing(
    client: TestClient, steps: Steps
) -> None:
    first, second = desk(client, steps), desk(client, steps)
    ctx = EditContext(Viewer("dispatcher-a", Role.DISPATCHER, counties=(DEMO,)), Limits())
    outcome: dict[str, Any] = {}

    def merge_second_into_first() -> None:
        with steps.engine.begin() as conn:
            try:
                outcome["answer"] = workflow.transition(
                    conn, second, "merge", "重复", ctx, data=StepData(into=first)
                )
            except StateConflict as refused:
                outcome["refused"] = refused.code

    with steps.engine.begin() as conn:
        workflow.transition(conn, first, "merge", "重复", ctx, data=StepData(into=second))
        racing = threading.Thread(target=merge_second_into_first)
        racing.start()
        racing.join(timeout=1.0)
        assert racing.is_alive()  # waits for the first merge, which holds its target
    racing.join(timeout=30)
    assert outcome == {"refused": "merge_target_invalid"}
    assert (row(steps, first).status, row(steps, second).status) == ("cancelled", "unverified")


def dispatched(client: TestClient, steps: Steps) -> int:
    """A case dispatched to the demo county's grid unit (handler-a's)."""
    case_id = desk(client, steps, source="patrol")
    assert move(client, case_id, "register", "dispatcher-a").status_code == 200
    answer = move(client, case_id, "dispatch", "dispatcher-a")
    assert answer.json()["unit"] == GRID_UNITS[DEMO], answer.text
    return case_id


def test_an_extension_is_asked_by_the_unit_and_moves_the_deadline_in_working_days(
    client: TestClient, steps: Steps
) -> None:
    case_id = dispatched(client, steps)
    # the last working day before 2023's Mid-autumn and National Day holidays (29 Sep – 6 Oct);
    # Saturday 7 and Sunday 8 October were working days (调休)
    before = datetime(2023, 9, 28, 17, 30, tzinfo=CHINA)
    put(steps, case_id, deadline=before)
    ask = {"days": 2, "note": "需协调供电部门"}
    for user in ("dispatcher-a", "inspector-a", "leader-a"):
        refused(client, steps, case_id, "request_extension", user, 403, "forbidden", **ask)
    refused(
        client, steps, case_id, "request_extension", "handler-b", 404, "feature_not_found", **ask
    )
    refused(
        client, steps, case_id, "request_extension", "handler-a", 400, "reason_required", days=2
    )
    for days in (0, 31):
        refused(
            client, steps, case_id, "request_extension", "handler-a", 400, "invalid_request",
            days=days, note="x",
        )  # fmt: skip
    refused(
        client, steps, case_id, "approve_extension", "dispatcher-a", 409, "no_extension_requested"
    )
    answer = move(client, case_id, "request_extension", "handler-a", **ask)
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "dispatched" and row(steps, case_id).extension_asked == 2
    refused(
        client, steps, case_id, "request_extension", "handler-a", 409, "extension_pending", **ask
    )
    refused(client, steps, case_id, "approve_extension", "handler-a", 403, "forbidden")
    answer = move(client, case_id, "approve_extension", "dispatcher-a", note="同意")
    assert answer.status_code == 200, answer.text
    moved = row(steps, case_id)
    assert moved.deadline == datetime(2023, 10, 8, 17, 30, tzinfo=CHINA)
    assert (moved.extensions, moved.extension_asked, moved.status) == (1, None, "dispatched")
    assert events(client, case_id)[-1]["detail"]["days"] == 2

    move(client, case_id, "request_extension", "handler-a", days=5, note="材料未到")
    refused(client, steps, case_id, "reject_extension", "dispatcher-a", 400, "reason_required")
    answer = move(client, case_id, "reject_extension", "dispatcher-a", note="时限内可完成")
    assert answer.status_code == 200, answer.text
    kept = row(steps, case_id)
    assert (kept.deadline, kept.extensions, kept.extension_asked) == (moved.deadline, 1, None)
    assert [e["action"] for e in events(client, case_id)][-4:] == [
        "request_extension",
        "approve_extension",
        "request_extension",
        "reject_extension",
    ]
    assert audited(steps, case_id)[-1] == "reject_extension"
    put(steps, case_id, status="handled")
    refused(
        client, steps, case_id, "request_extension", "handler-a", 409, "illegal_transition", **ask
    )


def test_supervision_is_flagged_with_its_deadline_and_counted(
    client: TestClient, steps: Steps
) -> None:
    case_id = dispatched(client, steps)
    later = (datetime.now(CHINA) + timedelta(days=2)).replace(microsecond=0)
    flag = {"until": later.isoformat(), "note": "群众反映强烈"}
    for user in ("inspector-a", "handler-a", "planner-a"):
        refused(client, steps, case_id, "supervise", user, 403, "forbidden", **flag)
    refused(client, steps, case_id, "supervise", "leader-b", 404, "feature_not_found", **flag)
    refused(
        client, steps, case_id, "supervise", "leader-a", 400, "reason_required", until=flag["until"]
    )
    refused(client, steps, case_id, "supervise", "leader-a", 400, "missing_property", note="督办")
    past = (datetime.now(CHINA) - timedelta(hours=1)).isoformat()
    refused(
        client, steps, case_id, "supervise", "leader-a", 400, "supervise_deadline_past",
        until=past, note="督办",
    )  # fmt: skip
    nexts = client.get(f"/cases/{case_id}/transitions", headers=bearer("leader-a")).json()
    assert [n["action"] for n in nexts["next"]] == ["supervise"]
    assert move(client, case_id, "supervise", "leader-a", **flag).status_code == 200
    answer = move(client, case_id, "supervise", "dispatcher-a", **flag)
    assert answer.status_code == 200 and answer.json()["status"] == "dispatched"
    flagged = row(steps, case_id)
    assert (flagged.supervisions, flagged.supervise_deadline) == (2, later)
    assert events(client, case_id)[-1]["detail"]["count"] == 2
    listed = client.get("/patrol/cases", headers=bearer("dispatcher-a")).json()["features"]
    assert {f["id"]: f["properties"]["supervisions"] for f in listed}[case_id] == 2
    put(steps, case_id, status="closed")
    refused(client, steps, case_id, "supervise", "leader-a", 409, "illegal_transition", **flag)


def test_a_callers_case_is_called_back_and_unsatisfied_goes_back_to_rework(
    client: TestClient, steps: Steps
) -> None:
    case_id = desk(client, steps, source="public")
    put(steps, case_id, status="verified", unit=GRID_UNITS[DEMO])
    for user in ("inspector-a", "handler-a", "leader-a"):
        refused(client, steps, case_id, "callback", user, 403, "forbidden", result="satisfied")
    refused(client, steps, case_id, "callback", "dispatcher-a", 400, "property_not_in_code_list")
    refused(client, steps, case_id, "callback", "dispatcher-a", 400, "invalid_request", result="ok")
    answer = move(client, case_id, "callback", "dispatcher-a", result="unreachable")
    assert answer.json()["status"] == "verified" and row(steps, case_id).callback_result == (
        "unreachable"
    )
    answer = move(client, case_id, "callback", "dispatcher-a", result="unsatisfied", note="仍有")
    assert answer.status_code == 200 and answer.json()["status"] == "rework"
    assert row(steps, case_id).callback_result == "unsatisfied"
    assert events(client, case_id)[-1]["detail"] == {"result": "unsatisfied"}
    refused(
        client, steps, case_id, "callback", "dispatcher-a", 409, "illegal_transition",
        result="satisfied",
    )  # fmt: skip
    own = field(client, steps)
    put(steps, own, status="verified")
    refused(
        client, steps, own, "callback", "dispatcher-a", 409, "callback_not_applicable",
        result="satisfied",
    )  # fmt: skip
    hotline = desk(client, steps)
    put(steps, hotline, status="verified")
    assert move(client, hotline, "callback", "dispatcher-a", result="satisfied").json()[
        "status"
    ] == ("verified")
    assert move(client, hotline, "close", "dispatcher-a").json()["status"] == "closed"


def self_handle(client: TestClient, case_id: int, user: str = "inspector-a") -> Any:
    return client.post(
        f"/cases/{case_id}/self_handle",
        data={"note": "已现场清理"},
        files={"photo": ("后.jpg", io.BytesIO(JPEG + b"after"), "image/jpeg")},
        headers=bearer(user),
    )


def test_an_inspector_fixes_their_own_report_on_the_spot_with_photos_before_and_after(
    client: TestClient, steps: Steps
) -> None:
    case_id = field(client, steps)
    for user, status, code in [
        ("dispatcher-a", 403, "forbidden"),
        ("handler-a", 403, "forbidden"),
        ("inspector-city", 403, "not_own_report"),
        ("inspector-b", 404, "feature_not_found"),
    ]:
        before = state(steps)
        answer = self_handle(client, case_id, user)
        assert (answer.status_code, answer.json()["code"]) == (status, code), answer.text
        assert state(steps) == before
    refused(client, steps, case_id, "self_handle", "inspector-a", 400, "missing_property")
    before = state(steps)
    no_photo = client.post(
        f"/cases/{case_id}/self_handle", data={"note": "x"}, headers=bearer("inspector-a")
    )
    assert no_photo.status_code == 415 and state(steps) == before
    answer = self_handle(client, case_id)
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "closed"
    done = row(steps, case_id)
    assert done.self_handled and done.closed_at == done.handled_at and done.registered_at is None
    photos = client.get(f"/cases/{case_id}/photos", headers=bearer("inspector-a")).json()
    assert len(photos) == 2
    detail = events(client, case_id)[-1]["detail"]
    assert [detail["photo_before"], detail["photo_after"]] == [p["id"] for p in photos]
    assert audited(steps, case_id) == ["self_handle"]
    again = self_handle(client, case_id)
    assert again.status_code == 409 and again.json()["code"] == "illegal_transition"

    bare = field(client, steps, photo=False)
    answer = self_handle(client, bare)
    assert answer.status_code == 400 and answer.json()["code"] == "before_photo_missing"
    hotline = desk(client, steps)
    move(client, hotline, "verify", "inspector-a", verified=True)
    answer = self_handle(client, hotline)
    assert answer.status_code == 403 and answer.json()["code"] == "not_own_report"
