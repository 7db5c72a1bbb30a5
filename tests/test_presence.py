"""Presence and coverage: an inspector's scripted day gives exact minutes on duty and streets
passed, a sanitation vehicle sweeping two of its three road segments gives two thirds by length;
every role in two counties, CSV with Chinese headers, bad periods refused; and the road segments
layer through items, editing, tiles, export and import.

Both counties (tests/counties.py) hold a street of two communities; the inspectors patrol the
first (west) one. Streets and segments are drawn in metres from the county's centre, in its
Gauss-Krüger zone, so their lengths are known by hand.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import mapbox_vector_tile
import pytest
import shapely
from fastapi.testclient import TestClient
from shapely.geometry import LineString, mapping
from sqlalchemy import Engine, text

from api.app import create_app
from api.settings import DatabaseSettings, TrackingSettings
from layers.engine.access import Viewer
from layers.registry import Role
from layers.store import db
from layers.tracking import coverage, store
from layers.tracking.jt808.messages import CHINA
from tests.accounts import ROLES, TEST_AUTH, bearer, browser_context, ensure_account
from tests.counties import DEMO, SANYUAN, CountyRows, _from_centre, _wkb, two_counties
from tests.databases import PgServer, fresh_database
from tests.support import ARTIFACTS, assert_policy_kept, live_server, wait_for, watch

SCOPES = {"a": (DEMO,), "b": (SANYUAN,), "city": (DEMO, SANYUAN)}
UNITS = {DEMO: "启东测试中队", SANYUAN: "三元区测试中队"}
DAY = "2026-11-20"
NEXT_DAY = "2026-11-21"
GEOJSON = {"Content-Type": "application/geo+json"}
# the inspector's streets, in the patrol area (west community: x from -1500 to 0): (x0, y0, x1, y1)
STREETS = {
    "walked": (-1400, 0, -400, 0),  # 1000 m, walked end to end
    "north": (-1400, 600, -400, 600),  # 1000 m, never approached (a gap jumps across it)
    "across": (-300, -500, 700, -500),  # 1000 m, 300 m of it in the area
}
AREA_STREETS_M = 1000 + 1000 + 300
# drawn in tests/counties.py's zone, measured in the county's stored one: a scale apart of 1e-4
ZONES_APART = 2e-4
# the sanitation vehicle's segments, in the east community: two swept, one passed too fast
SEGMENTS = {
    "swept_a": (100, -800, 500, -800),  # 400 m
    "swept_b": (700, -800, 1300, -800),  # 600 m
    "fast": (600, -300, 100, -300),  # 500 m, driven at 36 km/h
}


@dataclass
class World:
    """The database, its two counties' rows and the vehicles' ids."""

    url: str
    engine: Engine
    rows: dict[str, CountyRows]
    vehicles: dict[str, int]


def _line(rows: CountyRows, x0: float, y0: float, x1: float, y1: float) -> bytes:
    return _wkb(rows, LineString([_from_centre(rows, x0, y0), _from_centre(rows, x1, y1)]))


def _segment(conn: Any, rows: CountyRows, name: str, ends: tuple[float, ...], vehicle: Any) -> None:
    conn.execute(
        text("""INSERT INTO road_segments (adcode, geom, name, road, road_class, sweeper_vehicle_id)
                VALUES (:a, ST_GeomFromWKB(:wkb, 4490), :n, :n, 'branch', :v)"""),
        {"a": rows.adcode, "wkb": _line(rows, *ends), "n": name, "v": vehicle},
    )


def _vehicle(conn: Any, rows: CountyRows, plate: str, phone: str) -> tuple[int, int]:
    """A sanitation vehicle with a terminal; (vehicle id, tracker id)."""
    lon, lat = rows.lonlat(1000, -900)
    vehicle = conn.execute(
        text("""INSERT INTO vehicles (adcode, geom, plate, kind, terminal_phone, company)
                VALUES (:a, ST_SetSRID(ST_MakePoint(:x, :y), 4490), :p, 'sanitation', :t,
                        '测试环卫所') RETURNING id"""),
        {"a": rows.adcode, "x": lon, "y": lat, "p": plate, "t": phone},
    ).scalar_one()
    terminal = conn.execute(
        text("""INSERT INTO terminals (phone, auth_code, vehicle_id, protocol)
                VALUES (:t, 'code', :v, 'platform') RETURNING id"""),
        {"t": phone, "v": vehicle},
    ).scalar_one()
    tracker = conn.execute(
        text(
            "INSERT INTO latest_positions (terminal_id, owner_adcode) VALUES (:t, :a) RETURNING id"
        ),
        {"t": terminal, "a": rows.adcode},
    ).scalar_one()
    return int(vehicle), int(tracker)


def at(clock: str, day: str = DAY) -> datetime:
    """A China-time moment of the test day."""
    return datetime.fromisoformat(f"{day}T{clock}").replace(tzinfo=CHINA)


def _inspector_day(rows: CountyRows, tracker: int) -> list[store.Fix]:
    """08:00-08:30 along the walked street (30 min), a 10-minute gap to beyond the north street,
    08:40-08:43 there (3 min), out of the area 08:44-08:45, back 08:46-08:47 (1 min), and
    23:58-00:01 across midnight (1 min on each day)."""
    fixes: list[tuple[datetime, float, float]] = []
    start = at("08:00:00")
    for minute in range(31):
        fixes.append((start + timedelta(minutes=minute), -1400 + minute * 1000 / 30, 5))
    for minute, x in ((40, -900), (41, -900), (42, -890), (43, -900)):
        fixes.append((start + timedelta(minutes=minute), x, 900))
    for minute, x in ((44, 500), (45, 520), (46, -900), (47, -905)):
        fixes.append((start + timedelta(minutes=minute), x, 900))
    for moment in (
        at("23:58:00"),
        at("23:59:00"),
        at("00:00:00", NEXT_DAY),
        at("00:01:00", NEXT_DAY),
    ):
        fixes.append((moment, -900, 900))
    return [store.Fix(tracker, moment, *rows.lonlat(x, y)) for moment, x, y in fixes]


def _sweeper_day(rows: CountyRows, tracker: int) -> list[store.Fix]:
    """Along both swept segments at 9 km/h (25 m every 10 s), then along the third at 36 km/h."""
    start = at("05:00:00")
    fixes = [
        store.Fix(tracker, start + timedelta(seconds=10 * n), *rows.lonlat(100 + 25 * n, -795), 9.0)
        for n in range(49)
    ]
    later = start + timedelta(minutes=10)
    fixes += [
        store.Fix(
            tracker, later + timedelta(seconds=10 * n), *rows.lonlat(600 - 100 * n, -300), 36.0
        )
        for n in range(6)
    ]
    return fixes


@pytest.fixture(scope="module")
def world(pg_server: PgServer) -> Iterator[World]:
    databases = fresh_database(pg_server, "presence")
    url = next(databases)
    engine = db.make_engine(pg_server.as_owner(url))
    with engine.begin() as conn:
        demo, second = two_counties(conn)
        rows = {DEMO: demo, SANYUAN: second}
        for name, ends in STREETS.items():
            _segment(conn, demo, f"测试{name}路", ends, None)
        vehicle, sweeper = _vehicle(conn, demo, "苏F30001", "13333330001")
        for name, ends in SEGMENTS.items():
            _segment(conn, demo, f"测试{name}段", ends, vehicle)
        other, _ = _vehicle(conn, second, "闽G30002", "13333330002")
        _segment(conn, second, "三元测试段", SEGMENTS["swept_a"], other)
    ensure_account(engine, "admin", "admin")
    for role in ROLES:
        for scope, adcodes in SCOPES.items():
            grids = tuple(rows[a].communities[0] for a in adcodes) if role == "inspector" else ()
            unit = UNITS[adcodes[-1]] if role == "handler" else None
            ensure_account(engine, f"{role}-{scope}", role, grids, unit, adcodes)
    with engine.begin() as conn:
        walker = store.person_tracker(conn, "inspector-a", (DEMO,))
        store.write_positions(conn, _inspector_day(demo, walker) + _sweeper_day(demo, sweeper))
    try:
        yield World(url, engine, rows, {DEMO: vehicle, SANYUAN: other})
    finally:
        engine.dispose()
        next(databases, None)


@pytest.fixture(scope="module")
def client(world: World) -> Iterator[TestClient]:
    settings = TrackingSettings(presence_gap_minutes=5, coverage_buffer_m=30, sweeping_max_kmh=20)
    app = create_app(
        DatabaseSettings(database_url=world.url), auth_settings=TEST_AUTH, tracking=settings
    )
    with TestClient(app) as c:
        yield c


def _rows(client: TestClient, path: str, who: str, **params: str) -> list[dict[str, Any]]:
    answer = client.get(path, params=params or {"date": DAY}, headers=bearer(who))
    assert answer.status_code == 200, answer.text
    found: list[dict[str, Any]] = answer.json()["rows"]
    return found


# --- the hand-computed days -----------------------------------------------------------------


def test_minutes_on_duty_and_streets_passed_of_a_scripted_day(client: TestClient) -> None:
    found = _rows(client, "/stats/presence", "leader-a")
    mine = next(r for r in found if r["username"] == "inspector-a")
    assert mine["on_duty_minutes"] == 30 + 3 + 1 + 1  # the gap, the trip out, midnight cut
    assert mine["fixes"] == 31 + 4 + 4 + 2
    assert mine["streets_m"] == pytest.approx(AREA_STREETS_M, rel=ZONES_APART)
    assert mine["passed_m"] == pytest.approx(1000, rel=ZONES_APART)  # not the north street: the gap
    assert mine["passed_share"] == pytest.approx(1000 / AREA_STREETS_M, abs=1e-4)
    idle = next(r for r in found if r["username"] == "inspector-city" and r["adcode"] == DEMO)
    assert (idle["fixes"], idle["on_duty_minutes"], idle["passed_share"]) == (0, 0, 0)
    assert idle["streets_m"] == mine["streets_m"]  # the same community, no position
    two = _rows(client, "/stats/presence", "leader-a", **{"from": DAY, "to": NEXT_DAY})
    days = {r["day"]: r for r in two if r["username"] == "inspector-a"}
    assert days[DAY]["on_duty_minutes"] == 35 and days[NEXT_DAY]["on_duty_minutes"] == 1
    assert days[NEXT_DAY]["passed_m"] == 0  # a minute standing still far from every street


def test_a_vehicle_sweeping_two_of_its_three_segments_covers_two_thirds(
    client: TestClient, world: World
) -> None:
    found = _rows(client, "/stats/sweeping", "leader-a")
    assert [r["vehicle_id"] for r in found] == [world.vehicles[DEMO]]
    row = found[0]
    assert row["segments"] == 3 and row["fixes"] == 49 + 6
    assert row["assigned_m"] == pytest.approx(1500, rel=ZONES_APART)
    assert row["swept_m"] == pytest.approx(1000, rel=ZONES_APART)
    assert row["swept_share"] == pytest.approx(2 / 3, abs=1e-4)
    rules = TrackingSettings(sweeping_max_kmh=50).coverage_rules()  # the fast pass now sweeps
    viewer = Viewer("leader-a", Role.LEADER, counties=(DEMO,))
    day = date.fromisoformat(DAY)
    with world.engine.connect() as conn:
        faster = coverage.sweeping(conn, coverage.Period(day, day, viewer, rules))
    assert faster[0]["swept_share"] == pytest.approx(1.0, abs=1e-3)


# --- who reads what ---------------------------------------------------------------------------


def _expected_presence(who: str) -> set[tuple[str, str]]:
    """(inspector, county) rows the account reads: an inspector their own, handlers nothing."""
    held = (DEMO, SANYUAN) if who == "admin" else SCOPES[who.rsplit("-", 1)[1]]
    everyone = {
        (f"inspector-{scope}", adcode) for scope, adcodes in SCOPES.items() for adcode in adcodes
    }
    if who.startswith("inspector-"):
        return {(name, adcode) for name, adcode in everyone if name == who and adcode in held}
    return {(name, adcode) for name, adcode in everyone if adcode in held}


@pytest.mark.parametrize(
    "who", ["admin", *(f"{r}-{s}" for r in ROLES if r != "admin" for s in SCOPES)]
)
def test_every_role_in_two_counties(client: TestClient, world: World, who: str) -> None:
    if who.startswith("handler-"):
        for path in ("/stats/presence", "/stats/sweeping"):
            refused = client.get(path, params={"date": DAY}, headers=bearer(who))
            assert refused.status_code == 403, refused.text
            assert refused.json()["code"] == "forbidden" and refused.json()["message"]
        return
    presence = _rows(client, "/stats/presence", who)
    assert {(r["username"], r["adcode"]) for r in presence} == _expected_presence(who)
    held = (DEMO, SANYUAN) if who == "admin" else SCOPES[who.rsplit("-", 1)[1]]
    sweeping = {r["vehicle_id"] for r in _rows(client, "/stats/sweeping", who)}
    # an inspector's patrol area (the west community) holds none of the vehicles' segments
    expected = set() if who.startswith("inspector-") else {world.vehicles[a] for a in held}
    assert sweeping == expected


def test_a_county_asked_for_narrows_the_rows(client: TestClient) -> None:
    found = _rows(client, "/stats/presence", "leader-city", date=DAY, county=SANYUAN)
    assert {r["adcode"] for r in found} == {SANYUAN}
    other = client.get(
        "/stats/sweeping", params={"date": DAY, "county": SANYUAN}, headers=bearer("leader-a")
    )
    assert other.status_code == 403, other.text


def test_csv_with_chinese_headers(client: TestClient) -> None:
    for path, first, last in (
        ("/stats/presence", "日期", "道路巡查覆盖率"),
        ("/stats/sweeping", "日期", "清扫覆盖率"),
    ):
        answer = client.get(path, params={"date": DAY, "format": "csv"}, headers=bearer("leader-a"))
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"].startswith("text/csv")
        assert "attachment" in answer.headers["content-disposition"]
        table = list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))
        assert table[0][0] == first and table[0][-1] == last
        assert len(table) == 1 + len(_rows(client, path, "leader-a"))
    body = client.get(
        "/stats/presence", params={"date": DAY, "format": "csv"}, headers=bearer("leader-a")
    ).content.decode("utf-8-sig")
    assert "inspector-a" in body and ",35.0," in body


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({}, 400, "period_required"),
        ({"date": DAY, "from": DAY, "to": DAY}, 400, "period_required"),
        ({"from": DAY}, 400, "period_required"),
        ({"date": "2026-02-30"}, 400, None),
        ({"date": "yesterday"}, 400, None),
        ({"from": NEXT_DAY, "to": DAY}, 400, "period_reversed"),
        ({"from": "2026-01-01", "to": "2026-12-31"}, 400, "period_too_long"),
        ({"date": DAY, "format": "xml"}, 400, None),
        ({"date": "9999-12-31"}, 400, "day_out_of_range"),
        ({"date": "0001-01-01"}, 200, None),
    ],
)
def test_bad_periods_are_refused(
    client: TestClient, params: dict[str, str], status: int, code: str | None
) -> None:
    for path in ("/stats/presence", "/stats/sweeping"):
        answer = client.get(path, params=params, headers=bearer("leader-a"))
        assert answer.status_code == status, answer.text
        body = answer.json()
        if status == 200:
            # no grid was valid then, no vehicle moved
            assert body["rows"] == [] if path == "/stats/presence" else body["rows"]
            assert all(r["fixes"] == 0 and r["swept_m"] == 0 for r in body["rows"])
            continue
        assert body["message"] and body["code"] == (code or body["code"])
        if code is None:
            assert body["code"] not in ("period_required", "period_reversed")


# --- the road segments layer through the generic machinery -------------------------------------


def _tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    y = (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n
    return int((lon + 180) / 360 * n), int(y)


def test_road_segments_are_items_tiles_and_editable(client: TestClient, world: World) -> None:
    rows = world.rows[DEMO]
    shape = LineString([rows.lonlat(-1400, -900), rows.lonlat(-1000, -900)])
    body = {
        "type": "Feature",
        "geometry": mapping(shape),
        "properties": {"name": "测试新路第1段", "road": "测试新路", "road_class": "branch"}
        | {"sweeper_vehicle_id": world.vehicles[DEMO], "sweeping_unit": "测试环卫所"},
    }
    send = json.dumps(body, ensure_ascii=False)
    for who in ("leader-a", "inspector-a", "dispatcher-a"):
        refused = client.post(
            "/collections/road_segments/items", content=send, headers={**GEOJSON, **bearer(who)}
        )
        assert refused.status_code == 403, (who, refused.text)
    created = client.post(
        "/collections/road_segments/items",
        content=send,
        headers={**GEOJSON, **bearer("planner-a")},
    )
    assert created.status_code == 201, created.text
    path = created.headers["location"].replace("http://testserver", "")
    try:
        one = client.get(path, headers=bearer("leader-a")).json()
        assert one["properties"]["length_m"] == pytest.approx(400, abs=0.5)
        assert client.get(path, headers=bearer("leader-b")).status_code == 404
        etag = client.get(path, headers=bearer("planner-a")).headers["etag"]
        wrong = client.patch(
            path,
            content=json.dumps({"properties": {"road_class": "motorway"}}),
            headers={**GEOJSON, "If-Match": etag, **bearer("planner-a")},
        )
        assert wrong.status_code == 400 and wrong.json()["code"] == "property_not_in_code_list"
        nowhere = client.patch(
            path,
            content=json.dumps({"properties": {"sweeper_vehicle_id": 999_999}}),
            headers={**GEOJSON, "If-Match": etag, **bearer("planner-a")},
        )
        assert nowhere.status_code in (400, 409, 422) and nowhere.json()["message"]
        lon, lat = shapely.Point(shape.coords[0]).coords[0]
        x, y = _tile_of(lon + 0.001, lat, 16)
        tile = client.get(
            f"/collections/road_segments/tiles/WebMercatorQuad/16/{x}/{y}",
            headers=bearer("leader-a"),
        )
        assert tile.status_code == 200, tile.text
        drawn = mapbox_vector_tile.decode(tile.content)["road_segments"]["features"]
        assert one["id"] in {f["id"] for f in drawn}
        listed = client.get(
            "/collections/road_segments/items",
            params={"road": "测试新路"},
            headers=bearer("leader-a"),
        ).json()
        assert [f["id"] for f in listed["features"]] == [one["id"]]
    finally:
        etag = client.get(path, headers=bearer("planner-a")).headers["etag"]
        gone = client.delete(path, headers={"If-Match": etag, **bearer("planner-a")})
        assert gone.status_code == 204, gone.text


@pytest.mark.parametrize("fmt", ["geojson", "csv", "gpkg"])
def test_road_segments_go_out_and_back_in(client: TestClient, world: World, fmt: str) -> None:
    who = bearer("planner-b")
    exported = client.get("/collections/road_segments/export", params={"format": fmt}, headers=who)
    assert exported.status_code == 200, exported.text
    back = client.post(
        "/collections/road_segments/import",
        params={"filename": f"segments.{fmt}", "mode": "upsert"},
        content=exported.content,
        headers={"Content-Type": "application/octet-stream", **who},
    )
    assert back.status_code == 200, back.text
    report = back.json()
    assert (report["rows"], report["unchanged"], report["errors"]) == (1, 1, [])  # 三元区's one


# --- the leaders' page --------------------------------------------------------------------------


def test_the_leaders_page_shows_the_days_presence_and_sweeping(browser: Any, world: World) -> None:
    with live_server(world.url) as base:
        page = browser_context(
            browser, base, "leader-a", viewport={"width": 1366, "height": 900}, locale="zh-CN"
        ).new_page()
        seen = watch(page)
        page.goto(f"{base}/maps/leader", wait_until="load")
        wait_for(page, "window.CityGrid && CityGrid.presenceDay", timeout=60_000)
        page.fill("input[name=presence_day]", DAY)
        page.dispatch_event("input[name=presence_day]", "change")
        wait_for(page, f"CityGrid.presenceDay === '{DAY}'")
        people = page.locator(".cg-presence-rows tr[data-row]")
        assert people.count() == len(_expected_presence("leader-a")) == 2
        walked = people.filter(has_text="inspector-a").inner_text()
        assert "35" in walked and "43.5%" in walked
        vehicles = page.locator(".cg-sweeping-rows tr[data-row]")
        assert vehicles.count() == 1 and "66.7%" in vehicles.inner_text()
        link = page.get_attribute(".cg-presence-csv", "href")
        assert link is not None and f"date={DAY}" in link and "format=csv" in link
        page.screenshot(path=str(ARTIFACTS / "leader-presence.png"))
        assert not seen.page_errors and not seen.blocked, (seen.page_errors, seen.blocked)
        assert_policy_kept(seen)
