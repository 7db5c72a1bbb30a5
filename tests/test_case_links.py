"""Cases linked to what saw them or what they concern: a camera (a video patrol), a 门前三包
merchant, a garbage-sorting point. Set on report and on edit, filtered on items, shown to every
role as its scope allows, and never to a row of another county or one that does not exist."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.app import create_app
from api.settings import DatabaseSettings
from layers.cases.codes import seed_case_categories
from layers.store import db
from tests.accounts import TEST_AUTH, bearer
from tests.counties import (
    DEMO,
    SANYUAN,
    SCOPED_NAMES,
    CountyRows,
    ensure_scoped_accounts,
    readable,
    scoped_account,
    two_counties,
)
from tests.databases import fresh_database

GEOJSON = {"Content-Type": "application/geo+json"}
LINKS = {"camera_id": "cameras", "merchant_id": "merchants", "garbage_point_id": "garbage_points"}


@dataclass
class World:
    """The database with two counties and one row of every layer in each."""

    url: str
    engine: Engine
    rows: dict[str, CountyRows]

    def one(self, adcode: str, layer: str) -> int:
        """The id of the county's row of `layer`."""
        return self.rows[adcode].ids[layer][0]


def links_world(pg_server: Any, suffix: str) -> Iterator[World]:
    """Two counties with one row of every layer each, and their scoped accounts."""
    databases = fresh_database(pg_server, suffix)
    url = next(databases)
    engine = db.make_engine(pg_server.as_owner(url))
    with engine.begin() as conn:
        seed_case_categories(conn)
        demo, second = two_counties(conn)
    rows = {DEMO: demo, SANYUAN: second}
    ensure_scoped_accounts(engine, rows)
    yield World(url, engine, rows)
    engine.dispose()
    next(databases, None)


@pytest.fixture(scope="module")
def world(pg_server: Any) -> Iterator[World]:
    yield from links_world(pg_server, "caselinks")


@pytest.fixture(scope="module")
def client(world: World) -> Iterator[TestClient]:
    app = create_app(DatabaseSettings(database_url=world.url), auth_settings=TEST_AUTH)
    with TestClient(app, follow_redirects=False) as c:
        yield c


def report(
    client: TestClient, world: World, name: str, adcode: str = DEMO, **properties: Any
) -> Any:
    """POST /cases as `name`: a case in the county's first community (an inspector's area)."""
    lon, lat = world.rows[adcode].lonlat(-1000, 500)
    feature = {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [lon, lat]},
        "properties": {"category_code": "E0108", "description": "垃圾满溢"} | properties,
    }
    return client.post(
        "/cases",
        content=json.dumps(feature, ensure_ascii=False),
        headers={**GEOJSON, **bearer(name)},
    )


def count_cases(world: World) -> int:
    with world.engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM cases")).scalar_one())


def stored(world: World, case_id: int) -> dict[str, Any]:
    with world.engine.connect() as conn:
        row = conn.execute(text("SELECT * FROM cases WHERE id = :id"), {"id": case_id}).one()
    return dict(row._mapping)


def test_the_command_centre_links_a_video_case_to_its_camera(
    client: TestClient, world: World
) -> None:
    camera = world.one(DEMO, "cameras")
    made = report(client, world, "dispatcher-a", source="video", camera_id=camera)
    assert made.status_code == 201, made.text
    case = stored(world, made.json()["id"])
    assert (case["camera_id"], case["source"], case["status"]) == (camera, "video", "unverified")
    shown = client.get(f"/collections/cases/items/{case['id']}", headers=bearer("dispatcher-a"))
    assert shown.json()["properties"]["camera_id"] == camera
    found = client.get(f"/collections/cases/items?camera_id={camera}", headers=bearer("admin"))
    assert [f["id"] for f in found.json()["features"]] == [case["id"]]


@pytest.mark.parametrize("field", list(LINKS))
def test_a_row_of_another_county_or_none_is_refused_and_changes_nothing(
    client: TestClient, world: World, field: str
) -> None:
    before = count_cases(world)
    theirs = world.one(SANYUAN, LINKS[field])
    for name in ("dispatcher-a", "dispatcher-city", "inspector-a", "admin"):
        other = report(client, world, name, **{field: theirs})
        assert other.status_code == 400, (name, other.text)
        assert other.json()["code"] == "reference_other_county"
        assert "其他县" in other.json()["message"], other.json()
    missing = report(client, world, "dispatcher-a", **{field: 987654321})
    assert missing.status_code == 400 and missing.json()["code"] == "reference_not_found"
    bad = report(client, world, "dispatcher-a", **{field: "五号"})
    assert bad.status_code == 400, bad.text
    assert count_cases(world) == before


def test_every_role_may_or_may_not_report_a_linked_case(client: TestClient, world: World) -> None:
    camera = world.one(DEMO, "cameras")
    for name in SCOPED_NAMES:
        account = scoped_account(name, world.rows)
        before = count_cases(world)
        answer = report(client, world, name, camera_id=camera)
        holds_demo = account.counties is None or DEMO in account.counties
        if account.role in ("admin", "inspector", "dispatcher") and holds_demo:
            assert answer.status_code == 201, (name, answer.text)
            assert stored(world, answer.json()["id"])["camera_id"] == camera
        else:
            assert answer.status_code in (403, 404), (name, answer.text)
            assert count_cases(world) == before


def test_an_edit_sets_or_clears_the_link_within_the_county(
    client: TestClient, world: World
) -> None:
    case = world.rows[DEMO].ids["cases"][0]
    mine, theirs = world.one(DEMO, "cameras"), world.one(SANYUAN, "cameras")

    def patch(name: str, camera: int | None) -> Any:
        body = {"properties": {"camera_id": camera}}
        return client.patch(f"/collections/cases/items/{case}", json=body, headers={**bearer(name)})

    assert patch("admin", mine).status_code == 204
    assert stored(world, case)["camera_id"] == mine
    refused = patch("admin", theirs)
    assert refused.status_code == 400 and refused.json()["code"] == "reference_other_county"
    assert stored(world, case)["camera_id"] == mine
    for name in ("dispatcher-a", "inspector-a", "planner-a", "leader-a", "handler-a"):
        assert patch(name, None).status_code in (403, 404), name
    assert stored(world, case)["camera_id"] == mine
    assert patch("admin", None).status_code == 204
    assert stored(world, case)["camera_id"] is None


def test_the_camera_filter_holds_only_what_each_account_reads(
    client: TestClient, world: World
) -> None:
    cameras = {adcode: world.one(adcode, "cameras") for adcode in (DEMO, SANYUAN)}
    with world.engine.begin() as conn:  # a linked case in each county, written as a migration would
        for adcode, camera in cameras.items():
            conn.execute(
                text("UPDATE cases SET camera_id = :c WHERE id = :id"),
                {"c": camera, "id": world.rows[adcode].ids["cases"][1]},
            )
    for order in (SCOPED_NAMES, list(reversed(SCOPED_NAMES))):  # both orders of any cached answer
        for name in order:
            account = scoped_account(name, world.rows)
            for camera in cameras.values():
                answer = client.get(
                    f"/collections/cases/items?camera_id={camera}&limit=1000",
                    headers=bearer(name),
                )
                assert answer.status_code == 200, (name, answer.text)
                got = {f["id"] for f in answer.json()["features"]}
                with world.engine.connect() as conn:
                    expected = readable(conn, account, "cases", f"t.camera_id = {camera}")
                assert got == expected, (name, camera)
                assert all(
                    f["properties"]["camera_id"] == camera for f in answer.json()["features"]
                )
