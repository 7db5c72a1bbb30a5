"""Positions over HTTP (inspectors' phones, forwarding platforms), latest positions and tracks
read by every role in two counties, the day partitions and their retention, the gateway's
readiness check and the vehicles layer.

The demo county (320681) and 三元区 (350404) each hold a registered muck truck inside the first
community (an inspector's patrol area) and a sanitation vehicle in the second; 三元区 also has a
terminal that no vehicle names (unregistered). Inspectors of each county report from phones.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from sqlalchemy import Engine, text

from api.app import create_app
from api.settings import DatabaseSettings, TrackingSettings
from layers.store import db
from layers.tracking import store
from tests.accounts import ROLES, TEST_AUTH, bearer, ensure_account
from tests.counties import DEMO, SANYUAN, CountyRows, two_counties
from tests.databases import PgServer, fresh_database
from tests.support import free_port

SCOPES = {"a": (DEMO,), "b": (SANYUAN,), "city": (DEMO, SANYUAN)}
NAMES = ["admin", *(f"{r}-{s}" for r in ROLES for s in SCOPES)]
UNITS = {DEMO: "启东测试中队", SANYUAN: "三元区测试中队"}  # the grids' responsible units
NOW = datetime.now(UTC).replace(microsecond=0)  # set again when this module's tests start
# terminal number → (county, plate, kind, where: community index, metres east)
VEHICLES = {
    "13311110001": (DEMO, "苏F10001", "muck", 0),
    "13311110002": (DEMO, "苏F10002", "sanitation", 1),
    "13322220001": (SANYUAN, "闽G20001", "muck", 0),
    "13322220002": (SANYUAN, "闽G20002", "sanitation", 1),
}
UNREGISTERED = "13322229999"  # reports from 三元区's first community; no vehicle names it
GEOJSON = {"Content-Type": "application/json"}


@dataclass
class World:
    """The database, the counties' rows, the accounts' counties and the trackers' ids."""

    url: str
    engine: Engine
    rows: dict[str, CountyRows]
    held: dict[str, tuple[str, ...] | None]
    trackers: dict[str, int]  # terminal number or username → tracker id
    adcode: dict[str, str]  # tracker key → county of its latest position


@pytest.fixture(scope="module")
def world(pg_server: PgServer) -> Iterator[World]:
    databases = fresh_database(pg_server, "tracking")
    url = next(databases)
    engine = db.make_engine(pg_server.as_owner(url))
    with engine.begin() as conn:
        demo, second = two_counties(conn)
        rows = {DEMO: demo, SANYUAN: second}
        for phone, (adcode, plate, kind, community) in VEHICLES.items():
            lon, lat = _community_point(engine, conn, rows[adcode], community)
            conn.execute(
                text("""INSERT INTO vehicles (adcode, geom, plate, kind, terminal_phone, company)
                        VALUES (:a, ST_SetSRID(ST_MakePoint(:x, :y), 4490), :p, :k, :t, '车队')"""),
                {"a": adcode, "x": lon, "y": lat, "p": plate, "k": kind, "t": phone},
            )
    ensure_account(engine, "admin", "admin")
    held: dict[str, tuple[str, ...] | None] = {"admin": None}
    for role in ROLES:
        for scope, adcodes in SCOPES.items():
            name = f"{role}-{scope}"
            held[name] = adcodes
            grids = tuple(rows[a].communities[0] for a in adcodes) if role == "inspector" else ()
            unit = UNITS[adcodes[-1]] if role == "handler" else None
            ensure_account(engine, name, role, grids, unit, adcodes)
    try:
        yield World(url, engine, rows, held, {}, {})
    finally:
        engine.dispose()
        next(databases, None)


def _community_point(
    engine: Engine, conn: Any, rows: CountyRows, community: int
) -> tuple[float, float]:
    """A point inside a community grid, found by the database."""
    found = conn.execute(
        text("""SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) AS p FROM grids
                WHERE code = :c AND valid_to IS NULL) AS g"""),
        {"c": rows.communities[community]},
    ).one()
    return float(found[0]), float(found[1])


@pytest.fixture(scope="module")
def client(world: World) -> Iterator[TestClient]:
    settings = TrackingSettings(position_batch_max=50, offline_minutes=10)
    app = create_app(
        DatabaseSettings(database_url=world.url), auth_settings=TEST_AUTH, tracking=settings
    )
    with TestClient(app) as c:
        yield c


def _post(client: TestClient, who: str, positions: list[dict[str, Any]]) -> Any:
    body = json.dumps({"positions": positions}, default=str)
    return client.post("/tracking/positions", content=body, headers={**GEOJSON, **bearer(who)})


@pytest.fixture(scope="module", autouse=True)
def _counted_from_the_start() -> None:
    """Times count from when this module's tests start, not from collection: a long suite
    before them would make "two minutes ago" older than the offline limit."""
    global NOW
    NOW = datetime.now(UTC).replace(microsecond=0)


def _at(
    lonlat: tuple[float, float], minutes_ago: float, speed: float = 20.0, **more: Any
) -> dict[str, Any]:
    when = NOW - timedelta(minutes=minutes_ago)
    return {"lon": lonlat[0], "lat": lonlat[1], "time": when.isoformat(), "speed": speed, **more}


def _count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM positions")).scalar_one())


@pytest.fixture(scope="module")
def reported(client: TestClient, world: World) -> World:
    """Every vehicle, the unregistered terminal and the inspectors report; ids noted."""
    with world.engine.connect() as conn:
        for phone, (adcode, _, _, community) in VEHICLES.items():
            spot = _community_point(world.engine, conn, world.rows[adcode], community)
            world.adcode[phone] = adcode
            # the sanitation vehicle of the demo county stands still; the other reports are moving
            speed = 0.0 if phone == "13311110002" else 25.0
            answer = _post(
                client,
                "admin",
                [_at(spot, 3, speed, terminal=phone), _at(spot, 2, speed, terminal=phone)],
            )
            assert answer.status_code == 200, answer.text
        spot = _community_point(world.engine, conn, world.rows[SANYUAN], 0)
        old = _at(spot, 30, terminal=UNREGISTERED)  # offline: silent for 30 minutes
        assert _post(client, "dispatcher-b", [old]).status_code == 200
        world.adcode[UNREGISTERED] = SANYUAN
        for scope, adcode in (("a", DEMO), ("b", SANYUAN)):
            name = f"inspector-{scope}"
            spot = _community_point(world.engine, conn, world.rows[adcode], 1)
            # the same position twice, as phones do when they stand still
            answer = _post(client, name, [_at(spot, 5), _at(spot, 4), _at(spot, 4)])
            assert answer.status_code == 200 and answer.json() == {"stored": 3}
            world.adcode[name] = adcode
        trackers = conn.execute(
            text("""SELECT COALESCE(t.phone, l.username), l.id FROM latest_positions AS l
                    LEFT JOIN terminals AS t ON t.id = l.terminal_id""")
        ).all()
    world.trackers = {key: ident for key, ident in trackers}
    return world


# --- posting --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("position", "status", "code"),
    [
        ({"lon": 200, "lat": 31.8}, 400, "invalid_request"),
        ({"lon": 0, "lat": 0}, 400, "invalid_coordinates"),
        ({"lon": 121.6, "lat": 31.8, "time": "FUTURE"}, 400, "time_in_future"),
        ({"lon": 121.6, "lat": 31.8, "time": "OLD"}, 400, "time_too_old"),
        ({"lon": 121.6, "lat": 31.8, "time": "2026-12-01T10:00:00"}, 400, "time_without_offset"),
        ({"lon": 121.6, "lat": 31.8, "speed": -3}, 400, "invalid_request"),
        ({"lon": 121.6, "lat": 31.8, "colour": "red"}, 400, "invalid_request"),
    ],
)
def test_a_bad_position_is_refused_with_its_reason_and_nothing_is_stored(
    client: TestClient, reported: World, position: dict[str, Any], status: int, code: str
) -> None:
    times = {"FUTURE": NOW + timedelta(hours=1), "OLD": NOW - timedelta(days=400)}
    item = {"time": NOW.isoformat(), **position}
    item["time"] = str(times.get(item["time"], item["time"]))
    good = _at((121.6, 31.8), 1)
    before = _count(reported.engine)
    answer = _post(client, "inspector-a", [good, item])
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert body["code"] == code and body["message"] and body["message_en"]
    assert _count(reported.engine) == before


def test_an_oversized_batch_and_a_missing_body_are_refused(
    client: TestClient, reported: World
) -> None:
    before = _count(reported.engine)
    answer = _post(client, "inspector-a", [_at((121.6, 31.8), 1)] * 51)
    assert answer.status_code == 413 and answer.json()["code"] == "batch_too_large"
    assert "50" in answer.json()["message"]
    empty = _post(client, "inspector-a", [])
    assert empty.status_code == 400
    assert _count(reported.engine) == before


@pytest.mark.parametrize(
    ("who", "terminal", "status", "code"),
    [
        ("inspector-a", "13311110001", 403, "forbidden"),  # an inspector reports only themself
        ("admin", None, 400, "terminal_missing"),  # a platform names the vehicle's terminal
        ("leader-a", None, 403, "forbidden"),
        ("planner-city", "13311110001", 403, "forbidden"),
        ("handler-a", None, 403, "forbidden"),
        ("dispatcher-b", "13311110001", 403, "outside_counties"),  # the demo county's truck
    ],
)
def test_who_may_report_what(
    client: TestClient, reported: World, who: str, terminal: str | None, status: int, code: str
) -> None:
    before = _count(reported.engine)
    extra = {"terminal": terminal} if terminal else {}
    answer = _post(client, who, [_at((121.6, 31.8), 1, **extra)])
    assert answer.status_code == status, answer.text
    assert answer.json()["code"] == code
    assert _count(reported.engine) == before


def test_a_dispatcher_reports_its_countys_vehicle(client: TestClient, reported: World) -> None:
    spot = (121.657, 31.808)
    before = _count(reported.engine)
    labels = {"source": "http", "stage": "acknowledged"}
    counted = REGISTRY.get_sample_value("citygrid_positions_total", labels) or 0.0
    answer = _post(client, "dispatcher-a", [_at(spot, 1.5, terminal="13311110001")])
    assert answer.status_code == 200 and answer.json() == {"stored": 1}
    assert _count(reported.engine) == before + 1
    assert REGISTRY.get_sample_value("citygrid_positions_total", labels) == counted + 1


# --- latest positions -----------------------------------------------------------------------


def _expected(world: World, name: str) -> set[str]:
    """The tracker keys `name` reads: its counties' (an inspector: its own and those in its
    patrol area, the first community)."""
    held = world.held[name]
    role = name.split("-")[0]
    if held is None:
        return set(world.adcode)
    if role == "inspector":
        inside = {p for p, v in VEHICLES.items() if v[0] in held and v[3] == 0}
        if SANYUAN in held:
            inside.add(UNREGISTERED)
        return inside | ({name} if name in world.adcode else set())
    return {key for key, adcode in world.adcode.items() if adcode in held}


@pytest.mark.parametrize("name", NAMES)
def test_every_role_reads_the_latest_positions_of_its_counties(
    client: TestClient, reported: World, name: str
) -> None:
    answer = client.get("/tracking/vehicles", headers=bearer(name))
    if name.startswith("handler"):
        assert answer.status_code == 403 and answer.json()["code"] == "forbidden"
        return
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/geo+json")
    ids = {f["id"] for f in answer.json()["features"]}
    assert ids == {reported.trackers[k] for k in _expected(reported, name)}


def test_latest_positions_say_moving_stopped_offline_and_flag_unregistered(
    client: TestClient, reported: World
) -> None:
    features = client.get("/tracking/vehicles", headers=bearer("admin")).json()["features"]
    by_id = {f["id"]: f for f in features}

    def props(key: str) -> dict[str, Any]:
        return dict(by_id[reported.trackers[key]]["properties"])

    assert props("13311110001")["state"] == "moving"
    assert props("13311110002")["state"] == "stopped"
    assert props(UNREGISTERED)["state"] == "offline"
    assert props(UNREGISTERED)["registered"] is False and props(UNREGISTERED)["vehicle_id"] is None
    truck = props("13322220001")
    assert truck["registered"] is True and truck["plate"] == "闽G20001" and truck["kind"] == "muck"
    assert truck["subject"] == "vehicle" and truck["adcode"] == SANYUAN
    person = props("inspector-a")
    assert person["subject"] == "person" and person["kind"] == "inspector"
    assert by_id[reported.trackers["13322220001"]]["geometry"]["type"] == "Point"


def test_latest_positions_by_plate_and_kind(client: TestClient, reported: World) -> None:
    def ids(**query: str) -> set[int]:
        answer = client.get("/tracking/vehicles", params=query, headers=bearer("admin"))
        assert answer.status_code == 200, answer.text
        return {f["id"] for f in answer.json()["features"]}

    assert ids(plate="F1000") == {reported.trackers[p] for p in ("13311110001", "13311110002")}
    assert ids(plate="闽G20002") == {reported.trackers["13322220002"]}
    assert ids(kind="sanitation") == {reported.trackers[p] for p in ("13311110002", "13322220002")}
    assert ids(kind="inspector") == {reported.trackers[n] for n in ("inspector-a", "inspector-b")}
    bad = client.get("/tracking/vehicles", params={"kind": "tank"}, headers=bearer("admin"))
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_request"
    one = client.get(
        "/tracking/vehicles", params={"county": SANYUAN}, headers=bearer("leader-city")
    )
    assert {f["properties"]["adcode"] for f in one.json()["features"]} == {SANYUAN}


# --- tracks ---------------------------------------------------------------------------------


def test_a_track_has_every_stored_position_as_a_vertex_and_its_times(
    client: TestClient, reported: World
) -> None:
    tracker = reported.trackers["inspector-a"]
    answer = client.get(f"/tracking/vehicles/{tracker}/track", headers=bearer("inspector-a"))
    assert answer.status_code == 200, answer.text
    feature = answer.json()
    assert feature["geometry"]["type"] == "LineString"
    coords = feature["geometry"]["coordinates"]
    times = feature["properties"]["times"]
    assert len(coords) == len(times) == 3 and coords[1] == coords[2]  # the repeat is kept
    assert [datetime.fromisoformat(t) for t in times] == sorted(
        datetime.fromisoformat(t) for t in times
    )
    assert datetime.fromisoformat(times[0]) == NOW - timedelta(minutes=5)
    points = client.get(
        f"/tracking/vehicles/{tracker}/track", params={"f": "points"}, headers=bearer("leader-a")
    ).json()
    assert [f["geometry"]["coordinates"] for f in points["features"]] == coords
    narrow = client.get(
        f"/tracking/vehicles/{tracker}/track",
        params={
            "from": (NOW - timedelta(minutes=4, seconds=30)).isoformat(),
            "to": NOW.isoformat(),
        },
        headers=bearer("admin"),
    ).json()
    assert len(narrow["properties"]["times"]) == 2


@pytest.mark.parametrize("name", NAMES)
def test_every_role_reads_only_the_tracks_it_may(
    client: TestClient, reported: World, name: str
) -> None:
    role = name.split("-")[0]
    for key, adcode in reported.adcode.items():
        answer = client.get(
            f"/tracking/vehicles/{reported.trackers[key]}/track", headers=bearer(name)
        )
        held = reported.held[name]
        if role == "handler":
            allowed = False
        elif role == "inspector":
            allowed = key == name
        else:
            allowed = held is None or adcode in held
        if allowed:
            assert answer.status_code == 200, (key, answer.text)
            assert answer.json()["properties"]["times"]
        elif role == "handler":
            assert answer.status_code == 403, (key, answer.text)
        else:
            assert answer.status_code == 404, (key, answer.text)
            assert answer.json()["code"] == "feature_not_found"


def test_a_bad_track_period_is_refused(client: TestClient, reported: World) -> None:
    path = f"/tracking/vehicles/{reported.trackers['13311110001']}/track"
    backwards = client.get(
        path,
        params={"from": "2026-12-02T10:00:00+08:00", "to": "2026-12-01T10:00:00+08:00"},
        headers=bearer("admin"),
    )
    assert backwards.status_code == 400 and backwards.json()["code"] == "invalid_period"
    long = client.get(
        path,
        params={"from": "2026-01-01T00:00:00+08:00", "to": "2026-06-01T00:00:00+08:00"},
        headers=bearer("admin"),
    )
    assert long.status_code == 400 and long.json()["code"] == "period_too_long"
    assert client.get(path, params={"f": "kml"}, headers=bearer("admin")).status_code == 400
    missing = client.get("/tracking/vehicles/999999/track", headers=bearer("admin"))
    assert missing.status_code == 404 and missing.json()["code"] == "feature_not_found"


# --- partitions and retention ---------------------------------------------------------------


def _partitions(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                text("""SELECT c.relname FROM pg_inherits AS i JOIN pg_class AS c
                        ON c.oid = i.inhrelid WHERE i.inhparent = 'positions'::regclass
                        ORDER BY c.relname""")
            ).scalars()
        )


def test_day_partitions_are_made_ahead_and_dropped_past_the_retention(
    pg_server: PgServer, scratch_url: str
) -> None:
    api = db.make_engine(scratch_url)  # the API's role: no DDL of its own
    owner = db.make_engine(pg_server.as_owner(scratch_url))
    try:
        noon = datetime(2026, 3, 10, 4, 0, tzinfo=UTC)  # 12:00 in China
        with api.begin() as conn:
            assert store.maintain_partitions(conn, retention_days=3, ahead_days=2, now=noon) == (
                3,
                0,
            )
        assert _partitions(owner) == [
            "positions_20260310",
            "positions_20260311",
            "positions_20260312",
        ]
        ensure_account(owner, "walker", "inspector")
        with api.begin() as conn:
            tracker = store.person_tracker(conn, "walker", None)
            # 23:30 China time on the 12th is the 12th's partition, though the 12th in UTC
            late = datetime(2026, 3, 12, 15, 30, tzinfo=UTC)
            fixes = [store.Fix(tracker, noon, 121.6, 31.8), store.Fix(tracker, late, 121.6, 31.8)]
            assert store.write_positions(conn, fixes) == 2
            # a day with no partition yet (a terminal's backlog) gets one as it is written
            store.write_positions(conn, [store.Fix(tracker, noon - timedelta(days=1), 121.6, 31.8)])
        with owner.connect() as conn:
            counts = dict(
                conn.execute(
                    text("SELECT tableoid::regclass::text, count(*) FROM positions GROUP BY 1")
                ).all()
            )
            brin = conn.execute(
                text("""SELECT count(*) FROM pg_indexes WHERE tablename = 'positions_20260310'
                        AND indexdef LIKE '%USING brin%'""")
            ).scalar_one()
        assert counts == {"positions_20260309": 1, "positions_20260310": 1, "positions_20260312": 1}
        assert brin == 1
        with api.begin() as conn:
            later = noon + timedelta(days=3)  # the 13th: keep the 11th, 12th, 13th
            made, dropped = store.maintain_partitions(
                conn, retention_days=3, ahead_days=1, now=later
            )
        assert (made, dropped) == (2, 2)
        assert _partitions(owner) == [
            "positions_20260311",
            "positions_20260312",
            "positions_20260313",
            "positions_20260314",
        ]
        with owner.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM positions")).scalar_one() == 1
            assert conn.execute(text("SELECT count(*) FROM latest_positions")).scalar_one() == 1
    finally:
        api.dispose()
        owner.dispose()


# --- readiness and the vehicles layer -------------------------------------------------------


def test_ready_names_the_gateway_when_run_beside_it(world: World) -> None:
    port = free_port()
    settings = TrackingSettings(jt808_ready_check=True, jt808_port=port)
    app = create_app(
        DatabaseSettings(database_url=world.url), auth_settings=TEST_AUTH, tracking=settings
    )
    with TestClient(app) as c:
        down = c.get("/ready")
        assert down.status_code == 503
        assert {k["name"]: k["status"] for k in down.json()["checks"]}["gateway"] == "failed"
        with socket.create_server(("127.0.0.1", port)):
            up = c.get("/ready")
        assert up.status_code == 200
        assert [k["name"] for k in up.json()["checks"]] == ["database", "migrations", "gateway"]


def test_dispatchers_keep_the_fleet_and_planners_may_not(
    client: TestClient, reported: World
) -> None:
    spot = (121.657, 31.808)
    feature = {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": list(spot)},
        "properties": {
            "plate": "苏F30003",
            "kind": "kitchen_waste",
            "terminal_phone": "13333330003",
            "permit_no": "QD-2026-001",
            "permit_from": str(date(2026, 1, 1)),
            "permit_to": str(date(2026, 12, 31)),
            "time_windows": "22:00-05:00",
        },
    }
    body = json.dumps(feature, ensure_ascii=False)
    headers = {"Content-Type": "application/geo+json"}
    refused = client.post(
        "/collections/vehicles/items", content=body, headers={**headers, **bearer("planner-a")}
    )
    assert refused.status_code == 403
    made = client.post(
        "/collections/vehicles/items", content=body, headers={**headers, **bearer("dispatcher-a")}
    )
    assert made.status_code == 201, made.text
    bad = dict(feature, properties={**feature["properties"], "plate": "苏F30004", "kind": "tank"})
    wrong = client.post(
        "/collections/vehicles/items",
        content=json.dumps(bad, ensure_ascii=False),
        headers={**headers, **bearer("dispatcher-a")},
    )
    assert wrong.status_code == 400
