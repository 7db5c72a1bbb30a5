"""Every read is limited by county exactly as by role: two counties in one deployment.

The demo county (320681, zone EPSG:4549) and 三元区 (350404, zone EPSG:4548) each hold grids and
a few rows of every layer. Each role has an account in the demo county only ("-a"), in 三元区 only
("-b") and in both (a city account, "-city"); the deployment's admin holds none and reads all.
What each account reads is compared with SQL written here, not with the code under test.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyogrio.raw
import pytest
import shapely
from fastapi.testclient import TestClient
from shapely.geometry import shape
from sqlalchemy import Connection, Engine, text

from api.app import create_app
from api.settings import DatabaseSettings
from layers.cases.codes import seed_case_categories
from layers.store import db
from tests.accounts import ROLES, TEST_AUTH, bearer, ensure_account
from tests.counties import DEMO, PNG, SANYUAN, Account, CountyRows, readable, two_counties
from tests.databases import fresh_database
from tests.world import CHILDREN, SPATIAL, tile_ids, tile_index

SCOPES = {"a": (DEMO,), "b": (SANYUAN,), "city": (DEMO, SANYUAN)}


@dataclass(frozen=True)
class World:
    """The database and what was written into each county."""

    url: str
    engine: Engine
    demo: CountyRows
    second: CountyRows
    accounts: dict[str, Account]


def _accounts(demo: CountyRows, second: CountyRows) -> dict[str, Account]:
    rows = {DEMO: demo, SANYUAN: second}
    units = {DEMO: "启东测试中队", SANYUAN: "三元区测试中队"}
    out = {"admin": Account("admin", None)}
    for role in ROLES:
        for scope, held in SCOPES.items():
            grids = tuple(rows[c].communities[0] for c in held) if role == "inspector" else ()
            unit = units[held[-1]] if role == "handler" else None
            out[f"{role}-{scope}"] = Account(role, held, grids, unit)
    return out


@pytest.fixture(scope="module")
def world(pg_server: Any) -> Iterator[World]:
    databases = fresh_database(pg_server, "counties")
    url = next(databases)
    engine = db.make_engine(pg_server.as_owner(url))
    with engine.begin() as conn:
        seed_case_categories(conn)
        demo, second = two_counties(conn)
    accounts = _accounts(demo, second)
    for name, account in accounts.items():
        ensure_account(
            engine, name, account.role, account.grids, account.unit, account.counties or ()
        )
    yield World(url, engine, demo, second, accounts)
    engine.dispose()
    next(databases, None)


@pytest.fixture(scope="module")
def client(world: World) -> Iterator[TestClient]:
    app = create_app(DatabaseSettings(database_url=world.url), auth_settings=TEST_AUTH)
    with TestClient(app, follow_redirects=False) as c:
        yield c


def all_ids(world: World, layer: str) -> set[int]:
    return {*world.demo.ids[layer], *world.second.ids[layer]}


ACCOUNT_NAMES = ["admin", *(f"{r}-{s}" for r in ROLES for s in SCOPES)]


# --- items, single items, layer counts --------------------------------------------------------


@pytest.mark.parametrize("name", ACCOUNT_NAMES)
def test_items_and_their_count_hold_only_the_accounts_counties(
    client: TestClient, world: World, name: str
) -> None:
    account = world.accounts[name]
    counts = {r["id"]: r["count"] for r in client.get("/layers", headers=bearer(name)).json()}
    with world.engine.connect() as conn:
        for layer in (*SPATIAL, *CHILDREN):
            expected = readable(conn, account, layer)
            body = client.get(f"/collections/{layer}/items?limit=1000", headers=bearer(name)).json()
            assert {int(f["id"]) for f in body["features"]} == expected, (name, layer)
            assert body["numberMatched"] == len(expected) == counts[layer], (name, layer)
            for fid in all_ids(world, layer):
                one = client.get(f"/collections/{layer}/items/{fid}", headers=bearer(name))
                assert one.status_code == (200 if fid in expected else 404), (name, layer, fid)
    if account.counties == (DEMO,) and account.role not in ("inspector", "handler"):
        assert counts["billboards"] == len(world.demo.ids["billboards"])  # nothing of 三元区


# --- tiles, whichever county asks first -------------------------------------------------------


@pytest.mark.parametrize("first", ["leader-city", "leader-a"])
def test_a_tile_cached_for_one_set_of_counties_is_not_served_to_another(
    world: World, first: str
) -> None:
    """One app, one tile over 三元区's billboard, asked by a city account and a demo-county one in
    both orders: the cache keys differ, so each gets its own rows."""
    lon, lat = world.second.lonlat(-1100, 300)
    x, y = tile_index(lon, lat, 14)
    app = create_app(DatabaseSettings(database_url=world.url), auth_settings=TEST_AUTH)
    seen: dict[str, set[int]] = {}
    with TestClient(app) as c:
        second = "leader-a" if first == "leader-city" else "leader-city"
        for name in (first, second, first):
            seen[name] = tile_ids(c, "billboards", 14, x, y, name)
    assert seen["leader-city"] == set(world.second.ids["billboards"])
    assert seen["leader-a"] == set()


@pytest.mark.parametrize("layer", ["illegal_buildings", "billboards", "dust_sites", "parking_lots"])
@pytest.mark.parametrize("name", ["admin", "leader-a", "leader-b", "leader-city", "inspector-b"])
def test_tiles_hold_only_the_accounts_counties(
    client: TestClient, world: World, layer: str, name: str
) -> None:
    account = world.accounts[name]
    with world.engine.connect() as conn:
        expected = readable(conn, account, layer)
    for rows in (world.demo, world.second):
        x, y = tile_index(*rows.lonlat(-900, 0), 12)
        found = tile_ids(client, layer, 12, x, y, name)
        assert found == expected & set(rows.ids[layer]), (name, rows.adcode)


# --- exports ----------------------------------------------------------------------------------


def _exported_ids(content: bytes, fmt: str, folder: Path) -> set[int]:
    folder.mkdir()
    if fmt == "shp":
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            archive.extractall(folder)
        path = next(folder.glob("*.shp"))
    else:
        path = folder / f"out.{fmt}"
        path.write_bytes(content)
    meta, fids, _, values = pyogrio.raw.read(path)
    names = meta["fields"].tolist()
    if fmt == "kml":  # placemarks are numbered in the file, not by id: their count
        return set(range(len(values[0])))
    if "id" in names:
        return {int(v) for v in values[names.index("id")]}
    return {int(v) for v in fids}


@pytest.mark.parametrize("fmt", ["gpkg", "shp", "geojson", "kml", "csv", "xlsx"])
@pytest.mark.parametrize("name", ["admin", "leader-a", "leader-b", "leader-city", "handler-b"])
def test_exports_hold_only_the_accounts_counties(
    client: TestClient, world: World, fmt: str, name: str, tmp_path: Path
) -> None:
    account = world.accounts[name]
    for layer in ("billboards", "cases"):
        answer = client.get(
            f"/collections/{layer}/export", params={"format": fmt}, headers=bearer(name)
        )
        with world.engine.connect() as conn:
            expected = readable(conn, account, layer)
        if not expected:
            assert answer.status_code in (200, 404), answer.text
            continue
        assert answer.status_code == 200, answer.text
        got = _exported_ids(answer.content, fmt, tmp_path / layer)
        if fmt == "kml":
            assert len(got) == len(expected), (name, layer, fmt)
        else:
            assert got == expected, (name, layer, fmt)


# --- statistics -------------------------------------------------------------------------------

PERIOD = {"from": "2026-03-01", "to": "2026-03-31"}


def sql_indicators(conn: Connection, counties: tuple[str, ...]) -> dict[str, Any]:
    """立案数, 结案数, 应结案数 and the rates of March 2026, by SQL of its own."""
    row = conn.execute(
        text("""
        WITH c AS (SELECT * FROM cases WHERE adcode = ANY(:counties)),
        m AS (SELECT timestamptz '2026-03-01 00:00+08' AS lo, timestamptz '2026-04-01 00:00+08' AS hi)
        SELECT (SELECT count(*) FROM c, m WHERE registered_at >= lo AND registered_at < hi),
               (SELECT count(*) FROM c, m WHERE status = 'closed' AND closed_at >= lo AND closed_at < hi),
               (SELECT count(*) FROM c, m WHERE status <> 'rejected' AND deadline >= lo AND deadline < hi),
               (SELECT count(*) FROM c, m WHERE status = 'closed' AND deadline >= lo AND deadline < hi),
               (SELECT count(*) FROM c, m WHERE status = 'closed' AND closed_at <= deadline
                                             AND deadline >= lo AND deadline < hi)
    """),
        {"counties": list(counties)},
    ).one()
    registered, closed, due, due_closed, on_time = (int(v) for v in row)
    return {
        "registered": registered,
        "closed": closed,
        "due": due,
        "closed_rate": round(due_closed / due, 4) if due else None,
        "on_time_rate": round(on_time / due, 4) if due else None,
    }


def _total(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The figures of one-group rows (by=month over one month)."""
    assert len(rows) <= 1
    row = rows[0] if rows else {}
    return {k: row.get(k, 0 if k in ("registered", "closed", "due") else None) for k in FIGURES}


FIGURES = ("registered", "closed", "due", "closed_rate", "on_time_rate")


@pytest.mark.parametrize("name", ["admin", "leader-a", "leader-b", "leader-city"])
def test_indicators_per_county_and_in_total(client: TestClient, world: World, name: str) -> None:
    """The hand-made cases of each county: 3 registered in March, 2 closed, 3 falling due, 2 of
    them closed (结案率 2/3), 1 by its deadline (按期结案率 1/3); a city account gets both
    counties and their sum."""
    held = world.accounts[name].counties or (DEMO, SANYUAN)
    answer = client.get("/stats/indicators", params={**PERIOD, "by": "month"}, headers=bearer(name))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    with world.engine.connect() as conn:
        assert _total(body["rows"]) == sql_indicators(conn, held)
        assert [c["adcode"] for c in body["counties"]] == list(held)
        for county in body["counties"]:
            assert _total(county["rows"]) == sql_indicators(conn, (county["adcode"],))
    one = {"registered": 3, "closed": 2, "due": 3, "closed_rate": 0.6667, "on_time_rate": 0.3333}
    assert all(_total(c["rows"]) == one for c in body["counties"])
    assert _total(body["rows"])["registered"] == 3 * len(held)


def test_statistics_of_one_county_asked_by_its_code(client: TestClient, world: World) -> None:
    params = {**PERIOD, "by": "month", "county": SANYUAN}
    mine = client.get("/stats/indicators", params=params, headers=bearer("leader-city")).json()
    assert [c["adcode"] for c in mine["counties"]] == [SANYUAN]
    with world.engine.connect() as conn:
        assert _total(mine["rows"]) == sql_indicators(conn, (SANYUAN,))
    both = client.get(
        "/stats/indicators",
        params={**params, "county": f"{DEMO},{SANYUAN}"},
        headers=bearer("leader-city"),
    ).json()
    assert _total(both["rows"])["registered"] == 6
    outside = client.get("/stats/indicators", params=params, headers=bearer("leader-a"))
    assert outside.status_code == 403 and outside.json()["code"] == "outside_county"
    unknown = client.get(
        "/stats/indicators", params={**params, "county": "110101"}, headers=bearer("admin")
    )
    assert unknown.status_code == 404 and unknown.json()["code"] == "unknown_county"
    bad = client.get(
        "/stats/indicators", params={**params, "county": "35040"}, headers=bearer("admin")
    )
    assert bad.status_code == 400 or bad.status_code == 422
    admin = client.get("/stats/indicators", params=params, headers=bearer("admin")).json()
    assert _total(admin["rows"]) == _total(mine["rows"])


@pytest.mark.parametrize("name", ["admin", "leader-a", "leader-b", "leader-city", "handler-b"])
def test_heatmap_trend_choropleth_and_grid_statistics_hold_only_the_accounts_counties(
    client: TestClient, world: World, name: str
) -> None:
    account = world.accounts[name]
    with world.engine.connect() as conn:
        cases = readable(conn, account, "cases")
        adcodes = {
            r[0]
            for r in conn.execute(
                text("SELECT DISTINCT adcode FROM cases WHERE id = ANY(:ids)"), {"ids": list(cases)}
            )
        }
    heat = client.get(
        "/stats/heatmap", params={"bbox": "115,24,124,34", "zoom": 8}, headers=bearer(name)
    )
    assert heat.status_code == 200, heat.text
    assert sum(b[2] for b in heat.json()["bins"]) == len(cases)
    trend = client.get("/stats/trend", params=PERIOD, headers=bearer(name)).json()
    assert sum(r["cases"] for r in trend) == len(cases)
    held = set(account.counties or (DEMO, SANYUAN))
    choropleth = client.get(
        "/stats/choropleth", params={**PERIOD, "level": "street"}, headers=bearer(name)
    ).json()
    assert {f["properties"]["code"][:6] for f in choropleth["features"]} == held
    assert sum(f["properties"]["cases"] for f in choropleth["features"]) == len(cases)
    stats = client.get("/grids/stats?level=section&at=2026-03-31", headers=bearer(name)).json()
    assert {row["code"][:6] for row in stats} == held
    assert sum(row["cases"] for row in stats) == len(cases)
    assert adcodes <= held


def test_grids_their_history_and_people_hold_only_the_accounts_counties(
    client: TestClient, world: World
) -> None:
    for name in ("admin", "planner-a", "planner-b", "planner-city", "inspector-b"):
        account = world.accounts[name]
        held = set(account.counties or (DEMO, SANYUAN))
        for at in ("", "?at=2021-06-01"):
            grids = client.get(f"/grids{at}", headers=bearer(name)).json()["features"]
            assert {g["properties"]["code"][:6] for g in grids} == held, (name, at)
        for rows in (world.demo, world.second):
            people = client.get(f"/grids/{rows.sections[0]}/people", headers=bearer(name))
            assert people.status_code == (200 if rows.adcode in held else 404), name
        only = client.get(f"/grids?county={SANYUAN}", headers=bearer(name))
        if SANYUAN in held:
            assert {g["properties"]["code"][:6] for g in only.json()["features"]} == {SANYUAN}
        else:
            assert only.status_code == 403 and only.json()["code"] == "outside_county"


# --- extents, photos, the county outline ------------------------------------------------------


def _box_of(conn: Connection, adcode: str) -> tuple[float, ...]:
    row = conn.execute(
        text(
            "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
            "(SELECT ST_Extent(geom) AS e FROM billboards WHERE adcode = ANY(:a)) AS x"
        ),
        {"a": adcode.split(",")},
    ).one()
    return tuple(float(v) for v in row)


@pytest.mark.parametrize("name", ["admin", "leader-a", "leader-b", "leader-city"])
def test_collection_extents_are_those_of_the_accounts_counties(
    client: TestClient, world: World, name: str
) -> None:
    held = ",".join(world.accounts[name].counties or (DEMO, SANYUAN))
    body = client.get("/collections/billboards", headers=bearer(name)).json()
    with world.engine.connect() as conn:
        assert body["extent"]["spatial"]["bbox"][0] == pytest.approx(_box_of(conn, held))


def test_photos_of_another_countys_case_are_not_found(client: TestClient, world: World) -> None:
    case, photo = world.second.ids["cases"][0], world.second.photo
    for name in ("admin", "leader-b", "leader-city", "dispatcher-b"):
        listed = client.get(f"/cases/{case}/photos", headers=bearer(name))
        assert listed.status_code == 200 and [p["id"] for p in listed.json()] == [photo]
        assert client.get(f"/cases/{case}/photos/{photo}", headers=bearer(name)).content == PNG
    for name in ("leader-a", "dispatcher-a", "planner-a"):
        assert client.get(f"/cases/{case}/photos", headers=bearer(name)).status_code == 404
        one = client.get(f"/cases/{case}/photos/{photo}", headers=bearer(name))
        assert one.status_code == 404


@pytest.mark.parametrize("name", ["admin", "leader-a", "leader-b", "leader-city"])
def test_the_outline_is_each_held_countys_official_boundary(
    client: TestClient, world: World, name: str
) -> None:
    held = world.accounts[name].counties or (DEMO, SANYUAN)
    body = client.get("/county", headers=bearer(name)).json()
    assert [f["properties"]["adcode"] for f in body["features"]] == list(held)
    with world.engine.connect() as conn:
        for feature in body["features"]:
            stored = conn.execute(
                text("SELECT ST_AsBinary(boundary) FROM counties WHERE adcode = :a"),
                {"a": feature["properties"]["adcode"]},
            ).scalar_one()
            official = shapely.from_wkb(bytes(stored))
            drawn = shape(feature["geometry"])
            assert drawn.symmetric_difference(official).area < 1e-5 * official.area  # 7 decimals
            # not the union of the streets (a small part of the county here)
            assert drawn.area > 2 * _streets_area(conn, feature["properties"]["adcode"])
    if len(held) > 1:
        one = client.get(f"/county?county={SANYUAN}", headers=bearer(name)).json()
        assert [f["properties"]["adcode"] for f in one["features"]] == [SANYUAN]


def _streets_area(conn: Connection, adcode: str) -> float:
    return float(
        conn.execute(
            text(
                "SELECT ST_Area(ST_Union(geom)) FROM grids WHERE level = 'street' AND adcode = :a"
            ),
            {"a": adcode},
        ).scalar_one()
    )


# --- pages ------------------------------------------------------------------------------------


def _title(html: str) -> str:
    found = re.search(r"<title>(.*?)</title>", html)
    assert found, html[:500]
    return found.group(1)


@pytest.mark.parametrize(
    ("path", "what"),
    [
        ("/maps/overview", "城市管理综合概览"),
        ("/maps/planner", "网格规划与调整"),
        ("/maps/leader", "城市管理领导驾驶舱"),
        ("/maps/leader/timeline", "案件热力逐周变化"),
        ("/maps/command", "城市管理大指挥"),
    ],
)
def test_pages_are_of_the_viewers_county_with_a_picker_for_several(
    client: TestClient, world: World, path: str, what: str
) -> None:
    with world.engine.connect() as conn:
        names = dict(conn.execute(text("SELECT adcode, name FROM counties")).all())
    only_b = client.get(path, headers=bearer("admin-b"))
    assert only_b.status_code == 200
    assert _title(only_b.text) == f"{names[SANYUAN]}{what}"
    assert names[DEMO] not in only_b.text and "cg-counties" not in only_b.text
    assert f'CityGrid.county = "{SANYUAN}"' in only_b.text
    for viewer in ("admin", "admin-city"):
        first = client.get(path, headers=bearer(viewer))
        assert _title(first.text) == f"{names[DEMO]}{what}"  # the first county by code
        picked = client.get(f"{path}?county={SANYUAN}", headers=bearer(viewer))
        assert _title(picked.text) == f"{names[SANYUAN]}{what}"
        assert f"?county={DEMO}" in picked.text and "cg-counties" in picked.text
    refused = client.get(f"{path}?county={DEMO}", headers=bearer("admin-b"))
    assert refused.status_code == 403 and "无法显示" in refused.text
    unknown = client.get(f"{path}?county=110101", headers=bearer("admin"))
    assert unknown.status_code == 404


def test_a_page_centres_on_the_chosen_countys_stored_centre(
    client: TestClient, world: World
) -> None:
    html = client.get(f"/maps/overview?county={SANYUAN}", headers=bearer("leader-city")).text
    with world.engine.connect() as conn:
        lon, lat = conn.execute(
            text("SELECT ST_X(centre), ST_Y(centre) FROM counties WHERE adcode = :a"),
            {"a": SANYUAN},
        ).one()
    assert re.search(rf"center: \[{lat}, {lon}\]", html), "the map is not centred on the county"
    assert "31.85" not in html and "121.68" not in html
