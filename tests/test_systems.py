"""The reports' other systems as layers: compounds, garbage-sorting points, stations, cameras,
e-bike parking points and lines — each through items, tiles and editing by the registry alone,
and the demo at the reports' figures."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import mapbox_vector_tile
import pytest
import shapely
from fastapi.testclient import TestClient
from pyproj import Transformer
from sqlalchemy import Engine, text

from api.app import create_app
from api.settings import DatabaseSettings
from gis.zones import zone_epsg
from layers.demo import systems as demo_systems
from layers.demo.load import people
from layers.demo.load import qidong as qidong_boundary
from layers.demo.streets import street_plan
from layers.registry import SYSTEM_LAYERS, Layer
from tests.accounts import TEST_AUTH, bearer, browser_context, ensure_account, sign_in
from tests.support import assert_policy_kept, live_server, wait_for, watch

pytestmark = pytest.mark.usefixtures("demo")

GEOJSON = {"Content-Type": "application/geo+json"}
LON, LAT = 121.6571, 31.8081  # in the county seat, between its streets
CAMERA_ID = "32068100001320000999"


def feature(geometry: dict[str, Any], **properties: Any) -> dict[str, Any]:
    return {"type": "Feature", "geometry": geometry, "properties": properties}


def point(lon: float = LON, lat: float = LAT) -> dict[str, Any]:
    return {"type": "Point", "coordinates": [lon, lat]}


def square(lon: float = LON, lat: float = LAT, side: float = 0.001) -> dict[str, Any]:
    ring = [[lon, lat], [lon + side, lat], [lon + side, lat + side], [lon, lat + side], [lon, lat]]
    return {"type": "Polygon", "coordinates": [ring]}


def segment(lon: float = LON, lat: float = LAT) -> dict[str, Any]:
    return {"type": "LineString", "coordinates": [[lon, lat], [lon + 0.0004, lat]]}


# per layer: a valid new row, a change the keeping role makes, and a value refused with its code
SAMPLES: dict[str, tuple[dict[str, Any], dict[str, Any], dict[str, Any], str]] = {
    "residential_compounds": (
        feature(square(), name="测试花园", households=320, certification="no_illegal_building"),
        {"sorting_coverage": 88},
        {"certification": "五星小区"},
        "property_not_in_code_list",
    ),
    "garbage_points": (
        feature(point(), name="测试投放点", kind="sorting_room", build_status="building"),
        {"build_status": "connected"},
        {"kind": "垃圾桶"},
        "property_not_in_code_list",
    ),
    "stations": (
        feature(point(), name="测试城管驿站", opening_hours="08:00-12:00,13:30-20:00"),
        {"staff": "站长：张三；队员：李四"},
        {"opening_hours": "早上八点"},
        "property_bad_format",
    ),
    "cameras": (
        feature(point(), device_id=CAMERA_ID, source="greenway", direction_deg=90),
        {"view_angle_deg": 75, "view_range_m": 60},
        {"device_id": "3206810000132000099"},  # 19 digits
        "property_bad_format",
    ),
    "bike_parking_points": (
        feature(point(), name="测试投放点", capacity=20),
        {"capacity": 35},
        {"capacity": 0},
        "property_out_of_range",
    ),
    "bike_parking_lines": (
        feature(segment(), road="人民路", painted_on="2023-05-01"),
        {"road": "和平街"},
        {"painted_on": "2023-02-30"},
        "property_wrong_type",
    ),
}
LAYER_IDS = [layer.id for layer in SYSTEM_LAYERS]


@pytest.fixture(scope="module")
def client(database_url: str) -> Iterator[TestClient]:
    app = create_app(DatabaseSettings(database_url=database_url), auth_settings=TEST_AUTH)
    with TestClient(app) as c:
        ensure_account(database_url, "admin", "admin")
        ensure_account(database_url, "sys-planner", "planner")
        ensure_account(database_url, "sys-leader", "leader")
        yield sign_in(c, database_url)


def scalar(engine: Engine, sql: str, **params: Any) -> Any:
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar_one()


def post(client: TestClient, layer: str, body: Any, **headers: str) -> Any:
    return client.post(
        f"/collections/{layer}/items",
        content=json.dumps(body, ensure_ascii=False),
        headers={**GEOJSON, **headers},
    )


def patch(client: TestClient, path: str, properties: dict[str, Any], **headers: str) -> Any:
    etag = client.get(path).headers["etag"]
    return client.patch(
        path,
        content=json.dumps({"properties": properties}, ensure_ascii=False),
        headers={**GEOJSON, "If-Match": etag, **headers},
    )


def delete(client: TestClient, path: str, **headers: str) -> Any:
    etag = client.get(path).headers["etag"]
    return client.delete(path, headers={"If-Match": etag, **headers})


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    y = (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n
    return int((lon + 180) / 360 * n), int(y)


def first_position(geometry: dict[str, Any]) -> tuple[float, float]:
    coords: Any = geometry["coordinates"]
    while isinstance(coords[0], list):
        coords = coords[0]
    return float(coords[0]), float(coords[1])


# --- the demo ---------------------------------------------------------------------------------


def test_the_demo_holds_the_reports_figures(engine: Engine) -> None:
    count = {
        layer.id: scalar(engine, f"SELECT count(*) FROM {layer.id}") for layer in SYSTEM_LAYERS
    }
    assert count["residential_compounds"] == 53
    assert count["garbage_points"] == 160
    assert count["stations"] == 8
    assert count["bike_parking_points"] >= 500
    painted = scalar(engine, "SELECT sum(length_m) FROM bike_parking_lines")
    assert painted == pytest.approx(18_500, rel=0.02)
    with engine.connect() as conn:
        grouped = conn.execute(text("SELECT build_status, count(*) FROM garbage_points GROUP BY 1"))
        stages = {str(s): int(n) for s, n in grouped}
    # the report: 73 being rebuilt, 64 with water and power connected (or already in service)
    assert stages["building"] + stages["built"] == 73
    assert stages["connected"] + stages["in_service"] == 64
    assert set(stages) == {"planned", "building", "built", "connected", "in_service"}
    kinds = "SELECT count(*) FROM garbage_points WHERE kind = 'sorting_room'"
    assert scalar(engine, kinds) == 70
    # only the report's 4 shared-time lots share their spaces
    assert scalar(engine, "SELECT count(*) FROM parking_lots WHERE shared_windows IS NOT NULL") == 4


def test_the_demo_fleet_is_the_reports_fleet(engine: Engine) -> None:
    with engine.connect() as conn:
        kinds = dict(conn.execute(text("SELECT kind, count(*) FROM vehicles GROUP BY 1")).all())
        plates, terminals, total = conn.execute(
            text(
                "SELECT count(DISTINCT plate), count(DISTINCT terminal_phone), count(*) FROM vehicles"
            )
        ).one()
        outside = conn.execute(
            text(
                "SELECT count(*) FROM vehicles AS v JOIN counties AS c USING (adcode) "
                "WHERE NOT ST_Contains(c.boundary, v.geom)"
            )
        ).scalar_one()
        permits = conn.execute(
            text(
                "SELECT count(*) FILTER (WHERE permit_no IS NOT NULL AND permit_from < permit_to), "
                "count(*) FILTER (WHERE time_windows LIKE '20:00-24:00%') FROM vehicles "
                "WHERE kind = 'muck'"
            )
        ).one()
    # 464 muck trucks inspected, 57 sanitation vehicles monitored; 5 kitchen-waste trucks
    assert (kinds["muck"], kinds["sanitation"], kinds["kitchen_waste"]) == (464, 57, 5)
    assert kinds["enforcement"] > 0
    assert plates == terminals == total  # one plate and one terminal per vehicle
    assert outside == 0
    assert tuple(permits) == (464, 464)  # every muck truck holds a permit and hauls at night


def test_the_demo_fences_its_trucks_loading_and_unloading(engine: Engine) -> None:
    with engine.connect() as conn:
        kinds = dict(conn.execute(text("SELECT kind, count(*) FROM geofences GROUP BY 1")).all())
        loading = conn.execute(
            text(
                "SELECT count(*) FROM dust_sites WHERE status = 'active' "
                "AND site_type IN ('construction', 'demolition', 'road')"
            )
        ).scalar_one()
        unfenced = conn.execute(
            text(
                "SELECT count(*) FROM dust_sites AS d WHERE d.status = 'active' "
                "AND d.site_type IN ('construction', 'demolition', 'road') AND NOT EXISTS "
                "(SELECT 1 FROM geofences AS g WHERE g.kind = 'site' AND ST_Covers(g.geom, d.geom))"
            )
        ).scalar_one()
        outside = conn.execute(
            text(
                "SELECT count(*) FROM geofences AS g JOIN counties AS c USING (adcode) "
                "WHERE NOT ST_Within(g.geom, c.boundary) OR NOT ST_IsValid(g.geom)"
            )
        ).scalar_one()
        # a route corridor holds its company's depot and the way into every site and yard
        off_corridor = conn.execute(
            text(
                "SELECT count(*) FROM geofences AS c JOIN geofences AS f "
                "ON f.kind IN ('site', 'yard') WHERE c.kind = 'corridor' "
                "AND NOT ST_Covers(c.geom, ST_Centroid(f.geom))"
            )
        ).scalar_one()
        depots_off = conn.execute(
            text(
                "SELECT count(*) FROM vehicles AS v JOIN geofences AS c "
                "ON c.kind = 'corridor' AND c.company = v.company WHERE NOT ST_Covers(c.geom, v.geom)"
            )
        ).scalar_one()
    assert kinds == {"site": loading, "yard": 4, "no_go": 1, "strict_street": 2, "corridor": 2}
    assert off_corridor == depots_off == 0
    assert loading > 50 and unfenced == 0 and outside == 0


def test_the_demo_places_things_where_they_belong(engine: Engine) -> None:
    outside = """SELECT count(*) FROM garbage_points AS p JOIN residential_compounds AS c
                 ON c.id = p.compound_id WHERE NOT ST_Contains(c.geom, p.geom)"""
    assert scalar(engine, outside) == 0
    assert scalar(engine, "SELECT count(*) FROM garbage_points WHERE compound_id IS NULL") == 0
    # compounds lie in the towns' built-up grids (社区, not 村)
    built_up = """SELECT count(*) FROM residential_compounds AS c WHERE NOT ST_CoveredBy(c.geom,
                  (SELECT ST_Union(geom) FROM grids WHERE level = 'community' AND name LIKE '%社区'
                   AND valid_to IS NULL))"""
    assert scalar(engine, built_up) == 0
    names = "SELECT count(DISTINCT name) FROM residential_compounds"
    assert scalar(engine, names) == 53
    served = """SELECT count(*) FROM residential_compounds AS c WHERE sorting_coverage IS DISTINCT
                FROM (SELECT round(100.0 * count(*) FILTER (WHERE build_status = 'in_service')
                      / count(*)) FROM garbage_points WHERE compound_id = c.id)"""
    assert scalar(engine, served) == 0
    everything = (
        "SELECT count(*) FROM {t} AS t WHERE NOT ST_Within(t.geom, (SELECT boundary FROM counties))"
    )
    for layer in SYSTEM_LAYERS:
        assert scalar(engine, everything.format(t=layer.id)) == 0, layer.id


def test_cameras_stand_at_the_crossings_and_look_along_the_streets(engine: Engine) -> None:
    population, epsg = people(qidong_boundary(), 20231231)
    junctions = street_plan(population).junctions
    with engine.connect() as conn:
        found = conn.execute(
            text(
                "SELECT device_id, ST_X(ST_Transform(geom, :epsg)), ST_Y(ST_Transform(geom, :epsg)),"
                " direction_deg FROM cameras"
            ),
            {"epsg": epsg},
        ).all()
    assert len(found) == 2 * len(junctions)
    assert len({r[0] for r in found}) == len(found)
    for device, x, y, direction in found:
        nearest = min(math.hypot(j.x - x, j.y - y) for j in junctions)
        assert nearest < demo_systems.CAMERA_CORNER_M * 1.5, device
        assert device.startswith("320681") and device[10:13] == "132"
        assert 0 <= direction < 360


# --- the layers through the generic machinery ---------------------------------------------------


@pytest.mark.parametrize("layer_id", LAYER_IDS)
def test_items_and_a_tile_of_each_layer(client: TestClient, layer_id: str) -> None:
    page = client.get(f"/collections/{layer_id}/items", params={"limit": 5})
    assert page.status_code == 200, page.text
    features = page.json()["features"]
    assert len(features) == 5
    lon, lat = first_position(features[0]["geometry"])
    x, y = tile_of(lon, lat, 17)
    tile = client.get(f"/collections/{layer_id}/tiles/WebMercatorQuad/17/{x}/{y}")
    assert tile.status_code == 200, tile.text
    drawn = mapbox_vector_tile.decode(tile.content)[layer_id]["features"]
    assert features[0]["id"] in {f["id"] for f in drawn}
    listed = {c["id"]: c for c in client.get("/collections").json()["collections"]}
    assert listed[layer_id]["title"] == _layer(layer_id).title_zh


def test_a_compound_filters_its_garbage_points(client: TestClient, engine: Engine) -> None:
    compound = scalar(engine, "SELECT min(compound_id) FROM garbage_points")
    mine = client.get("/collections/garbage_points/items", params={"compound_id": compound})
    held = scalar(engine, "SELECT count(*) FROM garbage_points WHERE compound_id = :c", c=compound)
    assert mine.json()["numberReturned"] == held >= 2
    queryables = client.get("/collections/garbage_points/queryables").json()["properties"]
    assert queryables["build_status"]["enum"] == [
        "planned",
        "building",
        "built",
        "connected",
        "in_service",
    ]


@pytest.mark.parametrize("layer_id", LAYER_IDS)
def test_the_keeping_role_edits_and_another_is_refused(
    client: TestClient, engine: Engine, layer_id: str
) -> None:
    body, change, bad, code = SAMPLES[layer_id]
    before = scalar(engine, f"SELECT count(*) FROM {layer_id}")
    for role in ("sys-planner", "sys-leader"):
        refused = post(client, layer_id, body, **bearer(role))
        assert refused.status_code == 403, refused.text
    wrong = post(client, layer_id, {**body, "properties": {**body["properties"], **bad}})
    assert wrong.status_code in (400, 422), wrong.text
    assert wrong.json()["code"] == code and wrong.json()["message"]
    created = post(client, layer_id, body)
    assert created.status_code == 201, created.text
    path = created.headers["location"].replace("http://testserver", "")
    try:
        assert patch(client, path, change).status_code == 204
        after = client.get(path).json()["properties"]
        assert {k: after[k] for k in change} == change
        denied = patch(client, path, change, **bearer("sys-planner"))
        assert denied.status_code == 403, denied.text
        assert delete(client, path, **bearer("sys-planner")).status_code == 403
        assert patch(client, path, bad).json()["code"] == code
    finally:
        assert delete(client, path).status_code == 204
    assert scalar(engine, f"SELECT count(*) FROM {layer_id}") == before


def test_a_camera_id_must_be_a_camera_of_gb28181(client: TestClient) -> None:
    body = SAMPLES["cameras"][0]
    for device in ("32068100001330000999", "3206810000132000099a", "320681000013200009990"):
        refused = post(
            client, "cameras", {**body, "properties": {**body["properties"], "device_id": device}}
        )
        assert refused.status_code == 400 and refused.json()["code"] == "property_bad_format", (
            device
        )
    one = post(client, "cameras", body)
    assert one.status_code == 201
    path = one.headers["location"].replace("http://testserver", "")
    try:
        twice = post(client, "cameras", body)
        assert twice.status_code == 409 and twice.json()["code"] == "value_taken", twice.text
        assert "设备编码" in twice.json()["message"]
        other = client.get("/collections/cameras/items", params={"limit": 1}).json()["features"][0]
        moved = patch(client, path, {"device_id": other["properties"]["device_id"]})
        assert moved.status_code == 409 and moved.json()["code"] == "value_taken"
        assert patch(client, path, {"device_id": CAMERA_ID}).status_code == 204  # its own
    finally:
        assert delete(client, path).status_code == 204


def upload(client: TestClient, layer: str, name: str, content: bytes, **params: Any) -> Any:
    return client.post(
        f"/collections/{layer}/import",
        params={"filename": name, **params},
        content=content,
        headers={"Content-Type": "application/octet-stream"},
    )


@pytest.mark.parametrize("layer_id", [*LAYER_IDS, "merchants", "restaurants"])
@pytest.mark.parametrize("fmt", ["gpkg", "xlsx"])
def test_each_layer_goes_out_and_comes_back_unchanged(
    client: TestClient, engine: Engine, layer_id: str, fmt: str
) -> None:
    exported = client.get(f"/collections/{layer_id}/export", params={"format": fmt})
    assert exported.status_code == 200, exported.text
    held = scalar(engine, f"SELECT count(*) FROM {layer_id}")
    name = f"{layer_id}.{fmt}"
    again = upload(client, layer_id, name, exported.content, mode="upsert", **{"dry-run": "true"})
    assert again.status_code == 200, again.text[:2000]
    report = again.json()
    assert (report["rows"], report["unchanged"], report["new"], report["changed"]) == (
        held,
        held,
        0,
        0,
    ), report["notes"]
    assert report["key"] == "id" and report["bad_rows"] == 0
    assert scalar(engine, f"SELECT count(*) FROM {layer_id}") == held


def test_cameras_go_out_and_back_in_by_their_device_id(client: TestClient, engine: Engine) -> None:
    exported = client.get("/collections/cameras/export", params={"format": "gpkg"})
    assert exported.status_code == 200, exported.text
    held = scalar(engine, "SELECT count(*) FROM cameras")
    with engine.connect() as conn:
        (a, _), (_, b) = conn.execute(text("SELECT id, device_id FROM cameras ORDER BY id LIMIT 2"))
    new = "32068100001320000998"
    rows = [(a, 121.657, b), ("", 121.658, new), ("", 121.659, new)]
    csv = "id,经度,纬度,设备编码,来源部门\n" + "".join(
        f"{i},{x},31.808,{d},公安\n" for i, x, d in rows
    )
    again = upload(client, "cameras", "cameras.csv", csv.encode(), mode="upsert")
    assert again.status_code == 400, again.text
    errors = again.json()["report"]["errors"]
    # the first takes another camera's ID, the third repeats the second's
    assert [(e["row"], e["field"], e["code"]) for e in errors] == [
        (1, "device_id", "value_taken"),
        (3, "device_id", "value_taken"),
    ]
    by_key = upload(client, "cameras", "cameras.csv", csv.encode().replace(b"id,", b"xx,", 1))
    assert [e["code"] for e in by_key.json()["report"]["errors"]] == ["row_exists", "duplicate_key"]
    same = upload(client, "cameras", "cameras.gpkg", exported.content, mode="upsert")
    assert same.status_code == 200, same.text
    assert same.json()["imported"] == 0 and same.json()["updated"] == 0
    assert scalar(engine, "SELECT count(*) FROM cameras") == held


def test_a_garbage_point_names_a_compound_that_exists(client: TestClient) -> None:
    body = SAMPLES["garbage_points"][0]
    refused = post(
        client,
        "garbage_points",
        {**body, "properties": {**body["properties"], "compound_id": 99_999}},
    )
    assert refused.status_code in (400, 422) and refused.json()["code"] == "reference_not_found"


def test_an_inspector_reports_the_build_status_in_their_area(
    client: TestClient, engine: Engine, database_url: str
) -> None:
    with engine.connect() as conn:
        grid, lon, lat = conn.execute(
            text("""SELECT g.code, ST_X(p.geom), ST_Y(p.geom) FROM garbage_points AS p
                    JOIN grids AS g ON g.level = 'section' AND g.valid_to IS NULL
                     AND ST_Contains(g.geom, p.geom) ORDER BY p.id LIMIT 1""")
        ).one()
    ensure_account(database_url, "sys-inspector", "inspector", grids=(grid,))
    body = feature(point(lon, lat), name="巡查测试点", kind="sorting_point", build_status="built")
    created = post(client, "garbage_points", body)
    assert created.status_code == 201, created.text
    path = created.headers["location"].replace("http://testserver", "")
    try:
        own = bearer("sys-inspector")
        assert patch(client, path, {"build_status": "in_service"}, **own).status_code == 204
        assert client.get(path).json()["properties"]["build_status"] == "in_service"
        assert patch(client, path, {"kind": "transfer"}, **own).status_code == 403
        assert post(client, "garbage_points", body, **own).status_code == 403
    finally:
        assert delete(client, path).status_code == 204


def test_a_painted_line_is_measured_in_metres_by_the_database(client: TestClient) -> None:
    epsg = int(zone_epsg(LON))
    to_gk = Transformer.from_crs(4490, epsg, always_xy=True)
    back = Transformer.from_crs(epsg, 4490, always_xy=True)
    x0, y0 = to_gk.transform(LON, LAT)
    # two legs of 50 m (a 30-40-50 triangle) and 60 m, in the zone the database measures in
    legs = [(x0, y0), (x0 + 30, y0 + 40), (x0 + 30, y0 + 100)]
    coords = [list(back.transform(x, y)) for x, y in legs]
    body = feature({"type": "LineString", "coordinates": coords}, road="人民路")
    created = post(client, "bike_parking_lines", body)
    assert created.status_code == 201, created.text
    path = created.headers["location"].replace("http://testserver", "")
    try:
        assert client.get(path).json()["properties"]["length_m"] == pytest.approx(110.0, abs=0.01)
        assert shapely.LineString(legs).length == pytest.approx(110.0)
    finally:
        assert delete(client, path).status_code == 204


def test_the_overview_draws_the_cameras_as_sectors(client: TestClient) -> None:
    page = client.get("/maps/overview")
    assert page.status_code == 200, page.text
    for layer in SYSTEM_LAYERS:
        assert f'"key": "{layer.id}"' in page.text, layer.id
    sector = (
        '"sector": {"angle": "view_angle_deg", "defaultRange": 60.0, "direction": "direction_deg",'
        ' "range": "view_range_m"}'
    )
    assert page.text.count(sector) == 1


# each camera in view: its sector's point count and tip, the bearing (°) of the middle of its arc
# and its reach (m), measured on the page; and the properties it was drawn from
SECTORS = """Object.values(CityGrid.layers.cameras._layers).map(g => {
  const [ring, marker] = [g.getLayers()[0], g.getLayers()[1]];
  const pts = ring.getLatLngs()[0], tip = marker.getLatLng();
  const k = Math.cos(tip.lat * Math.PI / 180);
  const towards = p => {
    const dx = (p.lng - tip.lng) * k * 111320, dy = (p.lat - tip.lat) * 111320;
    return [(Math.atan2(dx, dy) * 180 / Math.PI + 360) % 360, Math.hypot(dx, dy)];
  };
  const [first, reach] = towards(pts[1]), [last] = towards(pts[pts.length - 1]);
  return {n: pts.length, tip: pts[0].equals(tip), bearing: first + ((last - first + 360) % 360) / 2,
          reach: reach, props: g.feature.properties, cls: ring.getElement().getAttribute('class')};
})"""


def test_the_cameras_are_drawn_as_sectors_in_the_browser(browser: Any, database_url: str) -> None:
    with live_server(database_url, CITYGRID_BASEMAP="none") as base:
        context = browser_context(browser, base, "admin", viewport={"width": 1000, "height": 800})
        page = context.new_page()
        seen = watch(page)
        page.goto(f"{base}/maps/overview", wait_until="load")
        wait_for(page, "window.CityGrid && CityGrid.layers.cameras && CityGrid.idle()", 60_000)
        page.evaluate(f"void CityGrid.layers.county._map.setView([{LAT}, {LON}], 16)")
        page.wait_for_timeout(500)
        wait_for(page, "CityGrid.idle() && CityGrid.layers.cameras.loaded > 0", 30_000)
        drawn = page.evaluate(SECTORS)
        page.close()
        context.close()
    assert len(drawn) >= 4
    for camera in drawn:
        props = camera["props"]
        assert camera["tip"] and "cg-sector" in camera["cls"]
        assert camera["n"] >= 2 + props["view_angle_deg"] / 10
        turned = (camera["bearing"] - props["direction_deg"] + 180) % 360 - 180
        assert abs(turned) < 0.5, camera
        assert camera["reach"] == pytest.approx(props["view_range_m"], rel=0.01)
    assert seen.page_errors == [] and seen.console_errors == [], seen.console_errors
    assert_policy_kept(seen)


def _layer(layer_id: str) -> Layer:
    return next(layer for layer in SYSTEM_LAYERS if layer.id == layer_id)
