"""Online fume monitoring: the restaurants layer, the readings posted by monitoring platforms and
read with their filters, exceedance statistics per restaurant, street and month for every role
of two counties, and the demo at the reports' figures."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import mapbox_vector_tile
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.app import create_app
from api.settings import DatabaseSettings, DemoSettings
from layers.cases.codes import seed_case_categories
from layers.engine import placing
from layers.registry import RESTAURANTS
from layers.store import db
from tests.accounts import TEST_AUTH, bearer, ensure_account, sign_in
from tests.counties import (
    DEMO,
    SANYUAN,
    SCOPED_NAMES,
    CountyRows,
    ensure_scoped_accounts,
    scoped_account,
    two_counties,
)
from tests.databases import fresh_database

GEOJSON = {"Content-Type": "application/geo+json"}
LON, LAT = 121.6571, 31.8081  # in the demo county seat


def scalar(engine: Engine, sql: str, **params: Any) -> Any:
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar_one()


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    y = (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n
    return int((lon + 180) / 360 * n), int(y)


# --- the demo and the layer through the registry's machinery ----------------------------------


@pytest.fixture(scope="module")
def demo_client(demo: dict[str, int], database_url: str) -> Iterator[TestClient]:
    app = create_app(DatabaseSettings(database_url=database_url), auth_settings=TEST_AUTH)
    with TestClient(app) as c:
        ensure_account(database_url, "fume-planner", "planner")
        ensure_account(database_url, "fume-inspector", "inspector")
        yield sign_in(c, database_url)


def test_the_demo_monitors_300_restaurants_for_a_year_under_5_percent(
    demo: dict[str, int], engine: Engine
) -> None:
    year = DemoSettings().year
    hours = (datetime(year + 1, 1, 1) - datetime(year, 1, 1)) // timedelta(hours=1)
    assert scalar(engine, "SELECT count(*) FROM restaurants") == 300
    assert scalar(engine, "SELECT count(DISTINCT device_id) FROM restaurants") == 300
    assert demo["fume_readings"] == 300 * hours
    with engine.connect() as conn:
        total, exceeded, first, last = conn.execute(
            text("""SELECT count(*), count(*) FILTER (WHERE exceeded),
                           min(time AT TIME ZONE 'Asia/Shanghai'),
                           max(time AT TIME ZONE 'Asia/Shanghai') FROM fume_readings""")
        ).one()
        worst = conn.execute(
            text("""SELECT avg(exceeded::int) AS rate FROM fume_readings
                    GROUP BY restaurant_id ORDER BY rate DESC LIMIT 5""")
        ).scalars()
        meal, night = conn.execute(
            text("""SELECT avg(concentration) FILTER (WHERE extract(hour FROM
                               time AT TIME ZONE 'Asia/Shanghai') IN (12, 18)),
                           avg(concentration) FILTER (WHERE extract(hour FROM
                               time AT TIME ZONE 'Asia/Shanghai') = 3)
                    FROM fume_readings""")
        ).one()
        off = scalar(engine, "SELECT avg((NOT purifier_on)::int) FROM fume_readings")
        partitions = scalar(
            engine,
            "SELECT count(*) FROM pg_inherits WHERE inhparent = 'fume_readings'::regclass",
        )
    assert total == 300 * hours
    assert 0.005 < exceeded / total < 0.05
    assert min(worst) > 0.1  # a few restaurants are much worse than the rest
    assert meal > 4 * night
    assert 0 < off < 0.05  # purifiers off on some evenings
    assert first == datetime(year, 1, 1) and last == datetime(year, 12, 31, 23)
    assert partitions == 12
    # the rows stay compact: no geometry, small columns
    width = scalar(engine, "SELECT avg(pg_column_size(f.*)) FROM fume_readings_202303 AS f")
    assert width < 60


def test_the_demo_restaurants_stand_on_the_town_streets_in_their_grids(engine: Engine) -> None:
    with engine.connect() as conn:
        outside, unplaced, streets = conn.execute(
            text("""SELECT count(*) FILTER (WHERE NOT ST_Covers(c.boundary, r.geom)),
                           count(*) FILTER (WHERE r.grid_code IS NULL OR r.street IS NULL),
                           count(DISTINCT r.street)
                    FROM restaurants AS r JOIN counties AS c ON c.adcode = r.adcode""")
        ).one()
    assert outside == 0 and unplaced == 0 and streets >= 3
    unchecked = scalar(
        engine,
        """SELECT count(*) FROM restaurants AS r WHERE r.cleaned_on IS DISTINCT FROM
           (SELECT max(c.cleaned_on) FROM fume_checks AS c WHERE c.restaurant_id = r.id)""",
    )
    assert unchecked == 0 and scalar(engine, "SELECT count(*) FROM fume_checks") == 300


def test_restaurants_through_items_tiles_and_editing(
    demo_client: TestClient, engine: Engine
) -> None:
    page = demo_client.get("/collections/restaurants/items", params={"limit": 5})
    assert page.status_code == 200, page.text
    features = page.json()["features"]
    assert len(features) == 5
    lon, lat = features[0]["geometry"]["coordinates"]
    x, y = tile_of(lon, lat, 17)
    tile = demo_client.get(f"/collections/restaurants/tiles/WebMercatorQuad/17/{x}/{y}")
    assert tile.status_code == 200, tile.text
    drawn = mapbox_vector_tile.decode(tile.content)["restaurants"]["features"]
    assert features[0]["id"] in {f["id"] for f in drawn}
    assert "operator_contact" not in drawn[0]["properties"]  # kept off the maps
    body = {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [LON, LAT]},
        "properties": {"name": "测试饭店", "purifier_type": "electrostatic", "device_id": "T-0001"},
    }
    refused = demo_client.post(
        "/collections/restaurants/items",
        content=json.dumps(body, ensure_ascii=False),
        headers={**GEOJSON, **bearer("fume-planner")},
    )
    assert refused.status_code == 403, refused.text
    wrong = {**body, "properties": {**body["properties"], "purifier_type": "水帘"}}
    bad = demo_client.post(
        "/collections/restaurants/items", content=json.dumps(wrong), headers=GEOJSON
    )
    assert bad.status_code == 400 and bad.json()["code"] == "property_not_in_code_list"
    taken = {**body, "properties": {**body["properties"], "device_id": "YY2300001"}}
    twice = demo_client.post(
        "/collections/restaurants/items", content=json.dumps(taken), headers=GEOJSON
    )
    assert twice.status_code == 409 and twice.json()["code"] == "value_taken", twice.text
    created = demo_client.post(
        "/collections/restaurants/items",
        content=json.dumps(body, ensure_ascii=False),
        headers=GEOJSON,
    )
    assert created.status_code == 201, created.text
    path = created.headers["location"].replace("http://testserver", "")
    try:
        placed = demo_client.get(path).json()["properties"]
        assert placed["grid_code"] and placed["street"]
        etag = demo_client.get(path).headers["etag"]
        changed = demo_client.patch(
            path,
            content=json.dumps({"properties": {"seats": 80}}),
            headers={**GEOJSON, "If-Match": etag},
        )
        assert changed.status_code == 204, changed.text
        assert demo_client.get(path).json()["properties"]["seats"] == 80
    finally:
        etag = demo_client.get(path).headers["etag"]
        assert demo_client.delete(path, headers={"If-Match": etag}).status_code == 204
    assert scalar(engine, "SELECT count(*) FROM restaurants") == 300


# --- two counties: posting, reading, statistics ------------------------------------------------

# (restaurant, x metres from the county's centre): A in the first community, B in the second
PLACES = {"A": (-1100.0, 0.0), "B": (400.0, 0.0)}
TIMES = ("2025-03-31T23:00:00+08:00", "2025-04-01T00:30:00+08:00", "2025-04-02T12:00:00+08:00")
CONCENTRATIONS = {"A": (2.5, 1.8, 0.4), "B": (2.0, 3.1, 1.6)}
LIMITS = {DEMO: 2.0, SANYUAN: 1.5}  # the demo county keeps the national limit
# exceeded, worked out by hand from the concentrations and the limits (over, not at, the limit)
EXCEEDED = {
    (DEMO, "A"): (True, False, False),
    (DEMO, "B"): (False, True, False),
    (SANYUAN, "A"): (True, True, False),
    (SANYUAN, "B"): (True, True, True),
}
MONTHS = ("2025-03", "2025-04", "2025-04")  # China time: 00:30 of 1 April is April there


@dataclass
class World:
    """The database with two counties, their restaurants (by county and letter) and rows."""

    url: str
    engine: Engine
    rows: dict[str, CountyRows]
    restaurants: dict[tuple[str, str], int]


@pytest.fixture(scope="module")
def world(pg_server: Any) -> Iterator[World]:
    databases = fresh_database(pg_server, "fume")
    url = next(databases)
    engine = db.make_engine(pg_server.as_owner(url))
    ids: dict[tuple[str, str], int] = {}
    with engine.begin() as conn:
        seed_case_categories(conn)
        demo, second = two_counties(conn)
        conn.execute(
            text("INSERT INTO fume_limits (adcode, limit_mg_m3) VALUES (:a, :l)"),
            {"a": SANYUAN, "l": LIMITS[SANYUAN]},
        )
        for rows in (demo, second):
            for letter, (x, y) in PLACES.items():
                lon, lat = rows.lonlat(x, y)
                ids[(rows.adcode, letter)] = conn.execute(
                    text("""INSERT INTO restaurants (adcode, geom, name, purifier_type, device_id)
                            VALUES (:a, ST_SetSRID(ST_MakePoint(:lon, :lat), 4490), :name,
                                    'electrostatic', :device) RETURNING id"""),
                    {
                        "a": rows.adcode,
                        "lon": lon,
                        "lat": lat,
                        "name": f"{letter}饭店",
                        "device": f"DEV-{letter}",
                    },
                ).scalar_one()
        placing.place_unplaced(conn, RESTAURANTS)
    rows = {DEMO: demo, SANYUAN: second}
    ensure_scoped_accounts(engine, rows)
    yield World(url, engine, rows, ids)
    engine.dispose()
    next(databases, None)


@pytest.fixture(scope="module")
def client(world: World) -> Iterator[TestClient]:
    app = create_app(DatabaseSettings(database_url=world.url), auth_settings=TEST_AUTH)
    with TestClient(app, follow_redirects=False) as c:
        yield c


def readings_body(letter: str, **change: Any) -> dict[str, Any]:
    return {
        "readings": [
            {"device": f"DEV-{letter}", "time": t, "concentration": c, "purifier_on": True} | change
            for t, c in zip(TIMES, CONCENTRATIONS[letter], strict=True)
        ]
    }


def stored(world: World) -> int:
    return int(scalar(world.engine, "SELECT count(*) FROM fume_readings"))


@pytest.fixture(scope="module")
def posted(client: TestClient, world: World) -> World:
    """The platforms post every restaurant's readings: the admin by county, a dispatcher its own."""
    for adcode in (DEMO, SANYUAN):
        answer = client.post(
            f"/fume/readings?county={adcode}", json=readings_body("A"), headers=bearer("admin")
        )
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"received": 3, "stored": 3}
    for name in ("dispatcher-a", "dispatcher-b"):
        answer = client.post("/fume/readings", json=readings_body("B"), headers=bearer(name))
        assert answer.status_code == 200 and answer.json()["stored"] == 3, answer.text
    again = client.post("/fume/readings", json=readings_body("B"), headers=bearer("dispatcher-a"))
    assert again.json() == {"received": 3, "stored": 0}  # a resent batch adds nothing
    assert stored(world) == 12
    return world


def test_readings_are_marked_against_their_countys_limit(posted: World) -> None:
    with posted.engine.connect() as conn:
        found = conn.execute(
            text("SELECT restaurant_id, exceeded FROM fume_readings ORDER BY restaurant_id, time")
        ).all()
    by_id = {rid: key for key, rid in posted.restaurants.items()}
    marked: dict[tuple[str, str], list[bool]] = {}
    for rid, exceeded in found:
        marked.setdefault(by_id[rid], []).append(exceeded)
    assert {k: tuple(v) for k, v in marked.items()} == EXCEEDED


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"device": "DEV-X"}, "unknown_device"),
        ({"concentration": -0.1}, "negative_concentration"),
        ({"concentration": 250.0}, "concentration_out_of_range"),
        ({"time": (datetime.now(UTC) + timedelta(hours=2)).isoformat()}, "time_in_future"),
        ({"time": "2025-04-01T10:00:00"}, "time_without_offset"),
    ],
)
def test_a_bad_reading_refuses_the_whole_batch(
    client: TestClient, posted: World, change: dict[str, Any], code: str
) -> None:
    body = readings_body("A")
    body["readings"][0]["time"] = "2025-05-01T10:00:00+08:00"  # new, would be stored
    body["readings"][-1] |= change  # the bad one comes last
    answer = client.post("/fume/readings", json=body, headers=bearer("dispatcher-a"))
    assert answer.status_code == 400, answer.text
    assert answer.json()["code"] == code
    assert "第 3 条" in answer.text and "Reading 3" in answer.text
    assert stored(posted) == 12


def test_who_may_post_and_for_which_devices(client: TestClient, posted: World) -> None:
    body = readings_body("A")
    body["readings"] = [body["readings"][0] | {"time": "2025-05-01T10:00:00+08:00"}]
    for name in ("planner-a", "inspector-a", "leader-city", "handler-a"):
        answer = client.post("/fume/readings", json=body, headers=bearer(name))
        assert answer.status_code == 403, (name, answer.text)
    # the same device is registered in both counties: the admin says which
    answer = client.post("/fume/readings", json=body, headers=bearer("admin"))
    assert answer.status_code == 400 and answer.json()["code"] == "ambiguous_device"
    # a dispatcher of the other county does not reach this county's devices
    wrong = client.post(f"/fume/readings?county={DEMO}", json=body, headers=bearer("dispatcher-b"))
    assert wrong.status_code == 403, wrong.text
    assert stored(posted) == 12
    empty = client.post("/fume/readings", json={"readings": []}, headers=bearer("admin"))
    assert empty.status_code in (400, 422)


def items(client: TestClient, name: str, **params: Any) -> list[dict[str, Any]]:
    answer = client.get(
        "/collections/fume_readings/items", params={"limit": 1000, **params}, headers=bearer(name)
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/geo+json")
    features: list[dict[str, Any]] = answer.json()["features"]
    return features


def test_the_readings_filter_by_time_exceedance_and_restaurant(
    client: TestClient, posted: World
) -> None:
    every = items(client, "admin")
    assert len(every) == 12
    assert [f["properties"]["time"] for f in every] == sorted(
        (f["properties"]["time"] for f in every), reverse=True
    )
    assert all(f["geometry"]["type"] == "Point" for f in every)
    over = items(client, "admin", exceeded="true")
    assert len(over) == sum(sum(v) for v in EXCEEDED.values()) == 7
    assert all(f["properties"]["exceeded"] for f in over)
    assert len(items(client, "admin", exceeded="false")) == 5
    one = posted.restaurants[(SANYUAN, "B")]
    mine = items(client, "admin", restaurant=one)
    assert {f["properties"]["restaurant_id"] for f in mine} == {one} and len(mine) == 3
    april = items(client, "admin", datetime="2025-04-01/2025-04-30")  # China-time days
    assert {f["properties"]["time"][:10] for f in april} == {"2025-04-01", "2025-04-02"}
    assert len(april) == 8
    window = items(
        client, "admin", datetime="2025-03-31T15:00:00Z/2025-04-01T00:00:00+08:00", exceeded="true"
    )
    assert len(window) == 3  # 23:00 of 31 March: A and B of 三元区, A of the demo
    instant = items(client, "admin", datetime="2025-04-02T04:00:00Z", restaurant=one)
    assert [f["properties"]["concentration"] for f in instant] == [1.6]
    paged = items(client, "admin", limit=5, offset=10)
    assert len(paged) == 2
    bad = client.get(
        "/collections/fume_readings/items",
        params={"datetime": "2025-04-31"},
        headers=bearer("admin"),
    )
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_datetime"


def visible(world: World, name: str) -> set[tuple[str, str]]:
    """The restaurants an account reads, by hand: its counties; an inspector only the restaurant
    in its patrol community (A); every other role all of them."""
    account = scoped_account(name, world.rows)
    held = account.counties or (DEMO, SANYUAN)
    letters = ("A",) if account.role == "inspector" else ("A", "B")
    return {(adcode, letter) for adcode in held for letter in letters}


def expected_rows(world: World, name: str, by: str) -> dict[str | None, tuple[int, int]]:
    groups: dict[str | None, list[bool]] = {}
    for adcode, letter in sorted(visible(world, name)):
        for n, flag in enumerate(EXCEEDED[(adcode, letter)]):
            key = {
                "restaurant": str(world.restaurants[(adcode, letter)]),
                "grid": world.rows[adcode].street,
                "month": MONTHS[n],
            }[by]
            groups.setdefault(key, []).append(flag)
            groups.setdefault(None, []).append(flag)
    return {k: (len(v), sum(v)) for k, v in groups.items()}


@pytest.mark.parametrize("name", SCOPED_NAMES)
def test_the_readings_hold_only_what_the_account_reads(
    client: TestClient, posted: World, name: str
) -> None:
    seen = {f["properties"]["restaurant_id"] for f in items(client, name)}
    assert seen == {posted.restaurants[k] for k in visible(posted, name)}


@pytest.mark.parametrize("by", ["restaurant", "grid", "month"])
@pytest.mark.parametrize("name", SCOPED_NAMES)
def test_exceedance_rates_per_restaurant_street_and_month(
    client: TestClient, posted: World, name: str, by: str
) -> None:
    params = {"from": "2025-03-01", "to": "2025-04-30", "by": by}
    answer = client.get("/stats/fume", params=params, headers=bearer(name))
    assert answer.status_code == 200, answer.text
    found = {r["key"]: (r["readings"], r["exceeded"]) for r in answer.json()["rows"]}
    assert found == expected_rows(posted, name, by)
    for row in answer.json()["rows"]:
        assert row["exceedance_rate"] == round(row["exceeded"] / row["readings"], 4)
    if by == "grid":
        labels = {r["key"]: r["label"] for r in answer.json()["rows"]}
        for adcode in {a for a, _ in visible(posted, name)}:
            street = posted.rows[adcode].street
            assert labels[street] == f"{adcode}测试{street[-6:]}"  # the street grid's name


def test_the_statistics_narrow_to_a_county_and_a_period_and_go_out_as_csv(
    client: TestClient, posted: World
) -> None:
    one = client.get(
        "/stats/fume",
        params={"from": "2025-04-01", "to": "2025-04-01", "by": "restaurant", "county": SANYUAN},
        headers=bearer("leader-city"),
    ).json()["rows"]
    # 1 April in China time holds the 00:30 readings alone
    assert {r["key"]: r["exceeded"] for r in one} == {
        str(posted.restaurants[(SANYUAN, "A")]): 1,
        str(posted.restaurants[(SANYUAN, "B")]): 1,
        None: 2,
    }
    refused = client.get(
        "/stats/fume",
        params={"from": "2025-03-01", "to": "2025-04-30", "county": SANYUAN},
        headers=bearer("leader-a"),
    )
    assert refused.status_code == 403
    sheet = client.get(
        "/stats/fume",
        params={"from": "2025-03-01", "to": "2025-04-30", "by": "month", "format": "csv"},
        headers=bearer("admin"),
    )
    assert sheet.status_code == 200 and sheet.headers["content-type"].startswith("text/csv")
    table = list(csv.reader(io.StringIO(sheet.text.lstrip("\ufeff"))))
    assert table[0] == ["编码/时段", "名称", "监测数据条数", "超标条数", "超标率"]
    assert table[1:] == [
        ["2025-03", "", "4", "3", "0.75"],
        ["2025-04", "", "8", "4", "0.5"],
        ["", "合计", "12", "7", "0.5833"],
    ]
    for params, code in (
        ({"from": "2025-04-30", "to": "2025-03-01"}, "period_reversed"),
        ({"from": "2025-03-01", "to": "2025-04-30", "by": "week"}, None),
        ({"from": "2025-02-30", "to": "2025-04-30"}, None),
    ):
        bad = client.get("/stats/fume", params=params, headers=bearer("admin"))
        assert 400 <= bad.status_code < 500, (params, bad.text)
        assert bad.json()["code"] and bad.json()["message"]
        if code:
            assert bad.json()["code"] == code


# --- an inspector's fume check ---------------------------------------------------------------


def check(client: TestClient, name: str, restaurant: int, **properties: Any) -> Any:
    body = {
        "type": "Feature",
        "geometry": None,
        "properties": {
            "restaurant_id": restaurant,
            "checked_on": "2025-05-10",
            "inspector": "张三",
            "purifier_running": True,
        }
        | properties,
    }
    return client.post(
        "/collections/fume_checks/items",
        content=json.dumps(body, ensure_ascii=False),
        headers={**GEOJSON, **bearer(name)},
    )


def cleaned_on(world: World, key: tuple[str, str]) -> Any:
    return scalar(
        world.engine, "SELECT cleaned_on FROM restaurants WHERE id = :i", i=world.restaurants[key]
    )


def test_an_inspector_records_a_fume_check_and_the_cleaning_date(
    client: TestClient, world: World
) -> None:
    mine, theirs = world.restaurants[(DEMO, "A")], world.restaurants[(DEMO, "B")]
    before = scalar(world.engine, "SELECT count(*) FROM fume_checks")
    for name, restaurant in (("inspector-a", theirs), ("planner-a", mine), ("leader-a", mine)):
        refused = check(client, name, restaurant, cleaned_on="2025-05-01")
        assert refused.status_code == 403, (name, refused.text)
    refused = check(client, "inspector-b", mine, cleaned_on="2025-05-01")
    assert refused.status_code in (403, 404), refused.text
    assert scalar(world.engine, "SELECT count(*) FROM fume_checks") == before
    assert cleaned_on(world, (DEMO, "A")) is None
    made = check(client, "inspector-a", mine, cleaned_on="2025-05-01")
    assert made.status_code == 201, made.text
    assert str(cleaned_on(world, (DEMO, "A"))) == "2025-05-01"
    older = check(client, "inspector-a", mine, checked_on="2025-05-12", cleaned_on="2025-03-01")
    assert older.status_code == 201
    assert str(cleaned_on(world, (DEMO, "A"))) == "2025-05-01"  # never goes back
    shown = client.get(
        f"/collections/restaurants/items/{mine}", headers=bearer("inspector-a")
    ).json()
    assert shown["properties"]["cleaned_on"] == "2025-05-01"
    listed = client.get("/collections/fume_checks/items", headers=bearer("leader-a")).json()
    assert [f["properties"]["restaurant_id"] for f in listed["features"]] == [mine, mine]
    assert cleaned_on(world, (DEMO, "B")) is None


# --- readings as CSV files -----------------------------------------------------------------------

HEADER = [
    "设备编号",
    "餐饮单位",
    "县区代码",
    "监测时间",
    "油烟浓度(mg/m³)",
    "净化器运行",
    "是否超标",
]
CSV_BODY = {"Content-Type": "text/csv"}


def exported(client: TestClient, name: str, **params: Any) -> list[list[str]]:
    answer = client.get("/fume/readings/export", params=params, headers=bearer(name))
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    assert "attachment" in answer.headers["content-disposition"]
    assert answer.content.startswith("\ufeff".encode())
    table = list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))
    assert table[0] == HEADER
    return table[1:]


def all_readings(world: World) -> list[tuple[Any, ...]]:
    with world.engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                text(
                    "SELECT restaurant_id, time, adcode, concentration, purifier_on, exceeded "
                    "FROM fume_readings ORDER BY restaurant_id, time"
                )
            )
        ]


@pytest.mark.parametrize("name", SCOPED_NAMES)
def test_the_export_holds_what_the_account_reads(
    client: TestClient, posted: World, name: str
) -> None:
    rows = exported(client, name)
    expected = sorted(
        (adcode, f"DEV-{letter}", f"{letter}饭店", flag)
        for adcode, letter in visible(posted, name)
        for flag in EXCEEDED[(adcode, letter)]
    )
    assert sorted((r[2], r[0], r[1], r[6] == "是") for r in rows) == expected
    assert [r[3] for r in rows] == sorted(r[3] for r in rows)  # oldest first
    assert {r[3] for r in rows} <= {t.replace("+08:00", "") + "+08:00" for t in TIMES}


def test_the_export_takes_the_items_filters(client: TestClient, posted: World) -> None:
    over = exported(client, "admin", exceeded="true")
    assert len(over) == 7 and {r[6] for r in over} == {"是"}
    one = posted.restaurants[(SANYUAN, "B")]
    assert [(r[2], r[0], r[4]) for r in exported(client, "admin", restaurant=one)] == [
        (SANYUAN, "DEV-B", c)
        for c in ("2", "3.1", "1.6")  # as PostgreSQL writes a real
    ]
    april = exported(client, "admin", datetime="2025-04-01/2025-04-30", county=DEMO)
    assert len(april) == 4 and {r[2] for r in april} == {DEMO}
    assert exported(client, "admin", datetime="2030-01-01/2030-01-31") == []
    bad = client.get("/fume/readings/export", params={"exceeded": "maybe"}, headers=bearer("admin"))
    assert bad.status_code in (400, 422)


def test_an_export_imports_back_as_it_was(client: TestClient, posted: World) -> None:
    before = all_readings(posted)
    answer = client.get("/fume/readings/export", headers=bearer("dispatcher-a"))
    assert answer.status_code == 200
    county = scoped_account("dispatcher-a", posted.rows).counties[0]
    with posted.engine.begin() as conn:
        conn.execute(text("DELETE FROM fume_readings WHERE adcode = :a"), {"a": county})
    assert stored(posted) == 6
    dry = client.post(
        "/fume/readings/import?dry-run=true",
        content=answer.content,
        headers={**CSV_BODY, **bearer("dispatcher-a")},
    )
    assert dry.status_code == 200, dry.text
    assert dry.json()["dry_run"] and dry.json()["new"] == 6 and stored(posted) == 6
    done = client.post(
        "/fume/readings/import",
        content=answer.content,
        headers={**CSV_BODY, **bearer("dispatcher-a")},
    )
    assert done.status_code == 200, done.text
    report = done.json()
    assert (report["rows"], report["new"], report["unchanged"]) == (6, 6, 0)
    assert report["unused_columns"] == ["餐饮单位", "县区代码", "是否超标"]
    assert all_readings(posted) == before  # exceeded worked out again against the limit
    again = client.post(
        "/fume/readings/import",
        content=answer.content,
        headers={**CSV_BODY, **bearer("dispatcher-a")},
    )
    assert (again.json()["new"], again.json()["unchanged"]) == (0, 6)


def test_a_platforms_file_in_gbk_with_china_times_is_read(
    client: TestClient, posted: World
) -> None:
    before = stored(posted)
    lines = [
        "监测时间,设备编号,油烟浓度,净化器运行",
        "2025/05/01 10:00:00,DEV-A,2.2,是",
        "2025-05-01T11:00:00+08:00,DEV-A,1.0,否",
        "",
    ]
    body = "\r\n".join(lines).encode("gbk")
    try:
        done = client.post(
            "/fume/readings/import", content=body, headers={**CSV_BODY, **bearer("dispatcher-b")}
        )
        assert done.status_code == 200, done.text
        assert done.json()["encoding"] == "GBK" and done.json()["new"] == 2
        with posted.engine.connect() as conn:
            got = conn.execute(
                text(
                    "SELECT time, exceeded, purifier_on FROM fume_readings "
                    "WHERE time >= '2025-05-01' ORDER BY time"
                )
            ).all()
        assert [(t.astimezone(UTC).hour, e, p) for t, e, p in got] == [
            (2, True, True),  # 10:00 China time; over 三元区's 1.5 mg/m³
            (3, False, False),
        ]
    finally:
        with posted.engine.begin() as conn:
            conn.execute(text("DELETE FROM fume_readings WHERE time >= '2025-05-01'"))
    assert stored(posted) == before


def test_a_file_with_bad_rows_stores_nothing_and_lists_each(
    client: TestClient, posted: World
) -> None:
    future = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    lines = [
        "device_id,time,concentration,purifier_on",
        "DEV-A,2025-05-01T10:00:00+08:00,1.2,true",  # good, not stored with the rest
        "DEV-A,yesterday,1.2,true",
        "DEV-A,2025-05-01T11:00:00+08:00,-3,true",
        "DEV-Z,2025-05-01T12:00:00+08:00,1.0,true",
        "DEV-A,2025-05-01T13:00:00+08:00,1.0,maybe",
        f"DEV-A,{future},1.0,true",
        ",2025-05-01T14:00:00+08:00,1.0,true",
        "DEV-A,2025-05-01T15:00:00+08:00,NaN,true",
        "DEV-A,1999-12-31T23:00:00+08:00,1.0,true",
    ]
    body = "\n".join(lines).encode()
    headers = {**CSV_BODY, **bearer("dispatcher-a")}
    answer = client.post("/fume/readings/import", content=body, headers=headers)
    assert answer.status_code == 400, answer.text
    refused = answer.json()
    assert refused["code"] == "import_refused"
    assert (
        "未导入任何数据" in refused["message"] and "nothing was imported" in refused["message_en"]
    )
    report = refused["report"]
    assert [(e["row"], e["field"], e["code"]) for e in report["errors"]] == [
        (2, "time", "bad_value"),
        (3, "concentration", "negative_concentration"),
        (4, "device_id", "unknown_device"),
        (5, "purifier_on", "bad_value"),
        (6, "time", "time_in_future"),
        (7, "device_id", "required"),
        (8, "concentration", "bad_concentration"),
        (9, "time", "time_too_old"),
    ]
    as_csv = client.post("/fume/readings/import?report=csv", content=body, headers=headers)
    assert as_csv.status_code == 400 and as_csv.text.lstrip("\ufeff").startswith("行号,字段")
    assert stored(posted) == 12
    lacking = client.post(
        "/fume/readings/import",
        content=b"device_id,time\nDEV-A,2025-05-01T10:00:00+08:00\n",
        headers=headers,
    )
    assert lacking.status_code == 400 and lacking.json()["code"] == "missing_columns"
    assert "油烟浓度" in lacking.text and "concentration" in lacking.text
    empty = client.post("/fume/readings/import", content=b"", headers=headers)
    assert empty.status_code == 400 and empty.json()["code"] == "empty_file"
    unreadable = b'device_id,time,concentration,purifier_on\n"' + b"x" * 200_000 + b'"\n'
    broken = client.post("/fume/readings/import", content=unreadable, headers=headers)
    assert broken.status_code == 400 and broken.json()["code"] == "bad_csv", broken.text
    headed = client.post("/fume/readings/import", content=lines[0].encode(), headers=headers)
    assert headed.status_code == 400 and headed.json()["code"] == "empty_file"
    assert stored(posted) == 12


def test_who_may_import_readings_and_what_is_refused(client: TestClient, posted: World) -> None:
    body = b"device_id,time,concentration,purifier_on\nDEV-A,2025-05-01T10:00:00+08:00,1.2,1\n"
    for name in ("planner-a", "inspector-a", "leader-city", "handler-a"):
        answer = client.post(
            "/fume/readings/import", content=body, headers={**CSV_BODY, **bearer(name)}
        )
        assert answer.status_code == 403, (name, answer.text)
    ambiguous = client.post(
        "/fume/readings/import", content=body, headers={**CSV_BODY, **bearer("admin")}
    )
    assert ambiguous.status_code == 400
    assert ambiguous.json()["report"]["errors"][0]["code"] == "ambiguous_device"
    elsewhere = client.post(
        f"/fume/readings/import?county={DEMO}",
        content=body,
        headers={**CSV_BODY, **bearer("dispatcher-b")},
    )
    assert elsewhere.status_code == 403, elsewhere.text
    as_json = client.post(
        "/fume/readings/import",
        content=body,
        headers={"Content-Type": "application/json", **bearer("admin")},
    )
    assert as_json.status_code == 415 and as_json.json()["code"]
    huge = b"device_id,time,concentration,purifier_on\n" + b"x" * (21 * 1024 * 1024)
    too_big = client.post(
        "/fume/readings/import", content=huge, headers={**CSV_BODY, **bearer("admin")}
    )
    assert too_big.status_code == 413 and too_big.json()["code"]
    assert stored(posted) == 12
