"""No input gives a 500: extreme dates, huge filters, coordinates and bodies, lone surrogates,
out-of-range numbers. Each is a 4xx with a code and a message in Chinese and English (or a
correct answer) and changes nothing; error messages show no server paths."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import DatabaseSettings
from layers.engine.cql import MAX_FILTER_CHARS, MAX_FILTER_DEPTH
from layers.engine.jsonin import MAX_DEPTH
from tests.accounts import TEST_AUTH, bearer
from tests.uploads import billboard_columns, spots, upload, write
from tests.world import PROPERTIES, WEST, World, point, snapshot

STATS = {
    "/stats/heatmap": {"zoom": 12},
    "/stats/heatmap/frames": {"zoom": 12, "interval": "month"},
    "/stats/indicators": {"by": "street"},
    "/stats/choropleth": {"level": "community"},
    "/stats/trend": {"interval": "month"},
}


@pytest.fixture(scope="module")
def client(world: World) -> Iterator[TestClient]:
    app = create_app(DatabaseSettings(database_url=world.url), auth_settings=TEST_AUTH)
    with TestClient(app) as c:
        c.headers.update(bearer("admin"))
        yield c


def refused(answer: Any, status: int = 400) -> dict[str, Any]:
    """The body of a refusal: the status, a machine code and both messages."""
    assert answer.status_code == status, answer.text
    body: dict[str, Any] = answer.json()
    assert body["code"] and body["message"] and body["message_en"], body
    return body


def ids(answer: Any) -> set[int]:
    assert answer.status_code == 200, answer.text
    return {int(f["id"]) for f in answer.json()["features"]}


@pytest.mark.parametrize("path", list(STATS))
def test_statistics_up_to_the_last_day_of_the_calendar(client: TestClient, path: str) -> None:
    for period in (
        {"from": "2020-01-01", "to": "9999-12-31"},
        {"from": "0001-01-01", "to": "9999-12-31"},
    ):
        answer = client.get(path, params={**STATS[path], **period})
        assert answer.status_code == 200, answer.text


def test_trend_up_to_the_last_day_counts_every_case(client: TestClient) -> None:
    period = {"from": "2026-01-01", "interval": "month"}
    bounded = client.get("/stats/trend", params={**period, "to": "2026-12-31"}).json()
    endless = client.get("/stats/trend", params={**period, "to": "9999-12-31"}).json()
    assert sum(r["cases"] for r in endless) == sum(r["cases"] for r in bounded) >= 2


def test_a_filter_of_600_ors_is_answered(client: TestClient, world: World) -> None:
    many = " OR ".join(f"spaces = {n}" for n in range(600))
    answer = client.get("/collections/parking_lots/items", params={"filter": many})
    assert ids(answer) == {world.west["parking_lots"], world.east["parking_lots"]}
    terms = [{"op": "=", "args": [{"property": "spaces"}, n]} for n in range(300)]
    or_json = json.dumps({"op": "or", "args": terms}, separators=(",", ":"))
    answer = client.get(
        "/collections/parking_lots/items", params={"filter": or_json, "filter-lang": "cql2-json"}
    )
    assert ids(answer) == {world.west["parking_lots"], world.east["parking_lots"]}


@pytest.mark.parametrize(
    "text",
    [
        "NOT " * (MAX_FILTER_DEPTH + 1) + "spaces = 40",
        " OR ".join("spaces = 40" for _ in range(MAX_FILTER_CHARS // 10)),
        "spaces = 40 AND (spaces = 40 OR (" * 300 + "spaces = 40" + "))" * 300,
    ],
    ids=["deep-not", "too-long", "deep-and-or"],
)
def test_filters_beyond_the_stated_size_or_depth_are_refused(client: TestClient, text: str) -> None:
    answer = client.get("/collections/parking_lots/items", params={"filter": text})
    assert refused(answer)["code"] == "invalid_filter"


def test_a_cql2_json_filter_nested_too_deep_is_refused(client: TestClient) -> None:
    inner = '{"op": "=", "args": [{"property": "spaces"}, 40]}'
    nested = '{"op": "not", "args": [' * 500 + inner + "]}" * 500
    answer = client.get(
        "/collections/parking_lots/items", params={"filter": nested, "filter-lang": "cql2-json"}
    )
    assert refused(answer)["code"] == "invalid_filter"


def test_not_of_not_parses_and_selects_what_its_inside_selects(
    client: TestClient, world: World
) -> None:
    url = "/collections/parking_lots/items"
    plain = ids(client.get(url, params={"filter": "spaces = 40"}))
    assert plain == {world.west["parking_lots"], world.east["parking_lots"]}
    assert ids(client.get(url, params={"filter": "NOT (NOT (spaces = 40))"})) == plain
    assert ids(client.get(url, params={"filter": "NOT (spaces = 40 AND spaces > 1)"})) == set()
    assert ids(client.get(url, params={"filter": "NOT NOT NOT spaces = 40"})) == set()


@pytest.mark.parametrize("crs", ["EPSG:4549", "EPSG:4550", "EPSG:3857"])
def test_a_bbox_of_huge_numbers_in_a_projected_crs_is_refused(client: TestClient, crs: str) -> None:
    for bbox in ("1e99,1e99,2e99,2e99", "-1e12,-1e12,1e12,1e12"):
        answer = client.get("/collections/billboards/items", params={"bbox": bbox, "bbox-crs": crs})
        assert refused(answer)["code"] == "bbox_outside_crs"
        assert crs.split(":")[1] in answer.json()["message"]


def test_a_bbox_inside_a_gauss_kruger_zone_still_works(client: TestClient, world: World) -> None:
    # northing, easting: the whole test street lies in zone 4550 (CM 123°E) near 3,520 km north
    answer = client.get(
        "/collections/billboards/items",
        params={"bbox": "3000000,0,4000000,1000000", "bbox-crs": "EPSG:4550"},
    )
    assert ids(answer) == {world.west["billboards"], world.east["billboards"]}


def test_a_cql_geometry_of_huge_numbers_is_refused(client: TestClient) -> None:
    answer = client.get(
        "/collections/billboards/items",
        params={
            "filter": "S_INTERSECTS(geom, BBOX(0, 0, 1e300, 1e300))",
            "filter-crs": "http://www.opengis.net/def/crs/EPSG/0/4549",
        },
    )
    assert refused(answer)["code"] == "invalid_filter"


def deep_json(levels: int) -> bytes:
    return ('{"a":' * levels + "1" + "}" * levels).encode()


@pytest.mark.parametrize("levels", [MAX_DEPTH + 1, 990, 100_000])
def test_deeply_nested_json_bodies_are_refused(
    client: TestClient, world: World, levels: int
) -> None:
    before = snapshot(world.engine)
    feature = client.post(
        "/collections/billboards/items",
        content=deep_json(levels),
        headers={"Content-Type": "application/geo+json"},
    )
    assert refused(feature)["code"] == "json_too_deep"
    model = client.post(
        "/grids/merge", content=deep_json(levels), headers={"Content-Type": "application/json"}
    )
    refused(model)
    people = client.put(
        f"/grids/{WEST}/people",
        content=b'{"inspectors": ' + deep_json(levels) + b"}",
        headers={"Content-Type": "application/json"},
    )
    refused(people)
    assert snapshot(world.engine) == before


def as_json(value: Any) -> dict[str, Any]:
    """A JSON body written with \\u escapes, as a client that sends lone surrogates does."""
    return {"content": json.dumps(value), "headers": {"Content-Type": "application/json"}}


def test_lone_surrogates_in_bodies_and_queries_are_refused(
    client: TestClient, world: World
) -> None:
    before = snapshot(world.engine)
    feature = {
        "type": "Feature",
        "geometry": point(1),
        "properties": {**PROPERTIES["billboards"], "owner": "广告\ud800公司"},
    }
    answer = client.post("/collections/billboards/items", **as_json(feature))
    assert refused(answer)["code"] == "lone_surrogate"
    key = {**feature, "properties": {**PROPERTIES["billboards"], "\udfff": "x"}}
    answer = client.post("/collections/billboards/items", **as_json(key))
    assert refused(answer)["code"] == "unstorable_name"
    people = client.put(f"/grids/{WEST}/people", **as_json({"inspectors": ["\ud800"]}))
    assert "surrogate" in json.dumps(refused(people))
    query = {"op": "=", "args": [{"property": "owner"}, "\ud800"]}
    answer = client.get(
        "/collections/billboards/items",
        params={"filter": json.dumps(query), "filter-lang": "cql2-json"},
    )
    assert refused(answer)["code"] == "invalid_filter"
    assert snapshot(world.engine) == before


def test_if_match_star_matches_any_current_version(client: TestClient, world: World) -> None:
    url = f"/collections/billboards/items/{world.west['billboards']}"
    etag = client.get(url).headers["etag"]
    changed = client.patch(
        url,
        json={"properties": {"address": "人民路 1 号"}},
        headers={"If-Match": "*", "Content-Type": "application/merge-patch+json"},
    )
    assert changed.status_code in (200, 204), changed.text
    assert changed.headers["etag"] != etag
    assert client.get(url).json()["properties"]["address"] == "人民路 1 号"


@pytest.mark.parametrize("value", [1e308, -1.0, 10_000.5])
def test_numbers_outside_the_registry_bounds_are_refused_on_write(
    client: TestClient, world: World, value: float
) -> None:
    before = snapshot(world.engine)
    feature = {
        "type": "Feature",
        "geometry": point(1),
        "properties": {**PROPERTIES["billboards"], "face_area_m2": value},
    }
    body = refused(client.post("/collections/billboards/items", json=feature))
    assert body["code"] == "property_out_of_range" and body["field"] == "face_area_m2"
    assert (body["minimum"], body["maximum"]) == (0, 10_000)
    url = f"/collections/billboards/items/{world.west['billboards']}"
    patch = client.patch(
        url,
        json={"properties": {"face_area_m2": value}},
        headers={"If-Match": "*", "Content-Type": "application/merge-patch+json"},
    )
    assert refused(patch)["code"] == "property_out_of_range"
    assert snapshot(world.engine) == before


def test_integer_ids_beyond_bigint_are_refused(client: TestClient, world: World) -> None:
    before = snapshot(world.engine)
    inspection = {
        "type": "Feature",
        "geometry": None,
        "properties": {
            "dust_site_id": 2**70,
            "inspected_on": "2026-11-21",
            "inspector": "张三",
            "problems_found": 1,
        },
    }
    answer = client.post("/collections/dust_inspections/items", json=inspection)
    assert refused(answer)["code"] == "property_out_of_range"
    assert snapshot(world.engine) == before


def test_numbers_outside_the_registry_bounds_are_refused_on_import(
    client: TestClient, world: World, tmp_path: Path
) -> None:
    before = snapshot(world.engine)
    columns = billboard_columns(3)
    columns["牌面面积(㎡)"] = [12.5, 1e308, -3.0]
    path = write(tmp_path / "signs.geojson", spots(3), columns, "GeoJSON")
    answer = upload(client, "billboards", path)
    assert refused(answer)["code"] == "import_refused"
    problems = {(e["row"], e["code"]) for e in answer.json()["report"]["errors"]}
    assert problems == {(2, "property_out_of_range"), (3, "property_out_of_range")}
    assert snapshot(world.engine) == before


def test_queryables_publish_the_bounds(client: TestClient) -> None:
    schema = client.get("/collections/billboards/queryables").json()
    assert schema["properties"]["face_area_m2"]["minimum"] == 0
    assert schema["properties"]["face_area_m2"]["maximum"] == 10_000
    spaces = client.get("/collections/parking_lots/queryables").json()["properties"]["spaces"]
    assert (spaces["minimum"], spaces["maximum"]) == (0, 100_000)


@pytest.mark.parametrize("name", ["signs.gpkg", "signs.zip", "signs.kml", "signs.xlsx"])
def test_unreadable_uploads_show_no_server_path(
    client: TestClient, world: World, name: str
) -> None:
    before = snapshot(world.engine)
    answer = client.post(
        "/collections/billboards/import",
        params={"filename": name},
        content=b"this is not what the name says" * 10,
        headers={"Content-Type": "application/octet-stream"},
    )
    body = refused(answer)
    text = json.dumps(body, ensure_ascii=False)
    assert tempfile.gettempdir() not in text and "citygrid-import" not in text, text
    assert str(Path.cwd()) not in text
    assert snapshot(world.engine) == before
