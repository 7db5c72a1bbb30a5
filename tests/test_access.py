"""Who sees and changes what: every role against every kind of endpoint, inside and outside a patrol area.

Two neighbouring communities: "west" is the inspector's, "east" is not. Each holds one row of every
layer, placed in its middle, far from the shared edge. Nothing from the east may reach an
inspector, in any body or tile, and every refused write leaves the database as it was.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from api.app import create_app
from api.settings import DatabaseSettings
from layers.accounts import users
from layers.engine.access import ReadLimit, Viewer, read_limit
from layers.registry import LAYERS, Role
from tests.accounts import ROLES, TEST_AUTH, bearer, ensure_account
from tests.street import STREET
from tests.world import (
    CHILDREN,
    EAST,
    PROPERTIES,
    SPATIAL,
    WEST,
    World,
    as_role,
    ids_in,
    point,
    snapshot,
    tile_ids,
    tile_index,
)
from webmap.pages import PAGES


@pytest.fixture(scope="module")
def client(world: World) -> Iterator[TestClient]:
    app = create_app(DatabaseSettings(database_url=world.url), auth_settings=TEST_AUTH)
    with TestClient(app, follow_redirects=False) as c:
        yield c


@pytest.mark.parametrize("layer", [*SPATIAL, *CHILDREN])
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("limit", [100, 5000])  # a page, and the streamed bulk read
def test_items_hold_only_what_the_role_may_read(
    client: TestClient, world: World, layer: str, role: str, limit: int
) -> None:
    answer = client.get(f"/collections/{layer}/items?limit={limit}", headers=as_role(role))
    assert answer.status_code == 200, answer.text
    seen = ids_in(answer.json())
    if role == "inspector":
        assert seen == {world.west[layer]}
        assert world.east[layer] not in seen
    elif role == "handler" and layer == "cases":  # not dispatched to its unit
        assert not {world.west[layer], world.east[layer]} & seen
    else:
        assert {world.west[layer], world.east[layer]} <= seen


@pytest.mark.parametrize("layer", [*SPATIAL, *CHILDREN])
@pytest.mark.parametrize("role", ROLES)
def test_single_items_outside_the_area_are_not_found(
    client: TestClient, world: World, layer: str, role: str
) -> None:
    inside = client.get(f"/collections/{layer}/items/{world.west[layer]}", headers=as_role(role))
    outside = client.get(f"/collections/{layer}/items/{world.east[layer]}", headers=as_role(role))
    if role == "handler" and layer == "cases":
        assert inside.status_code == outside.status_code == 404
        return
    assert inside.status_code == 200
    if role == "inspector":
        assert outside.status_code == 404 and outside.json()["code"] == "feature_not_found"
    else:
        assert outside.status_code == 200


@pytest.mark.parametrize("layer", ["illegal_buildings", "billboards", "dust_sites", "parking_lots"])
@pytest.mark.parametrize("role", ROLES)
def test_tiles_hold_only_what_the_role_may_read(
    client: TestClient, world: World, layer: str, role: str
) -> None:
    west = point(1)["coordinates"]
    east = point(2)["coordinates"]
    both = tile_index(*west, 12)
    assert both == tile_index(*east, 12)  # one tile covers both communities
    seen = tile_ids(client, layer, 12, *both, role)
    only_east = tile_index(*east, 17)
    assert only_east != tile_index(*west, 17)
    seen_east = tile_ids(client, layer, 17, *only_east, role)
    if role == "inspector":
        assert seen == {world.west[layer]} and seen_east == set()
    else:
        assert {world.west[layer], world.east[layer]} <= seen and world.east[layer] in seen_east


def test_a_cached_patrol_tile_follows_the_inspector_to_other_grids(
    client: TestClient, world: World
) -> None:
    """Tiles limited to a patrol area are cached under the version of the grid assignments, so
    the moment an inspector is moved, their tiles show the new area."""
    name = "inspector-moved"
    ensure_account(world.url, name, "inspector", (WEST,))
    watcher = client.app.state.layer_versions  # type: ignore[attr-defined]
    deadline = time.monotonic() + 10
    while watcher.current("grid_inspectors") is None:
        assert time.monotonic() < deadline, "the version listener did not connect"
        time.sleep(0.05)
    both = tile_index(*point(1)["coordinates"], 12)
    try:
        for _ in range(2):  # asked, then from the cache
            assert tile_ids(client, "billboards", 12, *both, name) == {world.west["billboards"]}
        before = watcher.current("grid_inspectors")
        with world.engine.begin() as conn:
            users.assign_grids(conn, users.get(conn, name), [EAST])
        while watcher.current("grid_inspectors") == before:
            assert time.monotonic() < deadline + 10, "the assignment was not announced"
            time.sleep(0.01)
        assert tile_ids(client, "billboards", 12, *both, name) == {world.east["billboards"]}
    finally:
        with world.engine.begin() as conn:
            users.assign_grids(conn, users.get(conn, name), [])


def test_read_limits_name_what_they_bind() -> None:
    """Viewers share a cache entry only when their limits bind the same values, lists included."""
    cases = LAYERS["cases"]
    one, other = (read_limit(cases, Viewer("u", Role.HANDLER, unit=u)) for u in ("甲", "乙"))
    assert one.narrow and one.key != other.key
    patrol = read_limit(cases, Viewer("i", Role.INSPECTOR))
    assert patrol.key != read_limit(cases, Viewer("i", Role.INSPECTOR, patrol_buffer_m=10)).key
    assert set(patrol.tables) == {"grids", "grid_inspectors"}
    children = read_limit(LAYERS["work_orders"], Viewer("i", Role.INSPECTOR))
    assert "dust_sites" in children.tables  # their rows decide which orders pass
    offices = {read_limit(cases, Viewer(r, Role(r))).key for r in ("admin", "leader", "planner")}
    assert len(offices) == 1 and not read_limit(cases, Viewer("l", Role.LEADER)).narrow
    several = ReadLimit("unit", "t.unit = ANY(:units)", (("units", ["甲", "乙"]),))
    assert hash(several.key) == hash(ReadLimit("unit", "", (("units", ["甲", "乙"]),)).key)


@pytest.mark.parametrize("role", ROLES)
def test_grids_and_statistics_stay_inside_the_area(client: TestClient, role: str) -> None:
    grids = client.get("/grids", headers=as_role(role)).json()["features"]
    codes = {g["properties"]["code"] for g in grids}
    stats = client.get("/grids/stats?level=section", headers=as_role(role)).json()
    stat_codes = {row["code"] for row in stats}
    west_sections = {f"{WEST[:12]}001", f"{WEST[:12]}002"}
    if role == "inspector":
        assert codes == {WEST, *west_sections} and stat_codes == west_sections
        assert all(row["cases"] <= 1 for row in stats)
        people = client.get(f"/grids/{EAST}/people", headers=as_role(role))
        assert people.status_code == 404
    else:
        assert {STREET, WEST, EAST} <= codes and len(stat_codes) == 4


@pytest.mark.parametrize("viewer", [*ROLES, "handler-of-the-grids"])
def test_grid_statistics_count_only_the_cases_the_viewer_reads(
    client: TestClient, world: World, viewer: str
) -> None:
    """A unit's statistics count its own cases, as its items do: the west and east cases carry
    the grids' unit, so the other unit ("handler") counts none and this one counts them all."""
    ensure_account(world.url, "handler-of-the-grids", "handler", unit="测试单位")
    answer = client.get("/grids/stats?level=section", headers=bearer(viewer))
    assert answer.status_code == 200, answer.text
    totals = {"cases": 0, "cases_on_day": 0}
    with world.engine.connect() as conn:
        unit = conn.execute(
            text("SELECT unit FROM users WHERE username = :u"), {"u": viewer}
        ).scalar()
        for row in answer.json():
            for figure, since in (("cases", "-infinity"), ("cases_on_day", "today")):
                expected = conn.execute(
                    text("""
                    SELECT count(*) FROM cases AS c JOIN grids AS g
                      ON g.code = :code AND g.valid_to IS NULL AND ST_Intersects(g.geom, c.geom)
                    WHERE c.reported_at >= CAST(:since AS timestamptz)
                      AND c.reported_at < CURRENT_DATE + 1
                      AND (CAST(:unit AS text) IS NULL OR c.unit = :unit)
                """),
                    {"code": row["code"], "since": since, "unit": unit},
                ).scalar_one()
                assert row[figure] == expected, (viewer, row["code"], figure)
                totals[figure] += expected
    if viewer == "handler":
        assert totals["cases"] == 0
    elif viewer != "inspector":  # every section, so every case of both communities
        assert totals["cases"] >= 2


# --- pages --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/maps/overview", set(ROLES)),
        ("/maps/planner", {"admin", "planner"}),
        ("/maps/inspector", {"admin", "inspector"}),
        ("/maps/leader", {"admin", "leader"}),
        ("/maps/leader/timeline", {"admin", "leader"}),
    ],
)
@pytest.mark.parametrize("role", [None, *ROLES])
def test_pages_by_role(client: TestClient, path: str, allowed: set[str], role: str | None) -> None:
    answer = client.get(path, headers=as_role(role))
    if role is None:
        assert answer.status_code == 303 and answer.headers["location"] == f"/login?next={path}"
    elif role in allowed:
        assert answer.status_code == 200 and "<html" in answer.text
    else:
        assert answer.status_code == 403 and "无权访问" in answer.text


# --- writing ------------------------------------------------------------------------------


def post_case(client: TestClient, community: int, role: str | None) -> Any:
    """A case reported the way the inspector's map and the command centre's desk report it."""
    feature = {
        "type": "Feature",
        "geometry": point(community, 30),
        "properties": {"category_code": "E0101", "description": "私搭乱建"},
    }
    return client.post("/cases", data={"feature": json.dumps(feature)}, headers=as_role(role))


def test_cases_are_not_made_by_hand_through_the_generic_items(
    client: TestClient, world: World
) -> None:
    """Only an admin may write a case whole; others report, so status and times are the server's."""
    before = snapshot(world.engine)
    feature = {"type": "Feature", "geometry": point(1, 30), "properties": PROPERTIES["cases"]}
    for role in ("inspector", "dispatcher", "leader"):
        answer = client.post("/collections/cases/items", json=feature, headers=bearer(role))
        assert answer.status_code == 403, role
    assert snapshot(world.engine) == before


@pytest.mark.parametrize(
    ("role", "community", "status", "code"),
    [
        ("inspector", 1, 201, None),
        ("inspector", 2, 403, "outside_patrol_area"),
        ("dispatcher", 2, 201, None),
        ("leader", 1, 403, "forbidden"),
        ("planner", 1, 403, "forbidden"),
        ("handler", 1, 403, "forbidden"),
        ("admin", 2, 201, None),
        (None, 1, 401, "not_signed_in"),
    ],
)
def test_reporting_a_case(
    client: TestClient,
    world: World,
    role: str | None,
    community: int,
    status: int,
    code: str | None,
) -> None:
    before = snapshot(world.engine)
    answer = post_case(client, community, role)
    assert answer.status_code == status, answer.text
    if code is not None:
        assert answer.json()["code"] == code and answer.json()["message"]
        assert snapshot(world.engine) == before
    else:
        with world.engine.connect() as conn:
            actor = conn.execute(
                text("SELECT actor FROM audit_log WHERE layer = 'cases' ORDER BY id DESC LIMIT 1")
            ).scalar_one()
        assert actor == role


@pytest.mark.parametrize(("community", "status"), [(1, 201), (2, 403)])
def test_an_inspector_records_dust_inspections_only_in_the_area(
    client: TestClient, world: World, community: int, status: int
) -> None:
    site = (world.west if community == 1 else world.east)["dust_sites"]
    before = snapshot(world.engine)
    answer = client.post(
        "/collections/dust_inspections/items",
        json={
            "type": "Feature",
            "geometry": None,
            "properties": {
                "dust_site_id": site,
                "inspected_on": "2026-11-21",
                "inspector": "监督员",
                "problems_found": 0,
            },
        },
        headers=bearer("inspector"),
    )
    assert answer.status_code == status, answer.text
    if status != 201:
        assert answer.json()["code"] == "outside_patrol_area" and snapshot(world.engine) == before


def patch(client: TestClient, layer: str, fid: int, properties: dict[str, Any], role: str) -> Any:
    etag = client.get(f"/collections/{layer}/items/{fid}", headers=bearer("admin")).headers["etag"]
    return client.patch(
        f"/collections/{layer}/items/{fid}",
        json={"properties": properties},
        headers={**bearer(role), "If-Match": etag},
    )


def test_an_inspector_closes_work_orders_in_the_area_and_nothing_else(
    client: TestClient, world: World
) -> None:
    before = snapshot(world.engine)
    outside = client.post(
        f"/work_orders/{world.east['work_orders']}/rectified", json={}, headers=bearer("inspector")
    )
    assert outside.status_code == 404
    deadline = patch(
        client, "work_orders", world.west["work_orders"], {"deadline": "2027-01-01"}, "inspector"
    )
    assert deadline.status_code == 403 and deadline.json()["code"] == "forbidden"
    sign = patch(client, "billboards", world.west["billboards"], {"face_area_m2": 1.0}, "inspector")
    assert sign.status_code == 403
    for role in ("leader", "planner"):
        assert (
            patch(
                client, "billboards", world.west["billboards"], {"face_area_m2": 1.0}, role
            ).status_code
            == 403
        )
    etag = client.get(
        f"/collections/cases/items/{world.west['cases']}", headers=bearer("admin")
    ).headers["etag"]
    gone = client.delete(
        f"/collections/cases/items/{world.west['cases']}",
        headers={**bearer("inspector"), "If-Match": etag},
    )
    assert gone.status_code == 403
    assert snapshot(world.engine) == before
    # the result is the server's to decide: set by the domain operation, not by a generic edit
    claimed = patch(
        client,
        "work_orders",
        world.west["work_orders"],
        {"result": "on_time", "rectified_on": "2026-11-25"},
        "inspector",
    )
    assert claimed.status_code == 403 and claimed.json()["code"] == "forbidden"
    assert snapshot(world.engine) == before
    closed = client.post(
        f"/work_orders/{world.west['work_orders']}/rectified", json={}, headers=bearer("inspector")
    )
    assert closed.status_code in (200, 201), closed.text
    assert (
        patch(
            client, "billboards", world.west["billboards"], {"face_area_m2": 13.0}, "admin"
        ).status_code
        == 204
    )


@pytest.mark.parametrize(
    ("role", "status"),
    [
        ("planner", 200),
        ("admin", 200),
        ("leader", 403),
        ("inspector", 403),
        ("dispatcher", 403),
        ("handler", 403),
    ],
)
def test_only_planners_change_grids_and_their_people(
    client: TestClient, world: World, role: str, status: int
) -> None:
    before = snapshot(world.engine)
    answer = client.put(
        f"/grids/{EAST}/people",
        json={"responsible_person": f"{role}改的", "inspectors": []},
        headers=bearer(role),
    )
    assert answer.status_code == status, answer.text
    if status == 403:
        assert snapshot(world.engine) == before
    check = client.post("/grids/check", json={"parent": STREET}, headers=bearer(role))
    assert check.status_code == (200 if role in ("planner", "admin", "leader") else 403)


# --- nothing open by mistake ---------------------------------------------------------------

PUBLIC = {"/", "/health", "/ready", "/auth/token", "/conformance"}


def test_every_operation_but_the_public_ones_needs_a_sign_in(client: TestClient) -> None:
    """Each operation of the OpenAPI document, and each map page, refuses an anonymous request."""
    checked = 0
    for template, operations in client.app.openapi()["paths"].items():  # type: ignore[attr-defined]
        if template in PUBLIC:
            continue
        # every other path parameter is an id or a tile index: 1
        path = template.format_map(defaultdict(lambda: "1", collectionId="billboards", code=WEST))
        for method in operations:
            answer = client.request(method.upper(), path)
            assert answer.status_code == 401, (method, path, answer.status_code)
            if method != "head":  # a HEAD answer has no body
                assert answer.json()["code"] == "not_signed_in"
            assert answer.headers["www-authenticate"] == "Bearer"
            checked += 1
    for page, _title in PAGES.values():
        assert client.get(page).status_code == 303, page
    assert checked >= 20  # the enumeration found the API


def test_the_public_routes_answer_anonymously(client: TestClient) -> None:
    for path in ("/", "/health", "/ready", "/login", "/conformance", "/api", "/docs"):
        assert client.get(path).status_code == 200, path


@pytest.mark.parametrize("role", ROLES)
def test_layer_counts_count_only_what_the_role_may_read(
    client: TestClient, world: World, role: str
) -> None:
    counts = {
        row["id"]: row["count"] for row in client.get("/layers", headers=as_role(role)).json()
    }
    for layer in (*SPATIAL, *CHILDREN):
        readable = client.get(f"/collections/{layer}/items?limit=10000", headers=as_role(role))
        with world.engine.connect() as conn:
            stored = conn.execute(text(f'SELECT count(*) FROM "{layer}"')).scalar_one()
        if role == "inspector" or (role == "handler" and layer == "cases"):
            assert counts[layer] == len(ids_in(readable.json())) < stored, layer
        else:
            assert counts[layer] == stored, layer
