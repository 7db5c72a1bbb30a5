"""Field work: a case reported on the spot with its photo (all or nothing), the on-site check, and
the patrol layers, each limited to the inspector's area."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from api.app import create_app
from api.settings import DatabaseSettings, EditingSettings
from tests.accounts import TEST_AUTH, bearer
from tests.support import JPEG
from tests.world import WEST, World, point, snapshot

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture(scope="module")
def client(world: World) -> Iterator[TestClient]:
    limits = EditingSettings(max_photo_bytes=4096)
    app = create_app(
        DatabaseSettings(database_url=world.url), editing_limits=limits, auth_settings=TEST_AUTH
    )
    with TestClient(app) as c:
        yield c


def photo_rows(world: World) -> int:
    with world.engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM case_photos")).scalar_one())


def report(
    client: TestClient,
    community: int,
    role: str = "inspector",
    photo: bytes | None = JPEG,
    **properties: Any,
) -> Any:
    feature = {
        "type": "Feature",
        "geometry": point(community, -40),
        "properties": {"category_code": "E0102", "description": "路边暴露垃圾"} | properties,
    }
    files = {"photo": ("现场.jpg", io.BytesIO(photo), "image/jpeg")} if photo is not None else None
    return client.post(
        "/cases",
        data={"feature": json.dumps(feature, ensure_ascii=False)},
        files=files,
        headers=bearer(role),
    )


def test_a_case_is_reported_with_its_photo(client: TestClient, world: World) -> None:
    answer = report(client, 1)
    assert answer.status_code == 201, answer.text
    case_id = answer.json()["id"]
    case = client.get(f"/collections/cases/items/{case_id}", headers=bearer("inspector")).json()
    props = case["properties"]
    assert props["source"] == "inspector" and props["status"] == "reported"
    assert props["grid_code"].startswith(WEST[:12]) and props["description"] == "路边暴露垃圾"
    listed = client.get(f"/cases/{case_id}/photos", headers=bearer("inspector")).json()
    assert [p["content_type"] for p in listed] == ["image/jpeg"]
    assert listed[0]["uploaded_by"] == "inspector" and listed[0]["size_bytes"] == len(JPEG)
    picture = client.get(f"/cases/{case_id}/photos/{listed[0]['id']}", headers=bearer("leader"))
    assert picture.content == JPEG and picture.headers["content-type"] == "image/jpeg"
    assert picture.headers["x-content-type-options"] == "nosniff"
    assert report(client, 1, photo=None).status_code == 201  # a photo is welcome, not required


@pytest.mark.parametrize(
    ("community", "role", "photo", "properties", "status", "code"),
    [
        (2, "inspector", JPEG, {}, 403, "outside_patrol_area"),
        (1, "leader", JPEG, {}, 403, "forbidden"),
        (1, "inspector", b"GIF89a not a photo", {}, 400, "photo_not_image"),
        (1, "inspector", JPEG * 3, {}, 413, "payload_too_large"),
        (1, "inspector", PNG, {"category_code": "E9999"}, 400, "reference_not_found"),
        (1, "inspector", PNG, {"status": "closed"}, 400, "unknown_property"),
    ],
)
def test_a_refused_report_saves_neither_case_nor_photo(
    client: TestClient,
    world: World,
    community: int,
    role: str,
    photo: bytes,
    properties: dict[str, Any],
    status: int,
    code: str,
) -> None:
    before, photos = snapshot(world.engine), photo_rows(world)
    answer = report(client, community, role, photo, **properties)
    assert answer.status_code == status, answer.text
    assert answer.json()["code"] == code and answer.json()["message"]
    assert snapshot(world.engine) == before and photo_rows(world) == photos


def test_a_report_without_its_length_or_form_is_refused(client: TestClient) -> None:
    chunked = client.post(
        "/cases",
        content=iter([b"--x\r\n", b"\r\n"]),
        headers={**bearer("inspector"), "content-type": "multipart/form-data; boundary=x"},
    )
    assert chunked.status_code == 411 and chunked.json()["code"] == "length_required"
    as_json = client.post("/cases", json={"feature": {}}, headers=bearer("inspector"))
    assert as_json.status_code == 400 and as_json.json()["code"] == "not_a_feature"
    as_text = client.post(
        "/cases",
        content=b"feature=%7B%7D",
        headers={**bearer("inspector"), "content-type": "text/plain"},
    )
    assert as_text.status_code == 415 and as_text.json()["code"] == "unsupported_media_type"
    no_feature = client.post("/cases", data={"other": "x"}, headers=bearer("inspector"))
    assert no_feature.status_code == 400 and no_feature.json()["code"] == "missing_property"


def awaiting_check(world: World, community: int) -> int:
    """A case of the community put into the state where it waits for its check."""
    ids = world.west if community == 1 else world.east
    with world.engine.begin() as conn:
        conn.execute(
            text("UPDATE cases SET status = 'feedback', verified_at = NULL WHERE id = :id"),
            {"id": ids["cases"]},
        )
    return ids["cases"]


def test_the_on_site_check_passes_or_fails_a_case_in_the_area(
    client: TestClient, world: World
) -> None:
    case_id = awaiting_check(world, 1)
    waiting = client.get("/patrol/cases", headers=bearer("inspector")).json()["features"]
    assert [f["id"] for f in waiting if f["properties"]["awaiting_check"]] == [case_id]
    passed = client.post(
        f"/cases/{case_id}/check", json={"passed": True}, headers=bearer("inspector")
    )
    assert passed.status_code == 200 and passed.json()["status"] == "verified"
    again = client.post(
        f"/cases/{case_id}/check", json={"passed": True}, headers=bearer("inspector")
    )
    assert again.status_code == 409 and again.json()["code"] == "illegal_transition"
    assert "核查" in again.json()["message"]
    awaiting_check(world, 1)
    failed = client.post(
        f"/cases/{case_id}/check",
        json={"passed": False, "note": "垃圾仍未清运"},
        headers=bearer("inspector"),
    )
    assert failed.json()["status"] == "rework"
    with world.engine.connect() as conn:
        note = conn.execute(
            text(
                "SELECT note FROM case_events WHERE case_id = :id AND action = 'fail' "
                "ORDER BY id DESC LIMIT 1"
            ),
            {"id": case_id},
        ).scalar_one()
    assert note == "垃圾仍未清运"


@pytest.mark.parametrize(
    ("role", "community", "status"),
    [("inspector", 2, 404), ("leader", 1, 403), ("planner", 1, 403), (None, 1, 401)],
)
def test_the_check_is_refused_outside_the_area_or_the_role(
    client: TestClient, world: World, role: str | None, community: int, status: int
) -> None:
    case_id = awaiting_check(world, community)
    before = snapshot(world.engine)
    answer = client.post(
        f"/cases/{case_id}/check", json={"passed": True}, headers=bearer(role) if role else {}
    )
    assert answer.status_code == status and snapshot(world.engine) == before


def test_patrol_layers_hold_only_the_area(client: TestClient, world: World) -> None:
    sites = client.get("/patrol/dust_sites", headers=bearer("inspector")).json()["features"]
    assert [s["id"] for s in sites] == [world.west["dust_sites"]]
    props = sites[0]["properties"]
    assert props["last_result"] == "problems" and props["last_problems_found"] == 1
    assert [w["id"] for w in props["open_work_orders"]] == [world.west["work_orders"]]
    everything = client.get("/patrol/dust_sites", headers=bearer("leader")).json()["features"]
    assert {s["id"] for s in everything} == {world.west["dust_sites"], world.east["dust_sites"]}
    cases = client.get("/patrol/cases", headers=bearer("inspector")).json()["features"]
    assert world.east["cases"] not in {c["id"] for c in cases}
    assert all(c["properties"]["grid_code"].startswith(WEST[:12]) for c in cases)
    assert all(c["properties"]["category"] for c in cases)
    outside = client.get(f"/cases/{world.east['cases']}/photos", headers=bearer("inspector"))
    assert outside.status_code == 404


def test_a_case_is_reported_by_a_former_code_an_alias_or_a_name(
    client: TestClient, world: World
) -> None:
    given = {
        "e0503": "E0503",
        "流动摊贩": "E0501",
        "违法搭建(私搭乱建)": "E0101",
        "井盖破损": "C0113",
    }
    for category, code in given.items():
        answer = report(client, 1, category_code=category)
        assert answer.status_code == 201, answer.text
        case = client.get(
            f"/collections/cases/items/{answer.json()['id']}", headers=bearer("inspector")
        ).json()
        assert case["properties"]["category_code"] == code
    unknown = report(client, 1, category_code="没有这个类别")
    assert unknown.status_code in (400, 422) and unknown.json()["code"], unknown.text
